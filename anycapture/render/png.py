"""PNG writing for figures: the Up filter (numpy) and one zlib stream.

Pillow's encoder tries every PNG filter on every row to pick the best, which costs
more than drawing a figure does; figures (flat colours, smooth maps, photos) lose
little with one filter, and "Up" costs one numpy subtraction.  The stream is
deflated by python-isal (Intel's ISA-L: 5-8x faster than zlib at a similar size,
``bench/render_throughput.py``), or by the standard library's zlib where isal has
no wheel.  The output is a standard 8-bit RGB (or grey) PNG that any reader decodes
to the exact pixels.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

try:
    from isal import isal_zlib as _deflate
except ImportError:  # no wheel for this platform: the standard library's zlib
    _deflate = zlib  # type: ignore[assignment]

__all__ = ["write_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2  # PNG filter type: each byte minus the byte above it
_LEVEL = 1  # isal 0-3, zlib 0-9: at 1 both compress figures nearly as well as at 6, faster


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(pixels: np.ndarray) -> bytes:
    """``(H, W, 3)`` RGB or ``(H, W)`` grey uint8 pixels as PNG bytes."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"write_png needs (H, W) or (H, W, 3) uint8 pixels, got {pixels.shape}")
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = _UP
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # wraps modulo 256, as PNG wants
    colour_type = 2 if pixels.ndim == 3 else 0
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    data = _deflate.compress(filtered.tobytes(), _LEVEL)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
