"""Images decode within bounded memory and upright: reduced JPEG decoding past Pillow's
bomb limit, 16-bit PNGs reduced before conversion, elongated images cropped before
they are resized, EXIF orientation applied (and --query-pixel counts upright pixels)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from anycapture import decode
from anycapture.images import ImageInputError, read_image

from .conftest import CAT, KNOWN, read_manifest


def _oriented(path: Path, orientation: int) -> Path:
    """A 60x30 picture (red left, blue right) stored sideways with an EXIF orientation."""
    pixels = np.zeros((30, 60, 3), np.uint8)
    pixels[:, :30] = (255, 0, 0)
    pixels[:, 30:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif)
    return path


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_is_applied(tmp_path: Path, suffix: str) -> None:
    path = _oriented(tmp_path / f"rotated{suffix}", 6)  # shown turned 90 degrees clockwise
    image = read_image(path)
    with Image.open(path) as raw:
        expected = ImageOps.exif_transpose(raw).convert("RGB")
    assert image.size == (30, 60) == expected.size
    difference = np.abs(np.asarray(image, np.int16) - np.asarray(expected, np.int16))
    assert difference.mean() < 2  # the same picture (JPEG decoding aside)
    top, bottom = np.asarray(image)[5, 15], np.asarray(image)[55, 15]
    assert top[0] > 200 and bottom[2] > 200  # red on top, blue below, as a viewer shows it


def test_query_pixel_counts_pixels_of_the_upright_image(cli, tmp_path: Path) -> None:
    path = _oriented(tmp_path / "rotated.png", 6)
    out = tmp_path / "out"
    # (15, 33) exists only in the upright 30x60 image, not in the stored 60x30 one
    result = cli("render", "-m", f"{KNOWN}:build", "-i", str(path), "-o", str(out),
                 "--figures", "grid", "--query-pixel", "15,33", "-q")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert read_manifest(out)["figures"][0]["query"] is not None


@pytest.mark.parametrize("pixel", ["290,190", "110,5", "203,97"])
def test_query_pixel_counts_pixels_of_the_file_when_decoded_reduced(
    cli, tmp_path: Path, monkeypatch, pixel: str
) -> None:
    """A 400x200 image decoded reduced to 100x50: --query-pixel still counts the file's
    pixels (290,190 exists only there) and picks the patch it picks at full size."""
    path = tmp_path / "wide.png"
    Image.open(CAT).convert("RGB").resize((400, 200)).save(path)
    queries = []
    for side in (decode.MAX_SIDE, 100):
        monkeypatch.setattr(decode, "MAX_SIDE", side)
        out = tmp_path / f"out{side}"
        result = cli("render", "-m", f"{KNOWN}:build", "-i", str(path), "-o", str(out),
                     "--figures", "grid", "--query-pixel", pixel, "-q")  # fmt: skip
        assert result.exit_code == 0, result.stderr
        queries.append(read_manifest(out)["figures"][0]["query"])
    assert queries[0] == queries[1]


def test_jpeg_over_the_bomb_limit_decodes_reduced(tmp_path: Path, monkeypatch) -> None:
    png = tmp_path / "cat.png"
    Image.open(CAT).save(png)
    monkeypatch.setattr(decode, "MAX_SIDE", 100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40_000)  # the cat (451x300) is > 2x that
    image = read_image(CAT)  # decoded at 1/2 (226x150, within the limit), then reduced
    assert max(image.size) <= 100
    with pytest.raises(ImageInputError, match="too large to decode safely"):
        read_image(png)  # a PNG cannot decode reduced: still refused


@pytest.mark.slow
def test_16_bit_png_is_reduced_before_conversion(tmp_path: Path) -> None:
    """A 10000x10000 16-bit PNG (under 1 MB) read in a process capped at 900 MiB of
    address space: converting it in float64 at full size needed 3 GB."""
    values = np.zeros((10000, 10000), np.uint16)
    values[::7, ::5] = 60000
    values[4000:6000, 2000:4000] = 30000
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    del values
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (900 << 20, 900 << 20))\n"
        "from pathlib import Path\n"
        "from anycapture.images import read_image\n"
        "image = read_image(Path(sys.argv[1]))\n"
        "print(image.mode, *image.size, image.getpixel((1500, 1500)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script, str(path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    mode, width, height, *_ = done.stdout.split(maxsplit=3)
    assert (mode, int(width), int(height)) == ("RGB", 3334, 3334)


def test_elongated_image_is_cropped_before_it_is_resized() -> None:
    from torchvision import transforms

    steps = [transforms.Resize(248), transforms.CenterCrop((224, 224))]
    strip = Image.new("RGB", (4096, 1), (10, 20, 30))
    cropped = decode.precrop(strip, steps)
    assert cropped.size[1] == 1 and cropped.size[0] <= 8  # not resized to 1,015,808 wide
    # what the crop keeps is what the model sees anyway
    ramp = np.linspace(0, 255, 2000)[None, :, None] * np.ones((40, 1, 3))  # smooth content
    wide = Image.fromarray((ramp + np.linspace(0, 60, 40)[:, None, None]).astype(np.uint8))
    kept = decode.precrop(wide, steps)
    assert kept.size[0] < 200 and kept.size[1] == 40
    full, short = wide, kept
    for step in steps:
        full, short = step(full), step(short)
    difference = np.abs(np.asarray(full, np.int16) - np.asarray(short, np.int16))
    assert full.size == short.size == (224, 224) and difference.mean() < 3
    # not resize-shorter-side + centre crop: untouched
    squash = [transforms.Resize((224, 224)), transforms.CenterCrop((224, 224))]
    assert decode.precrop(strip, squash) is strip
    assert decode.precrop(CAT_IMAGE(), steps).size == (451, 300)  # ordinary: untouched


def CAT_IMAGE() -> Image.Image:
    with Image.open(CAT) as image:
        return image.convert("RGB")
