"""Shared benchmark helpers: interleaved timing, ratio tables, machine info, peers.

Machines are noisy, so variants are timed in interleaved rounds within one run and
reported as ratios of medians to a baseline measured beside them.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PEERS_DIR = BENCH_DIR / ".peers"
ANYCAPTURE_PEER = "0.1.4"


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--no-peers", action="store_true", help="skip peers that need installing")
    return parser.parse_args()


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }
    for name in ("torch", "timm", "numpy", "bytecode", "matplotlib"):
        module = sys.modules.get(name)
        if module is not None:
            info[name] = getattr(module, "__version__", "?")
    return info


def interleaved(
    variants: dict[str, Callable[..., Any]],
    rounds: int,
    number: int,
    args: tuple[Any, ...] = (),
    statistic: Callable[[list[float]], float] = statistics.median,
) -> dict[str, float]:
    """Seconds per call ``fn(*args)`` of each variant, timed in interleaved rounds and
    summarised by ``statistic`` (the median; ``min`` where other load on the machine
    only ever adds time)."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    # One compiled timing loop per variant: a call site shared by all variants would
    # be polymorphic and add noise of its own. The garbage collector stays on.
    timers = {
        name: timeit.Timer("fn(*args)", "gc.enable()", globals={"fn": fn, "args": args, "gc": gc})
        for name, fn in variants.items()
    }
    for timer in timers.values():  # warm up
        timer.timeit(1)
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(number) / number)
    return {name: statistic(values) for name, values in samples.items()}


def report(
    title: str,
    results: dict[str, float],
    baseline: str,
    unit: str,
    args: argparse.Namespace,
    extra: dict[str, Any] | None = None,
) -> None:
    scale, label = {"ns": (1e9, "ns"), "ms": (1e3, "ms"), "s": (1.0, "s")}[unit]
    base = results[baseline]
    print(f"\n{title}")
    print(f"  machine: {json.dumps(machine())}")
    width = max(len(n) for n in results)
    print(f"  {'variant':<{width}}  {label:>12}  ratio to {baseline}")
    for name, value in results.items():
        print(f"  {name:<{width}}  {value * scale:>12.2f}  {value / base:>6.2f}x")
    for key, value in (extra or {}).items():
        print(f"  {key}: {value}")
    if args.json:
        payload = {
            "title": title,
            "machine": machine(),
            "unit": "seconds",
            "baseline": baseline,
            "results": results,
            "ratios": {k: v / base for k, v in results.items()},
            **(extra or {}),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


def anycapture_peer() -> Any | None:
    """AnyCapture 0.1.4, installed into bench/.peers and loaded by file path.

    Its wheel vendors an old ``timm`` and shares our import name, so it never goes
    on sys.path: only its one module file is loaded, under another name.
    """
    target = PEERS_DIR / f"anycapture-{ANYCAPTURE_PEER}"
    module_file = target / "anycapture" / "anycapture.py"
    if not module_file.is_file():
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(target),
                f"anycapture=={ANYCAPTURE_PEER}",
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not module_file.is_file():
            print(f"  (AnyCapture {ANYCAPTURE_PEER} unavailable: {done.stderr.strip()[-200:]})")
            return None
    spec = importlib.util.spec_from_file_location("anycapture_peer_014", module_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
