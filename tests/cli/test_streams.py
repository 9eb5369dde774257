"""stderr that cannot be written (closed with ``2>&-``, or ``2>/dev/full``) never
changes how a run ends: the exit code is the documented one (it was 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

SCENE = REPO / "assets" / "demo" / "scene0.png"


def _run(args: list[str], stderr: str, cwd: Path) -> int:
    command = [sys.executable, "-m", "anycapture", "render", *args]
    if stderr == "full":
        with open("/dev/full", "w") as full:
            return subprocess.run(command, stderr=full, cwd=cwd, timeout=300).returncode
    return subprocess.run(command, cwd=cwd, timeout=300, preexec_fn=lambda: os.close(2)).returncode


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("stderr", ["full", "closed"])
def test_bad_input_exits_2_whatever_stderr_is(tmp_path: Path, stderr: str) -> None:
    missing = str(tmp_path / "missing.png")
    assert _run(["-m", "demo", "-i", missing, "-o", "out"], stderr, tmp_path) == 2


@pytest.mark.slow
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("stderr", ["full", "closed"])
def test_a_good_run_exits_0_whatever_stderr_is(tmp_path: Path, stderr: str) -> None:
    assert _run(["-m", "demo", "-i", str(SCENE), "-o", "out"], stderr, tmp_path) == 0
    assert (tmp_path / "out" / "manifest.json").exists()
