"""Benchmark 4: figure throughput, and a batch in one invocation against many.

Part A renders the same maps with ours (paper style) and with the seed notebook's
approach (pyplot: a new figure per plot, savefig) drawing the same content.
Part B runs one `anycapture render` over N images against separate invocations
per image (measured on --separate of them and scaled to N), and reports the
batch run's peak RSS.

    python bench/render_throughput.py [--quick] [--images 64] [--separate 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import interleaved, machine

REPO = Path(__file__).resolve().parents[1]


def seed_style(kind: str, maps: Any, view: Any, query_token: int, grid: tuple[int, int]) -> bytes:
    """What the seed notebook does: pyplot figures built from scratch, savefig."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    if kind == "head":
        fig, ax = plt.subplots()
        im = ax.imshow(maps[0])
        fig.colorbar(im, ax=ax)
    elif kind == "heads":
        panels = [*maps, maps.mean(0)]
        cols = 4
        fig, axes = plt.subplots((len(panels) + cols - 1) // cols, cols, figsize=(16, 8))
        for i, ax in enumerate(axes.flat):
            ax.imshow(panels[i] if i < len(panels) else np.zeros_like(maps[0]))
            ax.set_title(
                f"Head {i}" if i < len(maps) else "Head Average" if i == len(maps) else "pad"
            )
            ax.axis("off")
    else:
        weights = maps[0, query_token, 1:].reshape(grid)
        mask = np.asarray(Image.fromarray(weights / weights.max()).resize(view.size))
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5))
        left.imshow(view)
        left.axis("off")
        right.imshow(view)
        right.imshow(mask, alpha=0.6, cmap="rainbow")
        right.axis("off")
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def previous_way(kind: str, request: Any) -> Callable[[], bytes]:
    """The paper figure as drawn before the static-frame blitting and the PNG writer:
    the same template, a full Agg draw per figure and Pillow's PNG encoder."""
    import numpy as np
    from PIL import Image

    from anycapture.render.kinds import KINDS

    module = sys.modules[KINDS[kind].paper.__module__]
    template = {"head": "HeadFigure", "heads": "HeadsFigure", "grid": "GridFigure"}[kind]
    figure = getattr(module, template)(request)
    figure.figure.canvas.draw()  # the layout solved once and frozen, as before
    figure.figure.set_layout_engine("none")

    def draw() -> bytes:
        figure.update(request)
        figure.figure.canvas.draw()
        rgba = np.asarray(figure.figure.canvas.buffer_rgba())
        buffer = io.BytesIO()
        Image.fromarray(rgba[..., :3]).save(buffer, format="PNG", compress_level=3)
        return buffer.getvalue()

    return draw


def previous_bare(kind: str, request: Any) -> Callable[[], bytes]:
    """The bare figure with the PNG encoder used before (Pillow, compress_level 3)."""
    from PIL import Image

    from anycapture.render import png
    from anycapture.render.kinds import KINDS

    def pillow(pixels: Any) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=3)
        return buffer.getvalue()

    def draw() -> bytes:
        ours, png.write_png = png.write_png, pillow  # type: ignore[assignment]
        try:
            return bytes(KINDS[kind].bare(request))  # type: ignore[arg-type]
        finally:
            png.write_png = ours

    return draw


