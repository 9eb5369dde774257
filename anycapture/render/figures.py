"""The figure kinds: ``head`` (one head's token x token map), ``heads`` (every head of
a layer plus their average) and ``grid`` (a query patch's attention over the image).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..layout import TokenLayout
from .colour import colourise, encode_png, overlay, upsample

__all__ = ["FIGURE_KINDS", "STYLES", "FigureRequest", "render_figure"]

FIGURE_KINDS = ("head", "heads", "grid")
STYLES = ("paper", "bare")
QUERY_BOX_COLOUR = "#ff2a2a"
SCALE_LABEL = "attention weight"


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
    renderer = _RENDERERS[(kind, style)]
    return renderer(request)


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


def _grid_heat(r: FigureRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prefix weights, the patch grid, and the grid upsampled onto the view."""
    prefix, grid = r.layout.split(r.query_weights)
    heat = upsample(grid, (r.view.height, r.view.width), r.upsample)
    return prefix, grid, heat


def _bare_grid(r: FigureRequest) -> bytes:
    _, grid, heat = _grid_heat(r)
    return encode_png(overlay(r.view, heat, r.cmap, r.alpha, 0.0, float(grid.max())))


# -- paper: annotated, matplotlib ----------------------------------------------------
def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _to_png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def _token_ticks(axis: Any, layout: TokenLayout) -> None:
    """Mark where the prefix tokens end, on both axes of a token x token map."""
    if layout.prefix_tokens:
        edge = layout.prefix_tokens - 0.5
        axis.axhline(edge, color="white", linewidth=0.6, linestyle="--")
        axis.axvline(edge, color="white", linewidth=0.6, linestyle="--")
    step = max(1, layout.grid[1])
    ticks = list(range(layout.prefix_tokens, layout.num_tokens, step * max(1, layout.grid[0] // 4)))
    axis.set_xticks(ticks)
    axis.set_yticks(ticks)
    axis.tick_params(labelsize=7)


def _paper_head(r: FigureRequest) -> bytes:
    figure = _new_figure(5.4, 4.6)
    axis = figure.add_subplot()
    matrix = r.maps[r.head]
    image = axis.imshow(
        matrix, cmap=r.cmap, vmin=0.0, vmax=float(matrix.max()), interpolation="nearest"
    )
    _token_ticks(axis, r.layout)
    axis.set_xlabel("key token")
    axis.set_ylabel("query token")
    axis.set_title(f"{r.layer} · head {r.head}", fontsize=10)
    figure.colorbar(image, ax=axis, shrink=0.85, label=SCALE_LABEL)
    _suptitle(figure, r, f"{', '.join(r.layout.prefix_names) or 'no'} prefix, then {_grid_text(r)}")
    return _to_png(figure)


def _paper_heads(r: FigureRequest) -> bytes:
    heads = r.maps.shape[0]
    panels = [(f"head {h}", r.maps[h]) for h in range(heads)]
    panels.append(("head average", r.maps.mean(axis=0)))
    cols = min(len(panels), max(2, math.ceil(math.sqrt(len(panels) * 1.5))))
    rows = math.ceil(len(panels) / cols)
    figure = _new_figure(2.3 * cols + 0.8, 2.3 * rows + 0.5)
    vmax = float(r.maps.max())
    grid_spec = figure.add_gridspec(rows, cols)
    image = None
    for i, (label, matrix) in enumerate(panels):
        axis = figure.add_subplot(grid_spec[i // cols, i % cols])
        image = axis.imshow(matrix, cmap=r.cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
        axis.set_title(label, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.colorbar(image, ax=figure.axes, shrink=0.8, label=f"{SCALE_LABEL} (shared scale)")
    _suptitle(figure, r, f"{r.layer}: all {heads} heads")
    return _to_png(figure)


def _paper_grid(r: FigureRequest) -> bytes:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    prefix, grid, heat = _grid_heat(r)
    vmax = float(max(grid.max(), prefix.max() if prefix.size else 0.0))
    height, width = r.view.height, r.view.width
    cell_h, cell_w = height / r.layout.grid[0], width / r.layout.grid[1]
    strip = cell_h * 1.25 if r.layout.prefix_tokens else 0.0  # room for the prefix cells
    aspect = (height + strip) / width
    figure = _new_figure(8.6, 8.6 * aspect / 2 + 0.9)
    left, right = figure.subplots(1, 2)
    blended = overlay(r.view, heat, r.cmap, r.alpha, 0.0, vmax)
    norm = Normalize(0.0, vmax)
    cmap = _mpl_cmap(r.cmap)
    row, col = r.query
    for axis, picture in ((left, np.asarray(r.view.convert("RGB"))), (right, blended)):
        axis.imshow(picture, extent=(0, width, height, 0), interpolation="bilinear")
        axis.set_xlim(0, width)
        axis.set_ylim(height, -strip)
        axis.set_axis_off()
    left.add_patch(
        Rectangle(
            (col * cell_w, row * cell_h),
            cell_w,
            cell_h,
            fill=False,
            edgecolor=QUERY_BOX_COLOUR,
            linewidth=1.6,
        )
    )
    right.add_patch(
        Rectangle(
            (col * cell_w, row * cell_h),
            cell_w,
            cell_h,
            fill=False,
            edgecolor="white",
            linewidth=0.8,
            linestyle=":",
        )
    )
    for i, name in enumerate(r.layout.prefix_names):
        box = (i * cell_w * 1.1, -strip)
        left.add_patch(
            Rectangle(box, cell_w, cell_h, facecolor="#eeeeee", edgecolor="#555555", linewidth=0.6)
        )
        right.add_patch(
            Rectangle(
                box,
                cell_w,
                cell_h,
                facecolor=cmap(norm(prefix[i])),
                edgecolor="#555555",
                linewidth=0.6,
            )
        )
        for axis in (left, right):
            axis.text(
                box[0] + cell_w / 2,
                box[1] + cell_h / 2,
                name,
                ha="center",
                va="center",
                fontsize=6,
                color="black" if axis is left else _ink(cmap(norm(prefix[i]))),
            )
    left.set_title(f"query patch ({row}, {col})", fontsize=10)
    right.set_title(f"its attention, head {r.head}", fontsize=10)
    figure.colorbar(ScalarMappable(norm, cmap), ax=right, shrink=0.8, label=SCALE_LABEL)
    _suptitle(figure, r, r.layer)
    return _to_png(figure)


def _mpl_cmap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name]


def _ink(rgba: tuple[float, ...]) -> str:
    """Black or white text, whichever reads on this background."""
    luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
    return "black" if luminance > 0.55 else "white"


def _grid_text(r: FigureRequest) -> str:
    return f"{r.layout.grid[0]}x{r.layout.grid[1]} patches"


def _suptitle(figure: Any, r: FigureRequest, text: str) -> None:
    figure.suptitle(f"{r.title}\n{text}" if r.title else text, fontsize=9, color="#333333")


_RENDERERS: dict[tuple[str, str], Callable[[FigureRequest], bytes]] = {
    ("head", "bare"): _bare_head,
    ("heads", "bare"): _bare_heads,
    ("grid", "bare"): _bare_grid,
    ("head", "paper"): _paper_head,
    ("heads", "paper"): _paper_heads,
    ("grid", "paper"): _paper_grid,
}
