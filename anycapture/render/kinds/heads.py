"""``heads``: every head's token x token map and their average, per layer."""

from __future__ import annotations

import math

import numpy as np

from ..colour import colourise, encode_png
from ..paper import SCALE_LABEL, Template, over_image, render_template
from ..registry import FigureKind, Scope, Uses
from ..request import FigureRequest
from ..sheet import check_sheet_heads, panel_maxima, tile


def file_name(r: FigureRequest) -> str:
    return f"heads_L{r.layer_index:02d}.png"


def _matrices(r: FigureRequest) -> list[np.ndarray]:
    check_sheet_heads("heads", r.maps.shape[0])
    return [*r.maps, r.maps.mean(axis=0)]


def bare(r: FigureRequest) -> bytes:
    matrices = _matrices(r)
    maxima, _ = panel_maxima(matrices, r.scale)
    panels = [colourise(m, r.cmap, 0.0, top) for m, top in zip(matrices, maxima, strict=True)]
    return encode_png(tile(panels, columns=len(panels)))


class HeadsFigure(Template):
    @staticmethod
    def key(r: FigureRequest) -> tuple[str, ...]:
        return (r.scale,)

    def __init__(self, r: FigureRequest) -> None:
        heads = r.maps.shape[0]
        check_sheet_heads("heads", heads)
        panels = heads + 1  # every head, then their average: no empty panels drawn
        cols = min(panels, max(2, math.ceil(math.sqrt(panels * 1.5))))
        rows = math.ceil(panels / cols)
        super().__init__(2.3 * cols + 0.8, 2.3 * rows + 0.5)
        grid_spec = self.figure.add_gridspec(rows, cols)
        self.images, self.titles = [], []
        blank = np.zeros(r.maps.shape[1:])
        for i in range(panels):
            axis = self.figure.add_subplot(grid_spec[i // cols, i % cols])
            image = axis.imshow(blank, cmap=r.cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            self.titles.append(axis.set_title("", fontsize=9))
            axis.set_xticks([])
            axis.set_yticks([])
            self.images.append(image)
        each = r.scale == "each"
        label = "share of each panel's own maximum" if each else f"{SCALE_LABEL} (shared scale)"
        self.bar = self.figure.colorbar(
            self.images[0], ax=self.figure.axes, shrink=0.8, label=label
        )
        self.header = self.figure.suptitle("", fontsize=9, color="#333333")
        self.update(r)

    def dynamic(self) -> list[object]:
        pictures = [[image, *over_image(image.axes)] for image in self.images]
        # the titles say each panel's maximum under --scale each: they change per figure
        texts = [*self.titles, self.header]
        return [*(a for p in pictures for a in p), self.bar.ax.yaxis, *texts]

    def update(self, r: FigureRequest) -> None:
        matrices = _matrices(r)
        maxima, _ = panel_maxima(matrices, r.scale)
        heads = len(matrices) - 1
        each = r.scale == "each"
        for i, (image, matrix, top) in enumerate(zip(self.images, matrices, maxima, strict=True)):
            if each:  # every panel on 0..1 of its own maximum: one bar reads for all
                image.set_data(matrix / top)
                image.set_clim(0.0, 1.0)
            else:
                image.set_data(matrix)
                image.set_clim(0.0, top)
            title = f"head {i}" if i < heads else "head average"
            self.titles[i].set_text(f"{title} (max {top:.2g})" if each else title)
        self.header.set_text(self.suptitle(r, f"{r.layer}: all {r.maps.shape[0]} heads"))


def paper(r: FigureRequest) -> bytes:
    return render_template("heads", HeadsFigure, r)


def notebook(r: FigureRequest) -> object:
    return HeadsFigure(r).figure


KIND = FigureKind(
    name="heads",
    scope=Scope.LAYER,
    uses=frozenset({Uses.SCALE}),
    file_name=file_name,
    bare=bare,
    paper=paper,
    notebook=notebook,
    image_wide=False,
)
