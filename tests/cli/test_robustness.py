"""Interrupted runs, shared output directories, and names that try to escape --out."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from anycapture.images import safe_stem
from anycapture.run.outdir import locked_output_dir

from .conftest import CAT, KNOWN

pytestmark = pytest.mark.slow


def _images(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        shutil.copy(CAT, folder / f"img{i:02d}.jpg")
    return folder


def _default_sigint() -> None:
    """A shell starts background commands with SIGINT ignored, and a child inherits
    that: the run under test must get Ctrl-C however the suite itself was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("jobs", ["0", "2"])
def test_ctrl_c_mid_batch_leaves_valid_listed_files(tmp_path: Path, jobs: str) -> None:
    images = _images(tmp_path / "imgs", 40)
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anycapture",
            "render",
            "-m",
            f"{KNOWN}:blocking",
            "-i",
            str(images),
            "-o",
            str(out),
            "--batch-size",
            "1",
            "--jobs",
            jobs,
            "-q",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_default_sigint,
    )
    manifest_path = out / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # figures on disk: the manifest is rewritten
        if manifest_path.exists() and len(list(out.rglob("*.png"))) >= 6:  # only now and then
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    manifest = json.loads(manifest_path.read_text())
    assert manifest["complete"] is False
    listed = {f["path"] for f in manifest["figures"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert len(listed) >= 6 and listed == on_disk  # the interrupt wrote the manifest
    for path in listed:
        with Image.open(out / path) as png:
            png.verify()
    assert not list(out.rglob("*.part"))


def test_out_in_use_by_another_run(cli, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    with locked_output_dir(out):
        result = cli("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(out))
    assert result.exit_code == 2
    assert "in use by another anycapture run" in result.stderr
    assert not (out / "manifest.json").exists()


def test_output_names_never_escape_out(cli, tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    shutil.copy(CAT, nested / "..jpg")  # hidden: globs skip it, as the shell's do
    shutil.copy(CAT, nested / "cat.jpg")
    shutil.copy(CAT, tmp_path / "a" / "cat.jpg")
    out = tmp_path / "a" / "b" / "out"
    pattern = str(nested / ".." / "b" / "*.jpg")  # a glob through '..', absolute
    result = cli(
        "render",
        "-m",
        f"{KNOWN}:build",
        "-i",
        pattern,
        "-i",
        str(tmp_path / "a" / "cat.jpg"),
        "-o",
        str(out),
        "--figures",
        "grid",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["cat-2/grid_L01_H0_q1-2.png", "cat/grid_L01_H0_q1-2.png"]
    assert not list(tmp_path.glob("a/*.png")) and not list(nested.glob("*.png"))


def test_safe_stem() -> None:
    taken: set[str] = set()
    assert safe_stem(Path("../../etc/passwd"), taken) == "passwd"
    assert safe_stem(Path("/abs/..."), taken) == "image"
    assert safe_stem(Path("x/ä b?.jpg"), taken) == "b"
    assert safe_stem(Path("y/passwd.png"), taken) == "passwd-2"


def test_output_files_are_world_readable(cli, tmp_path: Path) -> None:
    out = tmp_path / "modes"
    result = cli("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    for path in [out / "manifest.json", *out.rglob("*.png")]:
        assert path.stat().st_mode & 0o044 == 0o044, oct(path.stat().st_mode)
