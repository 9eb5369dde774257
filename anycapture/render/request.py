"""What one figure is drawn from: :class:`FigureRequest` (picklable, sent to workers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..layout import TokenLayout
from .colour import overlay, upsample

__all__ = ["FigureRequest", "positive_max"]


@dataclass(frozen=True)
class FigureRequest:
    """Everything one figure needs, for one image.

    Attributes:
        maps: ``(heads, Q, N)`` attention of this layer (Q = N but for class
            attention).
        layout: where the N tokens sit (prefix tokens, patch grid).
        view: the model's input view of the image (after resize/crop, before
            normalisation), RGB.
        layer: the layer's name (e.g. ``blocks.11.attn``) and index.
        head: the head for ``head``, ``grid`` and ``layers``; None = head mean.
        query: the query patch (row, col) for ``grid`` and ``layers``.
        all_layers: every layer's ``(name, maps)`` of this image, for the per-image
            kinds (``rollout``, ``layers``).
        token: the prefix token for ``cls`` and ``rollout`` (0 = CLS).
        threshold: for ``cls``, keep only the patches holding this share of the mass.
        extra: what the kind's ``model_pass`` computed for this image (or None).
        windows: windowed layers (Swin) of this image: ``{layer: (shown, count)}``.
        scale: for sheets (``heads``, ``cls``, ``layers``): ``shared`` colour scale
            or ``each`` panel scaled to its own maximum.
    """

    maps: np.ndarray
    layout: TokenLayout
    view: Image.Image
    layer: str
    layer_index: int
    head: int | None = 0
    query: tuple[int, int] = (0, 0)
    cmap: str = "viridis"
    alpha: float = 0.6
    upsample: str = "bilinear"
    title: str = ""
    all_layers: Sequence[tuple[str, np.ndarray]] = field(default_factory=tuple)
    token: int = 0
    threshold: float | None = None
    fusion: str = "mean"
    discard_ratio: float = 0.0
    extra: Any = None
    windows: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    scale: str = "shared"  # sheets: one colour scale for every panel, or "each" its own

    @property
    def head_tag(self) -> str:
        """The head in file names: ``H0`` or ``Hmean``."""
        return "Hmean" if self.head is None else f"H{self.head}"

    @property
    def query_tag(self) -> str:
        """The query patch in file names: ``q<row>-<col>``."""
        return f"q{self.query[0]}-{self.query[1]}"

    @property
    def head_label(self) -> str:
        return "head mean" if self.head is None else f"head {self.head}"

    def head_map(self, maps: np.ndarray | None = None) -> np.ndarray:
        """``(Q, N)``: the chosen head, or the mean over heads."""
        maps = self.maps if maps is None else maps
        return maps.mean(axis=0) if self.head is None else maps[self.head]

    @property
    def query_weights(self) -> np.ndarray:
        """The query patch's attention over all N tokens (chosen head or mean)."""
        return self.head_map()[self.layout.token_of(*self.query)]

    def grid_heat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The query's prefix weights, its patch grid, and the grid upsampled onto the view."""
        prefix, grid = self.layout.split(self.query_weights)
        return prefix, grid, self.heat(grid)

    def heat(self, grid: np.ndarray) -> np.ndarray:
        """A (rows, cols) patch grid upsampled onto the view."""
        return upsample(grid, (self.view.height, self.view.width), self.upsample)

    def blend(self, grid: np.ndarray, vmax: float) -> np.ndarray:
        return overlay(self.view, self.heat(grid), self.cmap, self.alpha, 0.0, vmax)


def positive_max(values: np.ndarray) -> float:
    """The colour scale's top: the largest value, or 1 when nothing is positive."""
    top = float(values.max())
    return top if top > 0 else 1.0
