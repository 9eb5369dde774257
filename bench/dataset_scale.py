"""Benchmark 6: a dataset in one run, split in shards, and resumed.

On N distinct images (random weights, so no download): one process against two
shards run at the same time on one --out, the peak RSS of every process (sampled
with psutil), the main process's RSS over the run (flat means memory does not grow
with the number of images), and the cost of ``--resume`` on the finished run (it
should be about the time to read the manifest).  With ``--dtype float16`` (a GPU,
``--device cuda``) or ``bfloat16`` (also on CPU) the one-process run is repeated in
that dtype, side by side.  The manifest's write cost over the run is measured with
the run's own writer: rewritten after every image (before) against throttled (now).

    python bench/dataset_scale.py [--quick] [--images 1000] [--device cuda]
        [--dtype float16] [--decode-workers N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine

REPO = Path(__file__).resolve().parents[1]


def make_images(folder: Path, count: int) -> None:
    """Distinct images: crops, mirrors and rotations of the cat, at a modest size."""
    from PIL import Image, ImageOps

    folder.mkdir(parents=True)
    with Image.open(REPO / "assets" / "cat.jpg") as cat:
        cat = cat.convert("RGB").resize((320, 240))
    for i in range(count):
        crop = cat.crop((i % 7 * 8, i % 5 * 6, 320 - i % 3 * 9, 240 - i % 4 * 7))
        image = ImageOps.mirror(crop) if i % 2 else crop
        image.rotate(i % 11).save(folder / f"img{i:05d}.jpg", quality=90)


def watch(processes: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    """Wait for ``processes``, sampling the RSS of each and of its children (workers)."""
    import psutil

    peaks: dict[int, tuple[str, float]] = {}
    mains: list[list[float]] = [[] for _ in processes]
    while any(p.poll() is None for p in processes):
        for i, process in enumerate(processes):
            try:
                main = psutil.Process(process.pid)
                tree = [main, *main.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for member in tree:
                try:
                    rss = member.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    continue
                role = "main" if member.pid == process.pid else "worker"
                name = f"run{i} {role}"
                peaks[member.pid] = (name, max(rss, peaks.get(member.pid, ("", 0.0))[1]))
                if member.pid == process.pid:
                    mains[i].append(rss)
        time.sleep(0.5)
    codes = [p.wait() for p in processes]
    if any(codes):
        raise SystemExit(f"a render failed: exit codes {codes}")
    return {"peak_rss_mb": sorted(peaks.values()), "main_rss_series_mb": mains}


def flatness(series: list[float]) -> dict[str, float]:
    """The main process's RSS a quarter, half and all the way through the run."""
    if len(series) < 4:
        return {"quarter": series[-1], "half": series[-1], "end": series[-1]}
    return {
        "quarter": series[len(series) // 4],
        "half": series[len(series) // 2],
        "end": max(series[-3:]),
    }


def render(args: argparse.Namespace, out: Path, images: Path, *extra: str) -> list[str]:
    workers = [] if args.decode_workers is None else ["--decode-workers", args.decode_workers]
    return [
        sys.executable, "-m", "anycapture", "render", "--model", args.model,
        "--no-pretrained", "--image", str(images), "--out", str(out), "-q",
        "--device", args.device, *workers, *extra,
    ]  # fmt: skip


def manifest_write_cost(count: int, per_image_s: float, every_image: bool) -> dict[str, float]:
    """Seconds and bytes spent writing ``manifest.json`` over a run of ``count`` images
    (head, heads, grid each) taking ``per_image_s`` apiece: the run's own manifest,
    writer and throttle, on a simulated clock that also counts the real write time."""
    import math

    from anycapture.render.output import write_bytes_atomic
    from anycapture.run.manifest import FigureEntry, Manifest, WriteThrottle

    now = [0.0]
    throttle = WriteThrottle(clock=lambda: now[0])
    if every_image:  # what a run did before: every image due
        throttle = WriteThrottle(interval_s=0.0, share=math.inf, clock=lambda: now[0])
    manifest = Manifest(model={"name": "vit_small_patch16_224", "layers": ["blocks.11.attn"]})
    spent, size = 0.0, 0
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "manifest.json"
        for i in range(count):
            now[0] += per_image_s
            image = f"/data/images/img{i:05d}.jpg"
            for kind in ("head", "heads", "grid"):
                path = f"img{i:05d}/{kind}_L11_H0.png"
                entry = FigureEntry(image, kind, 11, "blocks.11.attn", 0, None, None, "paper", path)
                manifest.figures.append(entry)
            manifest.images_done.append(image)
            final = i == count - 1
            if final or throttle.due():
                with throttle.timing():
                    start = time.perf_counter()
                    data = manifest.to_bytes()
                    write_bytes_atomic(target, data)
                    took = time.perf_counter() - start
                    now[0] += took
                spent, size = spent + took, size + len(data)
    return {"seconds": spent, "megabytes": size / 2**20, "writes": throttle.writes}


def manifest_costs(count: int) -> dict[str, Any]:
    return {
        f"{per_image}s_per_image": {
            "before": manifest_write_cost(count, per_image, every_image=True),
            "now": manifest_write_cost(count, per_image, every_image=False),
        }
        for per_image in (0.5, 0.01)  # 2 images/s (this CPU), 100 images/s (a GPU)
    }


def check(out: Path, count: int) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"], out
    assert len(manifest["images_done"]) == len(set(manifest["images_done"])) == count, out


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    images = work / "images"
    make_images(images, args.images)
    results: dict[str, Any] = {"model": args.model, "images": args.images, "device": args.device}

    start = time.perf_counter()
    single = watch([subprocess.Popen(render(args, work / "one", images), cwd=REPO)])
    results["one_process_s"] = time.perf_counter() - start
    check(work / "one", args.images)

    start = time.perf_counter()
    shards = [render(args, work / "two", images, "--shard", f"{k}/2") for k in range(2)]
    sharded = watch([subprocess.Popen(command, cwd=REPO) for command in shards])
    results["two_shards_s"] = time.perf_counter() - start
    check(work / "two", args.images)

    # as torchrun --nproc-per-node 2 starts them: each told it shares the machine
    sharing = {**os.environ, "LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "2"}
    start = time.perf_counter()
    shards = [render(args, work / "local", images, "--shard", f"{k}/2") for k in range(2)]
    watch([subprocess.Popen(command, cwd=REPO, env=sharing) for command in shards])
    results["two_shards_sharing_s"] = time.perf_counter() - start
    check(work / "local", args.images)

    if args.dtype:
        start = time.perf_counter()
        half = render(args, work / "dtype", images, "--dtype", args.dtype)
        watch([subprocess.Popen(half, cwd=REPO)])
        results["one_process_dtype_s"] = time.perf_counter() - start
        results["images_per_s_dtype"] = args.images / results["one_process_dtype_s"]
        check(work / "dtype", args.images)

    start = time.perf_counter()
    subprocess.run(render(args, work / "one", images, "--resume"), cwd=REPO, check=True)
    results["resume_finished_s"] = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "anycapture", "--version"], cwd=REPO, check=True, capture_output=True
    )
    results["cli_start_s"] = time.perf_counter() - start

    results["one_process_peak_rss_mb"] = single["peak_rss_mb"]
    results["two_shards_peak_rss_mb"] = sharded["peak_rss_mb"]
    results["one_process_main_rss_mb"] = flatness(single["main_rss_series_mb"][0])
    results["images_per_s_one"] = args.images / results["one_process_s"]
    results["manifest_writes"] = manifest_costs(args.images)
    results["images_per_s_two_shards"] = args.images / results["two_shards_s"]
    results["images_per_s_two_shards_sharing"] = args.images / results["two_shards_sharing_s"]
    return results


def report(r: dict[str, Any]) -> None:
    print(
        f"\nF. {r['images']} images of {r['model']} (random weights), head+heads+grid, on "
        f"{r['device']}"
    )
    print(f"  machine: {json.dumps(machine())}")
    print(
        f"  one process:        {r['one_process_s']:7.1f} s ({r['images_per_s_one']:.2f} images/s)"
    )
    print(
        f"  two shards at once: {r['two_shards_s']:7.1f} s ({r['images_per_s_two_shards']:.2f} "
        f"images/s, {r['one_process_s'] / r['two_shards_s']:.2f}x one process)"
    )
    print(
        f"  two shards sharing the cores (LOCAL_WORLD_SIZE=2, as torchrun sets it): "
        f"{r['two_shards_sharing_s']:7.1f} s ({r['images_per_s_two_shards_sharing']:.2f} "
        f"images/s, {r['one_process_s'] / r['two_shards_sharing_s']:.2f}x one process)"
    )
    print(
        f"  --resume of the finished run: {r['resume_finished_s']:.2f} s "
        f"(the CLI alone starts in {r['cli_start_s']:.2f} s)"
    )
    flat = r["one_process_main_rss_mb"]
    print(
        f"  main process RSS a quarter / half / all the way through: {flat['quarter']:.0f} / "
        f"{flat['half']:.0f} / {flat['end']:.0f} MB"
    )
    if "images_per_s_dtype" in r:
        print(
            f"  one process, --dtype {r['dtype']}: {r['one_process_dtype_s']:7.1f} s "
            f"({r['images_per_s_dtype']:.2f} images/s, "
            f"{r['images_per_s_dtype'] / r['images_per_s_one']:.2f}x without)"
        )
    for pace, costs in r["manifest_writes"].items():
        before, now = costs["before"], costs["now"]
        print(
            f"  manifest.json writes at {pace.replace('_', ' ')}: every image "
            f"{before['writes']} writes, {before['megabytes']:.0f} MB, {before['seconds']:.2f} s; "
            f"throttled {now['writes']} writes, {now['megabytes']:.1f} MB, {now['seconds']:.3f} s "
            f"({before['seconds'] / max(now['seconds'], 1e-9):.0f}x less time)"
        )
    for label in ("one_process", "two_shards"):
        peaks = ", ".join(f"{name} {mb:.0f}" for name, mb in r[f"{label}_peak_rss_mb"])
        print(f"  peak RSS per process, {label.replace('_', ' ')} (MB): {peaks}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--model", default="vit_small_patch16_224")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--device", default="cpu", help="e.g. cuda")
    parser.add_argument(
        "--dtype",
        choices=("float16", "bfloat16"),
        help="also time one process with --dtype (float16 on a GPU; bfloat16 runs on CPU)",
    )
    parser.add_argument("--decode-workers", help="passed to render (default: its own)")
    args = parser.parse_args()
    if args.quick:
        args.images, args.model = 6, "vit_tiny_patch16_224"
    work = Path(tempfile.mkdtemp(prefix="anycapture-scale-"))
    try:
        results = run(args, work)
        results["dtype"] = args.dtype
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "scale": results}, indent=2))


if __name__ == "__main__":
    main()
