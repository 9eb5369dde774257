"""Ctrl-C and SIGTERM with and without drawing workers: the run stops at once, its
workers are gone, every file on disk is complete and listed, and it exits 130 or 143
with one line, however many signals arrive."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

from .conftest import CAT, KNOWN

pytestmark = pytest.mark.slow


def _start(
    tmp_path: Path, jobs: str, group: bool = False, decode: str = "2"
) -> tuple[subprocess.Popen[str], Path]:
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(40):
        shutil.copy(CAT, images / f"img{i:02d}.jpg")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "anycapture", "render", "-m", f"{KNOWN}:slow"]
    command += ["-i", str(images), "-o", str(out), "--batch-size", "1", "--jobs", jobs]
    command += ["--decode-workers", decode]  # DataLoader workers reading images, or none
    command += ["--figures", "head,heads,grid", "--layer", "all", "-q"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        start_new_session=group,
    )
    manifest = out / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if manifest.exists() and len(json.loads(manifest.read_text())["figures"]) >= 6:
            return process, out
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the run never got going")


def _children(process: subprocess.Popen[str]) -> list[psutil.Process]:
    return psutil.Process(process.pid).children(recursive=True)


def _finish(process: subprocess.Popen[str], code: int, word: str) -> str:
    """The process ends and closes its pipes (no worker keeps them open) in time."""
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == [
        f"anycapture: error: {word}; finished files are valid and listed in manifest.json"
    ], stderr
    return stderr


def _check_out(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False
    listed = {f["path"] for f in manifest["figures"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert listed and listed == on_disk  # complete files all listed; listed files all there
    for path in listed:
        with Image.open(out / path) as png:
            png.verify()
    assert not list(out.rglob("*.part")) and not list(out.rglob(".*.part"))


def _gone(workers: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, alive


@pytest.mark.parametrize(("jobs", "decode"), [("0", "0"), ("2", "2")])
def test_sigterm_stops_like_ctrl_c(tmp_path: Path, jobs: str, decode: str) -> None:
    process, out = _start(tmp_path, jobs, decode=decode)
    workers = _children(process)
    process.send_signal(signal.SIGTERM)
    _finish(process, 143, "terminated")
    _gone(workers)
    _check_out(out)


def test_sigterm_to_the_process_group(tmp_path: Path) -> None:
    """What a job scheduler or CI cancellation does: every process gets SIGTERM."""
    process, out = _start(tmp_path, "2", group=True)
    workers = _children(process)
    assert any("python" in w.name() for w in workers)
    os.killpg(process.pid, signal.SIGTERM)
    _finish(process, 143, "terminated")
    _gone(workers)
    _check_out(out)


@pytest.mark.parametrize(("jobs", "decode"), [("0", "0"), ("0", "2"), ("2", "2")])
def test_ctrl_c_pressed_many_times(tmp_path: Path, jobs: str, decode: str) -> None:
    process, out = _start(tmp_path, jobs, group=True, decode=decode)
    workers = _children(process)
    for _ in range(6):  # a terminal sends SIGINT to the whole foreground group
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.03)
    stderr = _finish(process, 130, "interrupted")
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    _gone(workers)
    _check_out(out)


def test_parent_killed_outright_leaves_no_workers(tmp_path: Path) -> None:
    process, _out = _start(tmp_path, "2")
    workers = [w for w in _children(process) if "resource_tracker" not in " ".join(w.cmdline())]
    process.kill()
    process.communicate(timeout=30)
    _gone(workers)  # they watch their parent and exit
