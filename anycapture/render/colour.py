"""Colour mapping and compositing with matplotlib colormaps and Pillow resampling."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["UPSAMPLING", "colourise", "encode_png", "overlay", "upsample"]

UPSAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


@lru_cache(maxsize=16)
def colormap_lut(name: str) -> np.ndarray:
    """A (256, 3) uint8 lookup table of a matplotlib colormap."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(
            f"unknown colormap {name!r}; try viridis, inferno, magma, jet or any matplotlib name"
        ) from None
    return (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def normalise(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    span = vmax - vmin if vmax > vmin else 1.0
    return np.clip((values - vmin) / span, 0.0, 1.0)


def colourise(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> np.ndarray:
    """Map values to RGB uint8 with a colormap over [vmin, vmax]."""
    index = (normalise(values, vmin, vmax) * 255).round().astype(np.uint8)
    return colormap_lut(cmap)[index]


def upsample(grid: np.ndarray, size_hw: tuple[int, int], method: str) -> np.ndarray:
    """Resize a float grid to ``size_hw`` (rows, cols) with Pillow."""
    image = Image.fromarray(grid.astype(np.float32), mode="F")
    resized = image.resize((size_hw[1], size_hw[0]), UPSAMPLING[method])
    return np.asarray(resized, dtype=np.float32)


def overlay(
    view: Image.Image, heat: np.ndarray, cmap: str, alpha: float, vmin: float, vmax: float
) -> np.ndarray:
    """Blend a colour-mapped heat map (same size as ``view``) over the image."""
    base = np.asarray(view.convert("RGB"), dtype=np.float32)
    coloured = colourise(heat, cmap, vmin, vmax).astype(np.float32)
    return (base * (1.0 - alpha) + coloured * alpha).round().astype(np.uint8)


def encode_png(pixels: Any) -> bytes:
    """RGB pixels (an array or a Pillow image) as PNG bytes (``png.py``: fast, exact)."""
    from .png import write_png

    if isinstance(pixels, Image.Image):
        pixels = np.asarray(pixels.convert("RGB"))
    return write_png(pixels)
