"""Crafted ``--from-maps`` files: a valid one taken apart and broken one way at a time,
and a deflate bomb (a few MB declaring GiBs) written without compressing GiBs."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

_CHUNK = 1 << 24


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def write_npz(path: Path, arrays: dict[str, Any], meta: Any = None) -> Path:
    """``arrays`` with ``meta`` (any JSON value, or raw text) as --save-maps stores it."""
    arrays = dict(arrays)
    if meta is not None:
        arrays["meta"] = np.array(meta if isinstance(meta, str) else json.dumps(meta))
    np.savez_compressed(path, **arrays)
    return path


def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def _deflated_zeros(header: bytes, zeros: int, exact_crc: bool) -> tuple[bytes, int]:
    """Raw deflate of ``header + zeros`` bytes: one compressed MiB-block repeated
    (blocks after a full flush do not refer back, so repeating them is valid)."""
    encoder = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [encoder.compress(header) + encoder.flush(zlib.Z_FULL_FLUSH)]
    chunk = bytes(_CHUNK)
    block = encoder.compress(chunk) + encoder.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(header)
    full, rest = divmod(zeros, _CHUNK)
    parts += [block] * full
    parts.append(encoder.compress(bytes(rest)) + encoder.flush())
    if exact_crc:
        for _ in range(full):
            crc = zlib.crc32(chunk, crc)
        crc = zlib.crc32(bytes(rest), crc)
    return b"".join(parts), crc


def _member(archive: io.BytesIO, name: str, data: bytes, size: int, crc: int) -> bytes:
    """Write one deflated member's local header + data; return its central-directory entry."""
    offset = archive.tell()
    encoded = name.encode()
    fields = (20, 0, 8, 0, 0, crc & 0xFFFFFFFF, len(data), size, len(encoded), 0)
    archive.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields) + encoded + data)
    central = (20, 20, 0, 8, 0, 0, crc & 0xFFFFFFFF, len(data), size, len(encoded), 0, 0, 0, 0)
    return struct.pack("<4s6H3L5HLL", b"PK\x01\x02", *central, 0, offset) + encoded


def bomb_npz(
    path: Path, shape: tuple[int, ...], meta: dict[str, Any], exact_crc: bool = False
) -> Path:
    """A maps file whose ``layer_000`` is deflated zeros of ``shape`` (float32), under 4 GiB.

    With ``exact_crc`` the file is fully valid (numpy would load it); without, only
    its end is wrong, which a loader finds after reading everything.
    """
    header = _npy_header(shape)
    zeros = int(np.prod(shape)) * 4
    assert len(header) + zeros < 1 << 32, "stay below zip64"
    archive = io.BytesIO()
    entries = []
    small = {
        "meta.npy": np.array(json.dumps(meta)),
        "view.npy": np.zeros((128, 128, 3), np.uint8),
    }
    for name, array in small.items():
        raw = io.BytesIO()
        np.save(raw, array)
        data = raw.getvalue()
        encoder = zlib.compressobj(9, zlib.DEFLATED, -15)
        packed = encoder.compress(data) + encoder.flush()
        entries.append(_member(archive, name, packed, len(data), zlib.crc32(data)))
    packed, crc = _deflated_zeros(header, zeros, exact_crc)
    entries.append(_member(archive, "layer_000.npy", packed, len(header) + zeros, crc))
    start = archive.tell()
    directory = b"".join(entries)
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), start, 0
    )
    path.write_bytes(archive.getvalue() + directory + end)
    assert zipfile.is_zipfile(path)
    return path
