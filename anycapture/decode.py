"""Decoding input images within bounded memory, as a viewer shows them.

- JPEGs decode reduced (``Image.draft``: 1/2, 1/4, 1/8 in the decoder), so a valid
  20000x20000 photo, which Pillow's bomb check refuses at full size, is read at
  2500x2500.  Other formats decode whole (they cannot decode reduced) and are then
  box-reduced (``Image.reduce``) before any conversion: a 12000x12000 16-bit PNG
  is rescaled to 8 bits on its 4000x4000 reduction, in float32, in place.
- EXIF orientation is applied (``ImageOps.exif_transpose``), so photos are processed
  and drawn upright, and ``--query-pixel`` counts pixels of the upright image.
- :func:`precrop` drops the parts of a very elongated image that a
  resize-shorter-side + centre-crop transform would crop anyway, before it resizes
  (a 1x4096 strip would otherwise be resized to 248x1,015,808 first).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

__all__ = ["FULL_SIZE", "MAX_SIDE", "open_reduced", "precrop", "to_rgb"]

FULL_SIZE = "anycapture_full_size"  # info key: (width, height) before reducing, upright
_ORIENTATION = 0x0112  # EXIF orientation; 5-8 turn the image a quarter
_TURNED = (5, 6, 7, 8)
MAX_SIDE = 4096  # decode larger images reduced: the model sees a few hundred pixels anyway
_JPEG_MAGIC = b"\xff\xd8\xff"
_BOMB_LIMIT = threading.Lock()
_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I", "F")


def open_reduced(path: Path) -> Image.Image:
    """``path`` as RGB, upright, at most ``MAX_SIDE`` a side; Pillow's errors pass through."""
    with _open(path) as image:
        full = image.size  # before a reduced decode; turned below as exif_transpose turns
        if image.getexif().get(_ORIENTATION, 1) in _TURNED:
            full = full[::-1]
        if image.format == "JPEG":
            image.draft(image.mode, (MAX_SIDE, MAX_SIDE))  # decode at 1/2, 1/4, 1/8 size
        image.load()
        upright = ImageOps.exif_transpose(image)  # a copy only when it turns
        rgb = to_rgb(_reduce(upright))
    if max(rgb.size) > MAX_SIDE:
        rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    rgb.info[FULL_SIZE] = full  # --query-pixel counts the original's pixels
    return rgb


def _open(path: Path) -> Image.Image:
    """Open lazily; a JPEG over Pillow's bomb limit is opened anyway when its reduced
    decoding (what :func:`open_reduced` asks for) is within the limit."""
    try:
        return Image.open(path)
    except Image.DecompressionBombError:
        with path.open("rb") as handle:
            if handle.read(3) != _JPEG_MAGIC:
                raise
        with _BOMB_LIMIT:
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                image = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = limit
        image.draft(image.mode, (MAX_SIDE, MAX_SIDE))
        if limit is not None and image.width * image.height > limit:
            image.close()
            raise
        return image


def _reduce(image: Image.Image) -> Image.Image:
    """Box-reduce by a whole factor to at most about ``MAX_SIDE`` (before converting)."""
    factor = math.ceil(max(image.size) / MAX_SIDE)
    if factor <= 1:
        return image
    if image.mode.startswith("I;16"):  # reduce() needs 32-bit "I": convert band by band
        return _reduce_in_bands(image, factor)
    if image.mode in ("P", "1"):
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.reduce(factor)


def _reduce_in_bands(image: Image.Image, factor: int) -> Image.Image:
    """``image.convert("I").reduce(factor)`` without the full-size 32-bit copy."""
    width, height = image.size
    rows = factor * 256
    reduced = Image.new("I", (math.ceil(width / factor), math.ceil(height / factor)))
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows))).convert("I")
        reduced.paste(band.reduce(factor), (0, top // factor))
    return reduced


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode as 8-bit RGB: high bit depth rescaled to its range, alpha over white."""
    if image.mode in _HIGH_DEPTH:
        # one writable copy, then in place (asarray of a float32 "F" image is Pillow's
        # read-only buffer); NaN and infinities of a float TIFF read as its lowest value
        values = np.array(image, dtype=np.float32)
        finite = np.isfinite(values)
        low = float(values[finite].min()) if finite.any() else 0.0
        high = float(values[finite].max()) if finite.any() else 0.0
        values[~finite] = low
        values -= low
        values *= 255.0 / (high - low) if high > low else 0.0
        return Image.fromarray(values.astype(np.uint8), mode="L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def precrop(image: Image.Image, steps: list[Any]) -> Image.Image:
    """Crop the long side of an elongated ``image`` to what ``steps`` would keep, when
    they are a resize of the shorter side followed by a centre crop (timm's and
    torchvision's evaluation transforms); otherwise ``image`` unchanged."""
    if len(steps) < 2 or type(steps[0]).__name__ != "Resize":
        return image
    if type(steps[1]).__name__ != "CenterCrop":
        return image
    size = getattr(steps[0], "size", None)
    size = size[0] if isinstance(size, (list, tuple)) and len(size) == 1 else size
    crop = getattr(steps[1], "size", None)
    if not isinstance(size, int) or not isinstance(crop, (list, tuple)) or len(crop) != 2:
        return image
    width, height = image.size
    short = min(width, height)
    # the long side's share that survives the crop, in original pixels, with a margin
    # for the resampling filter; only worth it for images far longer than that
    margin = 4 * math.ceil(short / size) + 2
    if width >= height:
        keep = min(width, math.ceil(crop[1] * short / size) + margin)
        if width > 2 * keep:
            left = (width - keep) // 2
            return image.crop((left, 0, left + keep, height))
    else:
        keep = min(height, math.ceil(crop[0] * short / size) + margin)
        if height > 2 * keep:
            top = (height - keep) // 2
            return image.crop((0, top, width, top + keep))
    return image
