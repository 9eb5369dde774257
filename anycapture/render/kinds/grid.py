"""``grid``: the query patch's attention over the image, per layer (query box,
prefix-token cells)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...layout import layer_role
from ..colour import encode_png, overlay
from ..paper import (
    QUERY_BOX_COLOUR,
    SCALE_LABEL,
    Template,
    ink,
    over_image,
    plain_text,
    render_template,
)
from ..registry import FigureKind, LayerView, Scope, Uses
from ..request import FigureRequest, positive_max


def file_name(r: FigureRequest) -> str:
    return f"grid_L{r.layer_index:02d}_{r.head_tag}_{r.query_tag}.png"


def skip(view: LayerView) -> str:
    queries, keys = view.maps.shape[-2:]
    if queries == keys or view.layout is None:
        return ""
    if layer_role(view.layout, queries, keys) == "class":
        return f"{view.layer} is class attention (only prefix tokens query): grid skipped, see cls"
    return (
        f"{view.layer}: {queries} queries over the image's {keys} tokens are not the image's "
        "patches (object or text queries, or pooled queries): grid skipped"
    )


def bare(r: FigureRequest) -> bytes:
    _, grid, heat = r.grid_heat()
    return encode_png(overlay(r.view, heat, r.cmap, r.alpha, 0.0, float(grid.max())))


def prefix_pitch(cell_w: float, columns: int, count: int) -> float:
    """Horizontal step between prefix cells: a patch and a gap, narrower when more
    prefix tokens than fit (DINOv2 with 4 registers on a 4x4 grid) so all stay over
    the image."""
    return min(cell_w * 1.1, cell_w * columns / max(count, 1))


class GridFigure(Template):
    @staticmethod
    def key(r: FigureRequest) -> tuple[Any, ...]:
        return (r.alpha, r.upsample)

    def __init__(self, r: FigureRequest) -> None:
        import matplotlib
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        height, width = r.view.height, r.view.width
        self.cell = (height / r.layout.grid[0], width / r.layout.grid[1])
        strip = self.cell[0] * 1.25 if r.layout.prefix_tokens else 0.0  # room for prefix cells
        aspect = (height + strip) / width
        super().__init__(8.6, 8.6 * aspect / 2 + 0.9)
        self.cmap = matplotlib.colormaps[r.cmap]
        self._view: Any = None  # the image whose photo the left picture holds
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
        self._add_boxes(left, right, r, strip)
        self.left_title = left.set_title("", fontsize=10)
        self.right_title = right.set_title("", fontsize=10)
        self.scale = ScalarMappable(self.norm, self.cmap)
        self.colorbar = self.figure.colorbar(self.scale, ax=right, shrink=0.8, label=SCALE_LABEL)
        self.header = self.figure.suptitle("", fontsize=9, color="#333333")
        self.update(r)

    def _add_boxes(self, left: Any, right: Any, r: FigureRequest, strip: float) -> None:
        """The query box on both sides, and one cell per prefix token above the image."""
        from matplotlib.patches import Rectangle

        cell_h, cell_w = self.cell
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
        pitch = prefix_pitch(cell_w, r.layout.grid[1], len(r.layout.prefix_names))
        box_w = pitch / 1.1
        for i, name in enumerate(r.layout.prefix_names):
            corner = (i * pitch, -strip)
            left.add_patch(
                Rectangle(corner, box_w, cell_h, facecolor="#eeeeee", edgecolor="#555555", lw=0.6)
            )
            self.prefix_cells.append(
                right.add_patch(Rectangle(corner, box_w, cell_h, edgecolor="#555555", lw=0.6))
            )
            centre = (corner[0] + box_w / 2, corner[1] + cell_h / 2)
            left.text(*centre, plain_text(name), ha="center", va="center", fontsize=6)
            self.prefix_labels.append(
                right.text(*centre, plain_text(name), ha="center", va="center", fontsize=6)
            )

    def dynamic(self) -> list[object]:
        over = [a for p in self.pictures for a in (p, *over_image(p.axes))]
        texts = [self.left_title, self.right_title, self.header]
        return [*over, self.colorbar.ax.yaxis, *texts]

    def update(self, r: FigureRequest) -> None:
        prefix, grid, heat = r.grid_heat()
        vmax = positive_max(np.concatenate([grid.ravel(), prefix.ravel()]))
        self.scale.set_clim(0.0, vmax)
        if r.view is not self._view:  # a layer of the same image: its photo is painted
            self._view = r.view
            self.pictures[0].set_data(np.asarray(r.view.convert("RGB")))
        self.pictures[1].set_data(overlay(r.view, heat, r.cmap, r.alpha, 0.0, vmax))
        row, col = r.query
        for box in self.query_boxes:
            box.set_xy((col * self.cell[1], row * self.cell[0]))
        for cell, label, weight in zip(self.prefix_cells, self.prefix_labels, prefix, strict=True):
            colour = self.cmap(self.scale.norm(weight))
            cell.set_facecolor(colour)
            label.set_color(ink(colour))
        self.left_title.set_text(f"query patch ({row}, {col})")
        self.right_title.set_text(f"its attention, {r.head_label}")
        self.header.set_text(self.suptitle(r, r.layer))


def paper(r: FigureRequest) -> bytes:
    return render_template("grid", GridFigure, r)


def notebook(r: FigureRequest) -> object:
    return GridFigure(r).figure


KIND = FigureKind(
    name="grid",
    scope=Scope.LAYER,
    uses=frozenset({Uses.HEAD, Uses.QUERY}),
    file_name=file_name,
    bare=bare,
    paper=paper,
    notebook=notebook,
    skip=skip,
)
