"""One image as the explorer takes it (:class:`ViewerImage`), from saved maps or a
notebook result, and its encoding into the page's index entry and data text."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..layout import TokenLayout
from .encode import LayerPlan, image_rollout, plan_layer, quantise

if TYPE_CHECKING:  # (the notebook's result is taken as it is: the notebook imports this)
    from ..run.maps_file import ImageMaps

__all__ = ["EncodedImage", "ViewerImage", "record_from_maps", "record_from_result"]

VIEW_PNG_LIMIT = 48_000  # bytes: a larger view (a photo) travels as a JPEG...
VIEW_JPEG_QUALITY = 92  # ...without chroma subsampling


@dataclass(frozen=True)
class ViewerImage:
    """One image for the explorer.

    Attributes:
        name: shown in the image picker.
        view: the model's input view, RGB uint8 ``(H, W, 3)`` (or a Pillow image).
        layers: ``{layer name: (heads, Q, N) float maps}``, in the model's order.
        layout: where the N tokens sit (prefix tokens, then the patch grid).
        windows: windowed layers: ``{layer name: (shown window, window count)}``.
    """

    name: str
    view: np.ndarray | Image.Image
    layers: Mapping[str, np.ndarray]
    layout: TokenLayout
    windows: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def pixels(self) -> np.ndarray:
        if isinstance(self.view, Image.Image):
            return np.asarray(self.view.convert("RGB"))
        pixels = np.asarray(self.view)
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"{self.name}: the view must be (H, W, 3) uint8, got {pixels.shape}")
        return pixels


def record_from_maps(maps: ImageMaps, name: str | None = None) -> ViewerImage:
    """The explorer's record of one image's maps (a run's, or a ``--save-maps`` file's
    read by ``load_maps``): no model needed."""
    label = name or (Path(maps.source).name if maps.source else "image")
    return ViewerImage(label, maps.view, dict(maps.layers), maps.layout, dict(maps.windows))


def record_from_result(result: Any, name: str | None = None) -> ViewerImage:
    """The explorer's record of a notebook :class:`~anycapture.notebook.AttentionResult`."""
    label = name or result.image or "image"
    return ViewerImage(label, result.view, result.layers, result.layout, dict(result.windows))


@dataclass(frozen=True)
class EncodedImage:
    """One image in the page: ``index`` (small JSON, read at load) and ``data`` (the
    maps' text, decoded only when the image is opened)."""

    index: dict[str, Any]
    data: str


def encode_image(record: ViewerImage) -> EncodedImage:
    """Quantise every layer's maps (and the rollout) into the page's text."""
    pixels = record.pixels()
    view_hw = (pixels.shape[0], pixels.shape[1])
    layers = [(name, _checked(record.name, name, maps)) for name, maps in record.layers.items()]
    if not layers:
        raise ValueError(f"{record.name}: no attention layers to show")
    plans = [
        plan_layer(name, maps.shape, record.layout, view_hw, record.windows.get(name))
        for name, maps in layers
    ]
    chunks: list[str] = []
    offset = 0
    layer_data, layer_index = [], []
    for (name, maps), plan in zip(layers, plans, strict=True):
        text, scales = quantise(maps) if plan.kind != "none" else ("", np.zeros(0, "<f4"))
        layer_data.append({"offset": offset, "scales": _b64(scales.tobytes())})
        layer_index.append(plan.to_json(name, maps.shape))
        chunks.append(text)
        offset += len(text)
    rolled = image_rollout(layers, plans, record.layout)
    rollout_data, rollout_index = None, None
    if rolled is not None:
        matrix, count = rolled
        text, scales = quantise(matrix)
        rollout_data = {"offset": offset, "scales": _b64(scales.tobytes())}
        plan = LayerPlan("self", record.layout, (0.0, 0.0, *map(float, view_hw)))
        rollout_index = plan.to_json(f"rollout over {count} layers", (1, *matrix.shape))
        chunks.append(text)
    header = {"view": _view_uri(pixels), "layers": layer_data, "rollout": rollout_data}
    data = script_json(header) + "\n" + "".join(chunks)
    index = {
        "name": record.name,
        "height": view_hw[0],
        "width": view_hw[1],
        "layers": layer_index,
        "rollout": rollout_index,
        "bytes": len(data),
    }
    return EncodedImage(index, data)


def _checked(image: str, layer: str, maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"{image}: layer {layer} maps must be (heads, Q, N), got {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError(f"{image}: layer {layer} has NaN or infinite attention weights")
    return maps


def _view_uri(pixels: np.ndarray) -> str:
    """The view as a data URI: PNG (exact) when small, else a high-quality JPEG."""
    from ..render.colour import encode_png

    data, kind = encode_png(pixels), "png"
    if len(data) > VIEW_PNG_LIMIT:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=VIEW_JPEG_QUALITY, subsampling=0)
        if buffer.tell() < len(data):
            data, kind = buffer.getvalue(), "jpeg"
    return f"data:image/{kind};base64,{_b64(data)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def script_json(value: object) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``<`` at all)."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")
