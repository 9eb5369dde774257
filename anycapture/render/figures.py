"""The figure kinds and what each needs.

Per layer: ``head`` (one head's token x token map), ``heads`` (every head plus their
average), ``grid`` (a query patch's attention over the image), ``cls`` (a prefix
token's attention over the image, per head and averaged).  Per image: ``rollout``
(attention rollout over all layers) and ``layers`` (the query's attention in every
layer, one sheet).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..analysis import mass_mask, prefix_maps, rollout
from ..layout import TokenLayout
from .colour import colourise, encode_png, overlay, upsample
from .paper import Panel, render_paper, render_sheet

__all__ = [
    "FIGURE_KINDS",
    "PER_IMAGE_KINDS",
    "STYLES",
    "FigureRequest",
    "render_figure",
    "sheet_panels",
]

FIGURE_KINDS = ("head", "heads", "grid", "cls", "rollout", "layers")
PER_IMAGE_KINDS = frozenset({"rollout", "layers"})
STYLES = ("paper", "bare")


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


def render_figure(kind: str, style: str, request: FigureRequest) -> bytes:
    """Render one figure to PNG bytes."""
    if kind in _SHEETS:
        panels, vmax, header = sheet_panels(kind, request)
        if style == "paper":
            return render_sheet(kind, request, panels, vmax, header)
        return encode_png(_tile([p.pixels for p in panels]))
    if style == "paper":
        return render_paper(kind, request)
    return _BARE[kind](request)


# -- bare: the picture alone, Pillow only ------------------------------------------
def _bare_head(r: FigureRequest) -> bytes:
    matrix = r.head_map()
    return encode_png(colourise(matrix, r.cmap, 0.0, float(matrix.max())))


def _bare_heads(r: FigureRequest) -> bytes:
    vmax = float(r.maps.max())
    panels = [colourise(p, r.cmap, 0.0, vmax) for p in (*r.maps, r.maps.mean(axis=0))]
    return encode_png(_tile(panels, columns=len(panels)))


def _bare_grid(r: FigureRequest) -> bytes:
    _, grid, heat = r.grid_heat()
    return encode_png(overlay(r.view, heat, r.cmap, r.alpha, 0.0, float(grid.max())))


def _tile(panels: Sequence[np.ndarray], columns: int = 6) -> np.ndarray:
    """Panels of one size in rows of ``columns``, white gaps between them."""
    height, width = panels[0].shape[:2]
    gap = max(1, min(height, width) // 50)
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    sheet = np.full(
        (rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, dtype=np.uint8
    )
    for i, panel in enumerate(panels):
        top, left = (i // columns) * (height + gap), (i % columns) * (width + gap)
        sheet[top : top + height, left : left + width] = panel
    return sheet


# -- sheets: several overlays on the image with one shared scale -------------------
def sheet_panels(kind: str, r: FigureRequest) -> tuple[list[Panel], float, str]:
    """The panels of a sheet figure, their shared colour maximum, and a header."""
    return _SHEETS[kind](r)


def _cls_panels(r: FigureRequest) -> tuple[list[Panel], float, str]:
    grids = prefix_maps(r.maps, r.layout, r.token)  # (heads + 1, rows, cols)
    if r.threshold is not None:
        grids = np.stack([g * mass_mask(g, r.threshold) for g in grids])
    vmax = _positive_max(grids)
    heads = r.maps.shape[0]
    labels = [f"head {h}" for h in range(heads)] + ["head mean"]
    panels = [Panel(label, r.blend(g, vmax)) for label, g in zip(labels, grids, strict=True)]
    kept = f", top {r.threshold:.0%} of the mass" if r.threshold is not None else ""
    name = r.layout.prefix_names[r.token]
    return panels, vmax, f"{r.layer}: attention from the {name} token to the patches{kept}"


def _rollout_panels(r: FigureRequest) -> tuple[list[Panel], float, str]:
    square = [m for _, m in r.all_layers if m.shape[-2:] == (r.layout.num_tokens,) * 2]
    if not square:
        raise ValueError("rollout needs layers whose maps cover every token; this model has none")
    result = rollout(square, r.fusion, r.discard_ratio)
    if r.layout.prefix_tokens:
        row, source = result[r.token], f"from the {r.layout.prefix_names[r.token]} token"
    else:
        row, source = result[r.layout.token_of(*r.query)], f"from patch {r.query}"
    _, grid = r.layout.split(row)
    vmax = _positive_max(grid)
    image = np.asarray(r.view.convert("RGB"))
    panels = [
        Panel("input", image),
        Panel(f"rollout over {len(square)} layers", r.blend(grid, vmax)),
    ]
    header = f"attention rollout {source} ({r.fusion} fusion, discard {r.discard_ratio:g})"
    return panels, vmax, header


def _layers_panels(r: FigureRequest) -> tuple[list[Panel], float, str]:
    token = r.layout.token_of(*r.query)
    grids, labels = [], []
    for index, (_name, maps) in enumerate(r.all_layers):
        if maps.shape[-2:] != (r.layout.num_tokens,) * 2:
            continue  # class-attention or windowed layers: the query is not a row here
        _, grid = r.layout.split(r.head_map(maps)[token])
        grids.append(grid)
        labels.append(f"layer {index}")
    if not grids:
        raise ValueError("no layer has the query patch as a query (class or window attention)")
    vmax = _positive_max(np.stack(grids))
    panels = [Panel(label, r.blend(g, vmax)) for label, g in zip(labels, grids, strict=True)]
    return panels, vmax, f"query patch {r.query}, {r.head_label}, every layer"


def _positive_max(values: np.ndarray) -> float:
    top = float(values.max())
    return top if top > 0 else 1.0


_BARE: dict[str, Callable[[FigureRequest], bytes]] = {
    "head": _bare_head,
    "heads": _bare_heads,
    "grid": _bare_grid,
}
_SHEETS: dict[str, Callable[[FigureRequest], tuple[list[Panel], float, str]]] = {
    "cls": _cls_panels,
    "rollout": _rollout_panels,
    "layers": _layers_panels,
}
