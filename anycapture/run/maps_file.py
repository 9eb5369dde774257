"""One image's maps (:class:`ImageMaps`) and the ``--save-maps`` file format.

A maps file is a compressed ``.npz``: ``layer_000``... arrays ``(heads, Q, N)``, the
input ``view`` (uint8 RGB), and ``meta`` (JSON: format, model, image, layer names,
token layout, windows).  :class:`SavedMaps` feeds such files back into a run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..layout import TokenLayout
from .selection import SelectionError

__all__ = ["MAPS_FORMAT", "ImageMaps", "SavedMaps", "load_maps"]

MAPS_FORMAT = "anycapture-maps/1"


@dataclass
class ImageMaps:
    """One image's attention: ``(heads, Q, N)`` per layer, the view, the layout.

    ``model`` is what a maps file says about the model that made it (empty when the
    maps come from the model in this run).
    """

    layers: list[tuple[str, np.ndarray]]
    view: Image.Image
    layout: TokenLayout
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)  # layer -> (index, count)
    source: str = ""
    original_size: tuple[int, int] | None = None  # (width, height), when run from an image
    model: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)  # kind name -> its model pass's value

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.layers]

    def to_npz(self, model: dict[str, Any], float16: bool) -> bytes:
        """The maps file's bytes (written atomically by the caller)."""
        dtype = np.float16 if float16 else np.float32
        arrays = {f"layer_{i:03d}": maps.astype(dtype) for i, (_, maps) in enumerate(self.layers)}
        meta = {
            "format": MAPS_FORMAT,
            "model": model,
            "image": self.source,
            "layer_names": self.names,
            "layout": self.layout.to_dict(),
            "windows": {k: list(v) for k, v in self.windows.items()},
        }
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, meta=np.array(json.dumps(meta)), view=np.asarray(self.view), **arrays
        )
        return buffer.getvalue()


def load_maps(path: Path) -> ImageMaps:
    """Read what ``--save-maps`` wrote."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != MAPS_FORMAT:
                raise ValueError(f"unknown format {meta.get('format')!r}")
            names = meta["layer_names"]
            layers = [(n, data[f"layer_{i:03d}"].astype(np.float32)) for i, n in enumerate(names)]
            view = Image.fromarray(data["view"])
    except (OSError, KeyError, ValueError) as exc:
        raise SelectionError(
            f"--from-maps {path}: not a maps file written by --save-maps ({exc})"
        ) from None
    layout_data = meta["layout"]
    layout = TokenLayout(
        layout_data["prefix_tokens"],
        tuple(layout_data["grid"]),
        tuple(layout_data["prefix_names"]),
        tuple(layout_data["patch_size"]) if layout_data.get("patch_size") else None,
    )
    windows = {k: (v[0], v[1]) for k, v in meta.get("windows", {}).items()}
    source = meta.get("image", str(path))
    return ImageMaps(layers, view, layout, windows, source, model=meta["model"])


@dataclass
class SavedMaps:
    """Maps files as a run's source: no model, one file per image."""

    files: list[Path]
    model_info: dict[str, Any] = field(default_factory=lambda: {"source": "saved maps"})
    title: str = ""

    def __len__(self) -> int:
        return len(self.files)

    def images(self) -> Iterator[tuple[ImageMaps, Path]]:
        for path in self.files:
            yield load_maps(path), path

    def locate(self, image: ImageMaps, pixel: tuple[int, int]) -> tuple[float, float]:
        raise SelectionError("--query-pixel needs the model run; with --from-maps use --query")
