"""The figure kinds: ``head`` (one head's token x token map), ``heads`` (every head of
a layer plus their average) and ``grid`` (a query patch's attention over the image).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..layout import TokenLayout
from .colour import colourise, encode_png, overlay, upsample
from .paper import render_paper

__all__ = ["FIGURE_KINDS", "STYLES", "FigureRequest", "render_figure"]

FIGURE_KINDS = ("head", "heads", "grid")
STYLES = ("paper", "bare")


@dataclass(frozen=True)
class FigureRequest:
    """Everything one figure needs, for one image and one layer.

    Attributes:
        maps: ``(heads, N, N)`` attention of this layer for this image.
        layout: where the N tokens sit (prefix tokens, patch grid).
        view: the model's input view of the image (after resize/crop, before
            normalisation), RGB.
        layer: the layer's name (e.g. ``blocks.11.attn``) and index.
        head: the head for ``head`` and ``grid``.
        query: the query patch (row, col) for ``grid``.
    """

    maps: np.ndarray
    layout: TokenLayout
    view: Image.Image
    layer: str
    layer_index: int
    head: int = 0
    query: tuple[int, int] = (0, 0)
    cmap: str = "viridis"
    alpha: float = 0.6
    upsample: str = "bilinear"
    title: str = ""

    @property
    def query_weights(self) -> np.ndarray:
        """The query patch's attention over all N tokens (this head)."""
        return self.maps[self.head, self.layout.token_of(*self.query)]


def render_figure(kind: str, style: str, request: FigureRequest) -> bytes:
    """Render one figure to PNG bytes."""
    if style == "paper":
        return render_paper(kind, request)
    return _BARE[kind](request)


# -- bare: the picture alone, Pillow only ------------------------------------------
def _bare_head(r: FigureRequest) -> bytes:
    matrix = r.maps[r.head]
    return encode_png(colourise(matrix, r.cmap, 0.0, float(matrix.max())))


def _bare_heads(r: FigureRequest) -> bytes:
    panels = [*r.maps, r.maps.mean(axis=0)]
    vmax = float(r.maps.max())
    n = r.maps.shape[-1]
    gap = max(1, n // 50)
    strip = np.full((n, len(panels) * (n + gap) - gap, 3), 255, dtype=np.uint8)
    for i, panel in enumerate(panels):
        strip[:, i * (n + gap) : i * (n + gap) + n] = colourise(panel, r.cmap, 0.0, vmax)
    return encode_png(strip)


def grid_heat(r: FigureRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prefix weights, the patch grid, and the grid upsampled onto the view."""
    prefix, grid = r.layout.split(r.query_weights)
    heat = upsample(grid, (r.view.height, r.view.width), r.upsample)
    return prefix, grid, heat


def _bare_grid(r: FigureRequest) -> bytes:
    _, grid, heat = grid_heat(r)
    return encode_png(overlay(r.view, heat, r.cmap, r.alpha, 0.0, float(grid.max())))


_BARE: dict[str, Callable[[FigureRequest], bytes]] = {
    "head": _bare_head,
    "heads": _bare_heads,
    "grid": _bare_grid,
}
