"""Benchmark: how long an interrupted run waits for a drawing worker that is busy.

python bench/stop_latency.py [--quick] [--json out.json]

A worker drawing one long figure (a sleep standing in for a 4096-head sheet) when the
run is interrupted: the time from the interrupt (``FigureDrawer.close``) to every
worker gone, against an idle worker's, measured side by side.  A scheduler kills 30 s
after its SIGTERM, so the run must be gone well before.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine, parse_args


def stop_seconds(busy: bool) -> float:
    from anycapture.render.pool import FigureDrawer

    drawer = FigureDrawer(1)
    drawer.draw(time.sleep, 120 if busy else 0, lambda drawn, problem: None)
    future = drawer._queue[0][0]
    while not (future.running() or future.done()):
        time.sleep(0.01)
    started = time.monotonic()
    drawer.close(interrupted=True)
    return time.monotonic() - started


def main() -> None:
    args = parse_args(__doc__ or "")
    rounds = 1 if args.quick else 3
    results = {"idle worker": [], "busy worker": []}
    for _ in range(rounds):  # interleaved
        results["idle worker"].append(stop_seconds(busy=False))
        results["busy worker"].append(stop_seconds(busy=True))
    print(f"machine: {json.dumps(machine())}")
    print("stop latency after an interrupt (s, median of rounds)")
    for name, values in results.items():
        print(f"  {name:<12} {sorted(values)[len(values) // 2]:6.2f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "seconds": results}, indent=2))


if __name__ == "__main__":
    main()
