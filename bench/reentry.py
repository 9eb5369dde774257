"""Benchmark 5: what entering ``capture()`` and a render's capture cost, before and after.

Measures, in one process: entering and leaving ``capture()`` of timm's
``Attention.forward`` and of ``nn.MultiheadAttention.forward`` (a render enters its
capture once per forward pass), and the per-forward cost of a render's capture
(``AttentionRecorder.recording()`` + ``take()``) against the plain forward with the
same attention path, on vit_small and a ViT built on ``nn.MultiheadAttention``.

With ``--baseline DIR`` (a checkout of an earlier anycapture, e.g. made with
``git worktree add /tmp/before HEAD~1``) the same measurements run alternately
under that checkout and this one, in subprocesses, and the table shows both and
their ratio (best of rounds: load from elsewhere only ever adds time).

    python bench/reentry.py [--quick] [--json out.json] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import interleaved, machine

REPO = Path(__file__).resolve().parents[1]


def _mha_vit(dim: int, depth: int) -> Any:
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(dim, num_heads=dim // 64, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.attn(x, x, x, need_weights=False)[0]

    class MHAViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch_embed = nn.Conv2d(3, dim, 32, 32)
            self.blocks = nn.Sequential(*[Block() for _ in range(depth)])

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.blocks(self.patch_embed(images).flatten(2).transpose(1, 2))

    return MHAViT().eval()


def measure(quick: bool) -> dict[str, float]:
    """Seconds per operation, measured under whichever anycapture is importable."""
    import timm
    import torch
    from timm.layers.attention import Attention

    from anycapture import capture
    from anycapture.attention import AttentionRecorder

    torch.manual_seed(0)
    rounds, number = (2, 2) if quick else (7, 20)

    def enter_exit(target: Any, var: str) -> Callable[[], None]:
        def run() -> None:
            with capture(target, var):
                pass

        return run

    results = interleaved(
        {
            "capture() enter+exit, timm Attention.forward": enter_exit(Attention.forward, "attn"),
            "capture() enter+exit, nn.MultiheadAttention.forward": enter_exit(
                torch.nn.MultiheadAttention.forward, "attn_output_weights"
            ),
        },
        rounds=rounds,
        number=number,
        statistic=min,
    )
    vit = timm.create_model("vit_tiny_patch16_224" if quick else "vit_small_patch16_224").eval()
    for module in vit.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False  # the baseline computes the maps too
    models = {"vit_small": vit, "MHA ViT-B/32": _mha_vit(128 if quick else 768, 2 if quick else 12)}
    x = torch.randn(1, 3, 224, 224)
    for label, model in models.items():
        recorder = AttentionRecorder(model)

        def plain(model: Any = model) -> None:
            with torch.inference_mode():
                model(x)

        def render_forward(model: Any = model, recorder: Any = recorder) -> None:
            with torch.inference_mode(), recorder.recording():
                model(x)
            recorder.take()

        timed = interleaved(
            {"plain": plain, "render": render_forward},
            rounds=rounds,
            number=1 if quick else 3,
            statistic=min,
        )
        results[f"{label}: plain forward (batch 1)"] = timed["plain"]
        results[f"{label}: render forward with capture (batch 1)"] = timed["render"]
    return results


def _run_under(path: Path, quick: bool) -> dict[str, float]:
    env = {**os.environ, "ANYCAPTURE_BENCH_UNDER": str(path)}
    args = [sys.executable, str(Path(__file__).resolve()), "--child"]
    done = subprocess.run(
        args + (["--quick"] if quick else []), env=env, cwd=path, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"measurement under {path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--baseline", type=Path, help="an earlier anycapture checkout")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.environ["ANYCAPTURE_BENCH_UNDER"])  # that checkout's anycapture
        import anycapture

        assert Path(anycapture.__file__).parent.parent == Path(sys.path[0])
        print(json.dumps(measure(args.quick)))
        return
    started = time.perf_counter()
    versions = {"after": REPO} | ({"before": args.baseline.resolve()} if args.baseline else {})
    best: dict[str, dict[str, float]] = {v: {} for v in versions}
    for _ in range(1 if args.quick else 3):  # alternate, keep the best of each
        for version, path in versions.items():
            for key, value in _run_under(path, args.quick).items():
                best[version][key] = min(value, best[version].get(key, float("inf")))
    print("\ncapture re-entry and a render's per-forward capture cost (CPU, best of rounds)")
    print(f"  machine: {json.dumps(machine())}")
    for key, after in best["after"].items():
        line = f"  {key:<58} after {after * 1e3:9.3f} ms"
        if "before" in best:
            before = best["before"][key]
            line += f"   before {before * 1e3:9.3f} ms   before/after {before / after:6.2f}x"
        print(line)
    for label in ("vit_small", "MHA ViT-B/32"):
        for version, values in best.items():
            plain = values[f"{label}: plain forward (batch 1)"]
            render = values[f"{label}: render forward with capture (batch 1)"]
            print(f"  {label} render forward / plain forward, {version}: {render / plain:.3f}x")
    print(f"  ({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": best}, indent=2) + "\n")


if __name__ == "__main__":
    main()