def part_a(args: argparse.Namespace) -> dict[str, float]:
    import numpy as np
    from PIL import Image

    from anycapture.layout import TokenLayout
    from anycapture.render import FigureRequest, render_figure

    rng = np.random.default_rng(0)
    maps = rng.random((6, 197, 197)).astype(np.float32)
    maps /= maps.sum(-1, keepdims=True)
    view = Image.open(REPO / "assets" / "cat.jpg").convert("RGB").resize((224, 224))
    layout = TokenLayout(1, (14, 14))
    request = FigureRequest(
        maps=maps,
        layout=layout,
        view=view,
        layer="blocks.11.attn",
        layer_index=11,
        query=(7, 7),
        title="vit_small",
    )
    variants = {}
    for kind in ("head", "heads", "grid"):
        variants[f"seed pyplot {kind}"] = lambda k=kind: seed_style(
            k, maps, view, layout.token_of(7, 7), (14, 14)
        )
        variants[f"ours paper {kind}"] = lambda k=kind: render_figure(k, "paper", request)
        variants[f"before paper {kind}"] = previous_way(kind, request)
        variants[f"before bare {kind}"] = previous_bare(kind, request)
        variants[f"ours bare {kind}"] = lambda k=kind: render_figure(k, "bare", request)
    rounds, number = (1, 1) if args.quick else (5, 3)
    results = interleaved(variants, rounds=rounds, number=number)
    print("\nA. seconds per figure (figures per second = 1 / value)")
    print(f"  machine: {json.dumps(machine())}")
    for kind in ("head", "heads", "grid"):
        seed, ours, bare, before, before_bare = (
            results[f"{v} {kind}"]
            for v in ("seed pyplot", "ours paper", "ours bare", "before paper", "before bare")
        )
        print(
            f"  {kind:<6} seed {1 / seed:6.1f}/s   "
            f"ours paper {1 / ours:6.1f}/s ({seed / ours:4.1f}x seed, "
            f"{before / ours:4.1f}x the previous drawing at {1 / before:5.1f}/s)   "
            f"ours bare {1 / bare:6.1f}/s ({seed / bare:5.1f}x seed, "
            f"{before_bare / bare:4.1f}x the previous at {1 / before_bare:5.1f}/s)"
        )
    return results


def part_b(args: argparse.Namespace) -> dict[str, Any]:
    from PIL import Image, ImageOps

    model = "vit_tiny_patch16_224" if args.quick else "vit_small_patch16_224"
    work = Path(tempfile.mkdtemp(prefix="anycapture-batch-"))
    images = work / "images"
    images.mkdir()
    cat = Image.open(REPO / "assets" / "cat.jpg").convert("RGB")
    for i in range(args.images):  # distinct images: crops and mirrors of the cat
        crop = cat.crop((i % 8 * 10, i // 8 * 5, cat.width - i % 5 * 10, cat.height - i % 3 * 10))
        (ImageOps.mirror(crop) if i % 2 else crop).save(images / f"img{i:03d}.jpg")
    base = [sys.executable, "-m", "anycapture", "render", "--model", model, "--no-pretrained", "-q"]
    start = time.perf_counter()
    subprocess.run(
        [*base, "--image", str(images), "--out", str(work / "batch")], check=True, cwd=REPO
    )
    batch = time.perf_counter() - start
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    separate_times = []
    for path in sorted(images.iterdir())[: args.separate]:
        start = time.perf_counter()
        subprocess.run(
            [*base, "--image", str(path), "--out", str(work / "single")], check=True, cwd=REPO
        )
        separate_times.append(time.perf_counter() - start)
    per_invocation = sum(separate_times) / len(separate_times)
    separate_total = per_invocation * args.images
    results = {
        "model": model,
        "images": args.images,
        "batch_seconds": batch,
        "separate_seconds_per_invocation": per_invocation,
        "separate_seconds_scaled": separate_total,
        "separate_measured": len(separate_times),
        "speedup": separate_total / batch,
        "batch_peak_rss_mb": peak_rss_mb,
        "figures_per_second_batch": 3 * args.images / batch,
    }
    print(f"\nB. {args.images} images, {model}, 3 figures each")
    print(
        f"  one invocation: {batch:.1f} s ({3 * args.images / batch:.1f} figures/s), "
        f"peak RSS {peak_rss_mb:.0f} MB"
    )
    print(
        f"  separate invocations: {per_invocation:.2f} s each (mean of {len(separate_times)}), "
        f"x{args.images} = {separate_total:.1f} s"
    )
    print(f"  batch is {separate_total / batch:.1f}x faster")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--separate", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.images, args.separate = 2, 1
    a = part_a(args)
    b = part_b(args)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine(), "per_figure_seconds": a, "batch": b}, indent=2)
        )


if __name__ == "__main__":
    main()
