"""``--image-list`` is read within bounds: a device (``/dev/zero`` was read until the
kernel killed the run at 22.6 GB) is refused, a line longer than any path is refused
in one line (a 10 MB line was a raw OSError), and a pipe (``<(find ...)``) still works."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from .conftest import REPO, read_manifest

SCENE = REPO / "assets" / "demo" / "scene0.png"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_is_refused(cli, tmp_path: Path) -> None:
    result = cli("render", "-m", "demo", "--image-list", "/dev/zero", "-o", str(tmp_path / "o"))
    assert result.exit_code == 2 and "is not a regular file" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_line_longer_than_any_path_is_refused(cli, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("a" * 100_000 + "\n")
    result = cli("render", "-m", "demo", "--image-list", str(listing), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2 and "longer than any path" in result.stderr
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 400


def test_a_pipe_still_works(cli, tmp_path: Path) -> None:
    pipe = tmp_path / "list.fifo"
    os.mkfifo(pipe)

    def feed() -> None:
        with open(pipe, "w") as handle:
            handle.write(f"{SCENE}\n")

    writer = threading.Thread(target=feed)
    writer.start()
    out = tmp_path / "o"
    result = cli("render", "-m", "demo", "--image-list", str(pipe), "-o", str(out))
    writer.join(timeout=30)
    assert result.exit_code == 0, result.stderr
    assert {f["image"] for f in read_manifest(out)["figures"]} == {str(SCENE)}


def test_a_folder_line_is_named_a_folder(cli, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path}\n")
    result = cli("render", "-m", "demo", "--image-list", str(listing), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2 and "a folder, not an image file" in result.stderr
    assert "relative paths" not in result.stderr  # the line is absolute
