"""Each benchmark runs end to end at tiny sizes, so none of them rots.

Timings are printed, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow]
pytest.importorskip("torch")


@pytest.mark.parametrize(
    "script",
    [
        "call_overhead.py",
        "forward_overhead.py",
        "cli_latency.py",
        "render_throughput.py",
        "reentry.py",
        "sources_overhead.py",
        "dataset_scale.py",
        "stop_latency.py",
        "bounded_inputs.py",
    ],
)
def test_benchmark_runs(script: str, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    args = [sys.executable, str(REPO / "bench" / script), "--quick", "--json", str(out)]
    if script in ("call_overhead.py", "forward_overhead.py"):
        args.append("--no-peers")  # installing the peer needs the package index
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "machine" in done.stdout
    written = list(tmp_path.glob("result*.json"))
    assert written, "no JSON written"
    assert all(isinstance(json.loads(p.read_text()), dict) for p in written)
