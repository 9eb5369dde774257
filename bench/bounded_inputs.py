"""Benchmark: peak memory and time of the inputs that once had no bound, against a
plain one-image render measured beside them (each case in a process of its own).

python bench/bounded_inputs.py [--quick] [--json out.json]

Cases: a 3 MB ``--from-maps`` file declaring 3 GiB of maps (refused from its header),
``--image-list /dev/zero`` (was read until the kernel killed the run at 22.6 GB),
``--img-size 1600,1600`` (8 GB, then a raw torch error), a 10 MB ``--image-list``
line.  Peak memory is the process's own maximum resident set (``ru_maxrss``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine, parse_args

REPO = Path(__file__).resolve().parents[1]

PROBE = (  # main(args) returns through SystemExit (the console script exits at once)
    "import resource, sys\n"
    "from anycapture.cli import main\n"
    "code = 0\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)\n"
)


def measure(args: list[str], cwd: Path) -> tuple[float, float, int]:
    """(peak MB, seconds, exit code) of ``anycapture ARGS`` in a fresh process."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd
    )
    seconds = time.perf_counter() - started
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("PEAK"))
    _, kilobytes, code = line.split()
    return int(kilobytes) / 1024, seconds, int(code) if code.isdigit() else 1


def cases(work: Path) -> dict[str, list[str]]:
    from tests.cli.crafted import bomb_npz

    meta = {
        "format": "anycapture-maps/1", "model": {}, "image": "bomb.png",
        "layer_names": ["blocks.0.attn"], "windows": {},
        "layout": {"prefix_tokens": 2, "prefix_names": [], "grid": [90, 91], "patch_size": None},
    }  # fmt: skip
    bomb = bomb_npz(work / "bomb.npz", (12, 8192, 8192), meta)
    long_line = work / "list.txt"
    long_line.write_text("a" * 10_000_000 + "\n")
    scene = str(REPO / "assets" / "demo" / "scene0.png")
    return {
        "plain render (demo, 1 image)": ["render", "-m", "demo", "-i", scene, "-o", "o1"],
        "--from-maps 3 GiB bomb": ["render", "--from-maps", str(bomb), "-o", "o2"],
        "--image-list /dev/zero": ["render", "-m", "demo", "--image-list", "/dev/zero"],
        "--image-list 10 MB line": ["render", "-m", "demo", "--image-list", str(long_line)],
        "--img-size 1600,1600": [
            *("render", "-m", "vit_small", "--img-size", "1600,1600"),
            *("-i", scene, "-o", "o3"),
        ],
    }


def main() -> None:
    args = parse_args(__doc__ or "")
    rounds = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        chosen = cases(work)
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in chosen}
        for _ in range(rounds):  # interleaved
            for name, command in chosen.items():
                results[name].append(measure(command, work))
    print(f"machine: {json.dumps(machine())}")
    print("peak memory (MB) and time (s) per case, median of rounds; exit code")
    summary = {}
    for name, runs in results.items():
        peak = sorted(r[0] for r in runs)[len(runs) // 2]
        seconds = sorted(r[1] for r in runs)[len(runs) // 2]
        summary[name] = {"peak_mb": peak, "seconds": seconds, "exit": runs[0][2]}
        print(f"  {name:<30} {peak:8.0f} MB {seconds:7.2f} s   exit {runs[0][2]}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "cases": summary}, indent=2))


if __name__ == "__main__":
    main()
