"""One image's maps (:class:`ImageMaps`) and the ``--save-maps`` file format.

A maps file is a compressed ``.npz``: ``layer_000``... arrays ``(heads, Q, N)``, the
input ``view`` (uint8 RGB), and ``meta`` (JSON: format, model, image, layer names,
token layout, windows).  :class:`SavedMaps` feeds such files back into a run.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..layout import TokenLayout
from .maps_check import MAPS_FORMAT, MapsFileError, check_maps_file
from .selection import SelectionError

__all__ = ["MAPS_FORMAT", "ImageMaps", "MapsFileError", "MapsSource", "SavedMaps", "load_maps"]


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
    decoded_size: tuple[int, int] | None = None  # smaller when decoded reduced (decode.py)
    model: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)  # kind name -> its model pass's value

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.layers]

    def check_drawable(self, window: int | None) -> None:
        """Refuse what would draw as noise: NaN maps, or --window on a model without windows."""
        self.check_finite()
        if window is not None and not self.windows:
            raise SelectionError(
                f"--window {window}: this model has no windowed attention layers; drop --window"
            )

    def check_finite(self, where: str = "") -> None:
        """Refuse maps holding NaN or infinity (they would draw as noise and warnings)."""
        for name, maps in self.layers:
            if not np.isfinite(maps).all():
                where = where or (f"image {self.source}" if self.source else "this image")
                raise MapsFileError(
                    f"{where}: layer {name} has NaN or infinite attention weights; "
                    "check the model's weights (--checkpoint) and --device"
                )

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


def load_maps(path: Path, what: str = "--from-maps") -> ImageMaps:
    """Read what ``--save-maps`` wrote; anything else, or impossible sizes, is refused
    before its arrays are read (see :mod:`.maps_check`).  ``what`` names the file in
    the error (the option it came from)."""
    try:
        if not zipfile.is_zipfile(path):  # np.load would read a plain .npy whole
            raise ValueError("not an .npz archive")
        with np.load(path, allow_pickle=False) as data:
            checked = check_maps_file(data)
            layers = [
                (name, data[f"layer_{i:03d}"].astype(np.float32, copy=False))
                for i, name in enumerate(checked.names)
            ]
            view = Image.fromarray(data["view"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc) or type(exc).__name__
        raise MapsFileError(
            f"{what} {path}: not a maps file written by --save-maps ({reason})"
        ) from None
    source = checked.meta.get("image") or str(path)
    model = checked.meta["model"]
    image = ImageMaps(layers, view, checked.layout, checked.windows, source, model=model)
    image.check_finite(f"{what} {path}")
    return image


class MapsSource(Protocol):
    """Where a run's maps come from: a model (``forward.ModelSource``) or saved maps."""

    model_info: dict[str, Any]
    title: str
    skipped: list[tuple[Path, str]]  # inputs that could not be read, with why
    notes: list[str]  # what the source found worth saying (model passes)
    on_batch: Callable[[int], None] | None  # told how many inputs went through

    def __len__(self) -> int: ...

    def images(self) -> Iterator[tuple[ImageMaps, Path]]: ...

    def locate(self, image: ImageMaps, pixel: tuple[int, int]) -> tuple[float, float]: ...

    def capture(self) -> str | None:
        """The manifest's ``capture`` once known (None: the maps do not say)."""
        ...


@dataclass
class SavedMaps:
    """Maps files as a run's source: no model, one file per image."""

    files: list[Path]
    model_info: dict[str, Any] = field(default_factory=lambda: {"source": "saved maps"})
    title: str = ""
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # never: a bad file stops
    notes: list[str] = field(default_factory=list)
    on_batch: Callable[[int], None] | None = None

    def capture(self) -> str | None:
        return None

    def __len__(self) -> int:
        return len(self.files)

    def images(self) -> Iterator[tuple[ImageMaps, Path]]:
        for path in self.files:
            maps = load_maps(path)
            if self.on_batch is not None:
                self.on_batch(1)
            yield maps, path

    def locate(self, image: ImageMaps, pixel: tuple[int, int]) -> tuple[float, float]:
        raise SelectionError("--query-pixel needs the model run; with --from-maps use --query")
