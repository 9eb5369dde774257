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
    (tmp_path / ".hidden").mkdir()
    shutil.copy(DEMO, tmp_path / ".hidden" / "h.png")
    shutil.copy(DEMO, tmp_path / ".dot.png")
    found = collect_images([f"{tmp_path}/**/*.png"])
    assert found == [tmp_path / "a.png", tmp_path / "sub" / "b.png"]  # as glob.glob: no dots


def test_plain_and_relative_globs_keep_working(tmp_path: Path, monkeypatch) -> None:
    shutil.copy(DEMO, tmp_path / "x.png")
    shutil.copy(DEMO, tmp_path / "y.PNG")
    monkeypatch.chdir(tmp_path)
    assert collect_images(["*.png"]) == [Path("x.png")]
    assert collect_images(["**/*.png", "x.png"]) == [Path("x.png")]
    assert collect_images([str(tmp_path / "*.png")]) == [tmp_path / "x.png"]


def test_a_float32_tiff_reads_rescaled_to_its_range(tmp_path: Path) -> None:
    """A float32 TIFF (microscopy, depth maps) was refused as "truncated or corrupt"
    (Pillow's buffer is read-only); NaN and infinities take its lowest value."""
    import numpy as np
    from PIL import Image

    from anycapture.images import read_image

    values = np.linspace(-3.0, 5.0, 40 * 50, dtype=np.float32).reshape(40, 50)
    values[0, :3] = (np.nan, np.inf, -np.inf)
    Image.fromarray(values, mode="F").save(tmp_path / "depth.tif")
    rgb = np.asarray(read_image(tmp_path / "depth.tif"))
    assert rgb.shape == (40, 50, 3) and rgb[-1, -1, 0] == 255 and rgb[0, 3, 0] == 0
    assert (rgb[0, :3] == 0).all()
