"""Annotated (``paper``) figures with matplotlib.

Building a matplotlib figure and solving its layout costs far more than drawing
it, so each figure kind is built once per shape (a *template*), its layout
frozen, and later images only swap the data, colour limits and texts.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..layout import TokenLayout
from .colour import encode_png, overlay

if TYPE_CHECKING:
    from .figures import FigureRequest

__all__ = ["Panel", "new_figure", "render_paper", "render_sheet"]

QUERY_BOX_COLOUR = "#ff2a2a"
SCALE_LABEL = "attention weight"
DPI = 120
_TEMPLATES: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_MAX_TEMPLATES = 8


@dataclass(frozen=True)
class Panel:
    """One picture of a sheet figure: a title and RGB pixels."""

    title: str
    pixels: np.ndarray


def render_paper(kind: str, r: FigureRequest) -> bytes:
    template_class = {"head": _HeadFigure, "heads": _HeadsFigure, "grid": _GridFigure}[kind]
    key = (kind, r.maps.shape, r.layout, r.view.size, r.cmap, template_class.key(r))
    return _cached(key, lambda: template_class(r), lambda t: t.update(r)).png()


def render_sheet(
    kind: str, r: FigureRequest, panels: list[Panel], vmax: float, header: str
) -> bytes:
    """A sheet of image panels sharing one colour scale (cls, rollout, layers)."""
    key = (kind, len(panels), panels[0].pixels.shape, r.cmap)

    def update(template: _SheetFigure) -> None:
        template.update(r, panels, vmax, header)

    return _cached(key, lambda: _SheetFigure(r, panels, vmax, header), update).png()


def new_figure(
    kind: str, r: FigureRequest, sheet: tuple[list[Panel], float, str] | None = None
) -> Any:
    """A fresh matplotlib Figure of ``kind`` (for notebooks; nothing cached)."""
    if sheet is not None:
        return _SheetFigure(r, *sheet).figure
    return {"head": _HeadFigure, "heads": _HeadsFigure, "grid": _GridFigure}[kind](r).figure


def _cached(key: tuple[Any, ...], build: Any, update: Any) -> Any:
    template = _TEMPLATES.get(key)
    if template is None:
        template = build()
        _TEMPLATES[key] = template
        if len(_TEMPLATES) > _MAX_TEMPLATES:
            _TEMPLATES.popitem(last=False)
    else:
        _TEMPLATES.move_to_end(key)
        update(template)
    return template


class _Template:
    """A figure whose layout is solved once, on the first draw, then frozen."""

    def __init__(self, width: float, height: float) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.figure = Figure(
            figsize=(width, height), dpi=DPI, layout="constrained", facecolor="white"
        )
        FigureCanvasAgg(self.figure)
        self._frozen = False

    @staticmethod
    def key(r: FigureRequest) -> tuple[Any, ...]:
        return ()

    def update(self, r: FigureRequest) -> None:
        raise NotImplementedError

    def png(self) -> bytes:
        if not self._frozen:
            self.figure.canvas.draw()  # solve the constrained layout once...
            self.figure.set_layout_engine("none")  # ...and keep it
            self._frozen = True
        canvas = self.figure.canvas
        canvas.draw()  # one Agg draw; savefig would draw twice
        rgba = np.asarray(canvas.buffer_rgba())
        return encode_png(rgba[..., :3])

    def suptitle(self, r: FigureRequest, text: str) -> str:
        return f"{r.title}\n{text}" if r.title else text


class _HeadFigure(_Template):
    def __init__(self, r: FigureRequest) -> None:
        super().__init__(5.4, 4.6)
        axis = self.figure.add_subplot()
        self.image = axis.imshow(
            np.zeros(r.maps.shape[1:]), cmap=r.cmap, vmin=0.0, vmax=1.0, interpolation="nearest"
        )
        _token_ticks(axis, r.layout, square=r.maps.shape[-2] == r.maps.shape[-1])
        axis.set_xlabel("key token")
        axis.set_ylabel("query token")
        self.title = axis.set_title("", fontsize=10)
        self.figure.colorbar(self.image, ax=axis, shrink=0.85, label=SCALE_LABEL)
        self.header = self.figure.suptitle("", fontsize=9, color="#333333")
        self.update(r)

    def update(self, r: FigureRequest) -> None:
        matrix = r.head_map()
        self.image.set_data(matrix)
        self.image.set_clim(0.0, _positive_max(matrix))
        self.title.set_text(f"{r.layer} · {r.head_label}")
        prefix = ", ".join(r.layout.prefix_names) or "no"
        grid = f"{r.layout.grid[0]}x{r.layout.grid[1]} patches"
        self.header.set_text(self.suptitle(r, f"tokens: {prefix} prefix, then {grid}"))


class _HeadsFigure(_Template):
    def __init__(self, r: FigureRequest) -> None:
        heads = r.maps.shape[0]
        panels = heads + 1  # every head, then their average: no empty panels drawn
        cols = min(panels, max(2, math.ceil(math.sqrt(panels * 1.5))))
        rows = math.ceil(panels / cols)
        super().__init__(2.3 * cols + 0.8, 2.3 * rows + 0.5)
        grid_spec = self.figure.add_gridspec(rows, cols)
        self.images = []
        blank = np.zeros(r.maps.shape[1:])
        for i in range(panels):
            axis = self.figure.add_subplot(grid_spec[i // cols, i % cols])
            image = axis.imshow(blank, cmap=r.cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            axis.set_title(f"head {i}" if i < heads else "head average", fontsize=9)
            axis.set_xticks([])
            axis.set_yticks([])
            self.images.append(image)
        self.figure.colorbar(
            self.images[0], ax=self.figure.axes, shrink=0.8, label=f"{SCALE_LABEL} (shared scale)"
        )
        self.header = self.figure.suptitle("", fontsize=9, color="#333333")
        self.update(r)

    def update(self, r: FigureRequest) -> None:
        vmax = _positive_max(r.maps)
        for image, matrix in zip(self.images, [*r.maps, r.maps.mean(axis=0)], strict=True):
            image.set_data(matrix)
            image.set_clim(0.0, vmax)
        self.header.set_text(self.suptitle(r, f"{r.layer}: all {r.maps.shape[0]} heads"))


class _GridFigure(_Template):
    @staticmethod
    def key(r: FigureRequest) -> tuple[Any, ...]:
        return (r.alpha, r.upsample)

    def __init__(self, r: FigureRequest) -> None:
        import matplotlib
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.patches import Rectangle

        height, width = r.view.height, r.view.width
        self.cell = (height / r.layout.grid[0], width / r.layout.grid[1])
        cell_h, cell_w = self.cell
        strip = cell_h * 1.25 if r.layout.prefix_tokens else 0.0  # room for prefix cells
        aspect = (height + strip) / width
        super().__init__(8.6, 8.6 * aspect / 2 + 0.9)
        self.cmap = matplotlib.colormaps[r.cmap]
        self.norm = Normalize(0.0, 1.0)
        left, right = self.figure.subplots(1, 2)
        blank = np.zeros((height, width, 3), dtype=np.uint8)
        self.pictures = []
        for axis in (left, right):
            picture = axis.imshow(blank, extent=(0, width, height, 0), interpolation="bilinear")
            axis.set_xlim(0, width)
            axis.set_ylim(height, -strip)
            axis.set_axis_off()
            self.pictures.append(picture)
        self.query_boxes = [
            left.add_patch(
                Rectangle((0, 0), cell_w, cell_h, fill=False, edgecolor=QUERY_BOX_COLOUR, lw=1.6)
            ),
            right.add_patch(
                Rectangle((0, 0), cell_w, cell_h, fill=False, edgecolor="white", lw=0.8, ls=":")
            ),
        ]
        self.prefix_cells = []
        self.prefix_labels = []
        for i, name in enumerate(r.layout.prefix_names):
            corner = (i * cell_w * 1.1, -strip)
            left.add_patch(
                Rectangle(corner, cell_w, cell_h, facecolor="#eeeeee", edgecolor="#555555", lw=0.6)
            )
            self.prefix_cells.append(
                right.add_patch(Rectangle(corner, cell_w, cell_h, edgecolor="#555555", lw=0.6))
            )
            centre = (corner[0] + cell_w / 2, corner[1] + cell_h / 2)
            left.text(*centre, name, ha="center", va="center", fontsize=6)
            self.prefix_labels.append(
                right.text(*centre, name, ha="center", va="center", fontsize=6)
            )
        self.left_title = left.set_title("", fontsize=10)
        self.right_title = right.set_title("", fontsize=10)
        self.scale = ScalarMappable(self.norm, self.cmap)
        self.figure.colorbar(self.scale, ax=right, shrink=0.8, label=SCALE_LABEL)
        self.header = self.figure.suptitle("", fontsize=9, color="#333333")
        self.update(r)

    def update(self, r: FigureRequest) -> None:
        prefix, grid, heat = r.grid_heat()
        vmax = _positive_max(np.concatenate([grid.ravel(), prefix.ravel()]))
        self.scale.set_clim(0.0, vmax)
        self.pictures[0].set_data(np.asarray(r.view.convert("RGB")))
        self.pictures[1].set_data(overlay(r.view, heat, r.cmap, r.alpha, 0.0, vmax))
        row, col = r.query
        for box in self.query_boxes:
            box.set_xy((col * self.cell[1], row * self.cell[0]))
        for cell, label, weight in zip(self.prefix_cells, self.prefix_labels, prefix, strict=True):
            colour = self.cmap(self.scale.norm(weight))
            cell.set_facecolor(colour)
            label.set_color(_ink(colour))
        self.left_title.set_text(f"query patch ({row}, {col})")
        self.right_title.set_text(f"its attention, {r.head_label}")
        self.header.set_text(self.suptitle(r, r.layer))


class _SheetFigure(_Template):
    def __init__(self, r: FigureRequest, panels: list[Panel], vmax: float, header: str) -> None:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        height, width = panels[0].pixels.shape[:2]
        cols = min(len(panels), 6)
        rows = math.ceil(len(panels) / cols)
        panel_w = 2.2
        super().__init__(panel_w * cols + 1.0, panel_w * height / width * rows + 0.3 * rows + 0.6)
        grid_spec = self.figure.add_gridspec(rows, cols)
        self.images, self.titles = [], []
        for i, panel in enumerate(panels):
            axis = self.figure.add_subplot(grid_spec[i // cols, i % cols])
            self.images.append(axis.imshow(panel.pixels, interpolation="bilinear"))
            self.titles.append(axis.set_title(panel.title, fontsize=8))
            axis.set_axis_off()
        self.scale = ScalarMappable(Normalize(0.0, vmax), r.cmap)
        self.figure.colorbar(self.scale, ax=self.figure.axes, shrink=0.8, label=SCALE_LABEL)
        self.header = self.figure.suptitle("", fontsize=9, color="#333333")
        self.update(r, panels, vmax, header)

    def update(self, r: FigureRequest, panels: list[Panel], vmax: float, header: str) -> None:  # type: ignore[override]
        for image, title, panel in zip(self.images, self.titles, panels, strict=True):
            image.set_data(panel.pixels)
            title.set_text(panel.title)
        self.scale.set_clim(0.0, vmax)
        self.header.set_text(self.suptitle(r, header))


def _positive_max(values: np.ndarray) -> float:
    top = float(values.max())
    return top if top > 0 else 1.0


def _token_ticks(axis: Any, layout: TokenLayout, square: bool) -> None:
    """Mark where the prefix tokens end on a token x token map."""
    step = layout.grid[1] * max(1, layout.grid[0] // 4)
    ticks = list(range(layout.prefix_tokens, layout.num_tokens, step))
    axis.set_xticks(ticks)
    axis.set_yticks(ticks if square else [])
    axis.tick_params(labelsize=7)
    if layout.prefix_tokens:
        edge = layout.prefix_tokens - 0.5
        axis.axvline(edge, color="white", linewidth=0.6, linestyle="--")
        if square:
            axis.axhline(edge, color="white", linewidth=0.6, linestyle="--")


def _ink(rgba: tuple[float, ...]) -> str:
    """Black or white text, whichever reads on this background."""
    luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
    return "black" if luminance > 0.55 else "white"
