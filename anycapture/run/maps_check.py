"""Checking a ``--from-maps`` file before loading it: a crafted file is refused, never loaded.

A maps file is a zip of ``.npy`` arrays.  Each array's header declares its shape
and dtype; those are read (a few hundred bytes each) and checked against each other
and against the token layout in ``meta`` before any array is read, so a few MB of
deflated zeros declaring ``(4, 32768, 8192)`` cannot fill memory.  Every problem
is a :class:`MapsFileError` (a usage error: exit 2) naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..layout import TokenLayout
from .selection import SelectionError

__all__ = [
    "MAPS_FORMAT",
    "MAX_MAPS_BYTES",
    "MAX_VIEW_SIDE",
    "CheckedMaps",
    "MapsFileError",
    "check_maps_file",
]

MAPS_FORMAT = "anycapture-maps/1"

MAX_MAPS_BYTES = 2 << 30  # all layers once read: 2 GiB (a ViT-L/16 at 224 px needs 60 MB)
MAX_TOKENS = 8192  # keys of one map: SAM's 64x64 windows-free layers have 4096
MAX_VIEW_SIDE = 8192  # the model's input view, in pixels
MAX_META_CHARS = 1 << 22
MAP_DTYPES = frozenset({np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)})


class MapsFileError(SelectionError):
    """A --from-maps file is not one --save-maps wrote, or declares impossible sizes."""


@dataclass(frozen=True)
class Header:
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass(frozen=True)
class CheckedMaps:
    """What a maps file declares, checked; the arrays are still unread."""

    meta: dict[str, Any]
    layout: TokenLayout
    names: list[str]
    windows: dict[str, tuple[int, int]]


def check_maps_file(data: Any) -> CheckedMaps:
    """Check an open ``np.load`` result; raises ``ValueError`` naming the problem."""
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError("not an .npz archive")
    headers = {name: _header(data.zip, name) for name in data.files}
    meta = _meta(data, headers)
    layout = _layout(meta.get("layout"))
    names = meta.get("layer_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError("meta 'layer_names' must be a non-empty list of names")
    _check_view(headers.get("view"), layout)
    total = 0
    for index in range(len(names)):
        total += _check_layer(f"layer_{index:03d}", headers, layout)
    if total > MAX_MAPS_BYTES:
        raise ValueError(
            f"its maps would take {total / 2**30:.1f} GiB once read (as stored, plus the "
            f"float32 copy drawn from), more than the {MAX_MAPS_BYTES / 2**30:.0f} GiB a maps "
            "file may hold"
        )
    return CheckedMaps(meta, layout, names, _windows(meta.get("windows", {}), names))


def _header(archive: zipfile.ZipFile, name: str) -> Header:
    """An array's declared shape and dtype, and a check that the member holds exactly
    that many bytes (read from the header alone)."""
    info = archive.getinfo(f"{name}.npy")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"{name}: unsupported .npy version {version}")
        offset = member.tell()
    if dtype.hasobject or any(not isinstance(s, int) or s < 0 for s in shape):
        raise ValueError(f"{name}: declares an unusable array ({dtype}, {shape})")
    declared = offset + math.prod(shape) * dtype.itemsize
    if declared != info.file_size:
        raise ValueError(
            f"{name}: declares shape {shape} ({declared} bytes) but holds {info.file_size}"
        )
    return Header(tuple(shape), dtype)


def _meta(data: Any, headers: dict[str, Header]) -> dict[str, Any]:
    header = headers.get("meta")
    if header is None or header.shape != () or header.dtype.kind != "U":
        raise ValueError("no 'meta' text")
    if header.dtype.itemsize // 4 > MAX_META_CHARS:
        raise ValueError(f"'meta' is over {MAX_META_CHARS} characters")
    try:
        meta = json.loads(str(data["meta"]))
    except RecursionError:  # a forged meta of nested lists: not one --save-maps wrote
        raise ValueError("'meta' is nested too deeply") from None
    if not isinstance(meta, dict):
        raise ValueError("'meta' is not a JSON object")
    if meta.get("format") != MAPS_FORMAT:
        raise ValueError(f"unknown format {meta.get('format')!r}")
    if not isinstance(meta.get("model"), dict):
        raise ValueError("meta 'model' is not an object")
    if not isinstance(meta.get("image", ""), str):
        raise ValueError("meta 'image' is not text")
    return meta


def _pair(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    )


def _layout(data: Any) -> TokenLayout:
    if not isinstance(data, dict):
        raise ValueError("meta 'layout' is missing or not an object")
    prefix, grid = data.get("prefix_tokens"), data.get("grid")
    names, patch = data.get("prefix_names", []), data.get("patch_size")
    if not isinstance(prefix, int) or isinstance(prefix, bool) or not 0 <= prefix <= 1024:
        raise ValueError("layout 'prefix_tokens' must be a count (0..1024)")
    if not _pair(grid) or (patch is not None and not _pair(patch)):
        raise ValueError("layout 'grid' and 'patch_size' must be two positive integers")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("layout 'prefix_names' must be a list of names")
    if names and len(names) != prefix:
        raise ValueError("layout 'prefix_names' must name each prefix token")
    return TokenLayout(prefix, tuple(grid), tuple(names), tuple(patch) if patch else None)


def _check_view(header: Header | None, layout: TokenLayout) -> None:
    if header is None:
        raise ValueError("no 'view' image")
    if header.dtype != np.uint8 or len(header.shape) != 3 or header.shape[2] != 3:
        raise ValueError(f"'view' must be an RGB uint8 image, not {header.dtype} {header.shape}")
    height, width = header.shape[:2]
    if not (1 <= height <= MAX_VIEW_SIDE and 1 <= width <= MAX_VIEW_SIDE):
        raise ValueError(f"'view' is {width}x{height}; at most {MAX_VIEW_SIDE} pixels a side")
    if layout.grid[0] > height or layout.grid[1] > width:
        raise ValueError(f"layout grid {layout.grid} is finer than the {width}x{height} view")


def _check_layer(key: str, headers: dict[str, Header], layout: TokenLayout) -> int:
    """A layer's declared (heads, Q, N): floats, N and Q within the layout's tokens."""
    header = headers.get(key)
    if header is None:
        raise ValueError(f"no array {key} for a listed layer")
    if header.dtype not in MAP_DTYPES or len(header.shape) != 3:
        raise ValueError(
            f"{key} must be a (heads, Q, N) float array, not {header.dtype} {header.shape}"
        )
    heads, queries, tokens = header.shape
    # one side is the image's tokens; the other may be a cross-attention layer's (77
    # text keys, 100 object queries), up to MAX_TOKENS; the bytes cap bounds the file
    image_side = min(queries, tokens) <= layout.num_tokens
    if not (
        1 <= heads <= 4096
        and 1 <= queries <= MAX_TOKENS
        and 1 <= tokens <= MAX_TOKENS
        and image_side
    ):
        raise ValueError(
            f"{key} has shape {header.shape}: the layout has {layout.num_tokens} tokens "
            f"(at most {MAX_TOKENS} queries and keys are drawn)"
        )
    # bytes once read: the array as stored, and the float32 copy the figures use
    copy = 0 if header.dtype == np.float32 else 4
    return heads * queries * tokens * (header.dtype.itemsize + copy)


def _windows(data: Any, names: list[str]) -> dict[str, tuple[int, int]]:
    if not isinstance(data, dict):
        raise ValueError("meta 'windows' is not an object")
    windows = {}
    for name, value in data.items():
        if name not in names or not (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and 0 <= value[0] < value[1]
        ):
            raise ValueError(f"meta 'windows' entry {name!r}: must be a layer's [index, count]")
        windows[name] = (value[0], value[1])
    return windows
