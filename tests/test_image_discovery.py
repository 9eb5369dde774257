"""Input discovery: a recursive glob through symlink loops ends, and each file is
rendered once however many names reach it (no model needed)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from anycapture.images import collect_images

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo" / "scene0.png"


def test_recursive_glob_through_symlink_loops_finds_each_image_once(tmp_path: Path) -> None:
    shutil.copy(DEMO, tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    shutil.copy(DEMO, tmp_path / "sub" / "b.png")
    os.symlink(".", tmp_path / "self")  # one loop rendered a.png 41 times
    os.symlink("..", tmp_path / "sub" / "up")  # two loops never finished
    os.symlink("a.png", tmp_path / "alias.png")  # a second name for a.png
    found = collect_images([f"{tmp_path}/**/*.png"])
    assert found == [tmp_path / "a.png", tmp_path / "sub" / "b.png"]


def test_plain_and_relative_globs_keep_working(tmp_path: Path, monkeypatch) -> None:
    shutil.copy(DEMO, tmp_path / "x.png")
    shutil.copy(DEMO, tmp_path / "y.PNG")
    monkeypatch.chdir(tmp_path)
    assert collect_images(["*.png"]) == [Path("x.png")]
    assert collect_images(["**/*.png", "x.png"]) == [Path("x.png")]
    assert collect_images([str(tmp_path / "*.png")]) == [tmp_path / "x.png"]
