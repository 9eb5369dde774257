"""``heads``: every head's token x token map and their average, per layer."""

from __future__ import annotations

import math

import numpy as np

from ..colour import colourise, encode_png
from ..paper import SCALE_LABEL, Template, render_template
from ..registry import FigureKind, Scope
from ..request import FigureRequest, positive_max
from ..sheet import tile


def file_name(r: FigureRequest) -> str:
    return f"heads_L{r.layer_index:02d}.png"


def bare(r: FigureRequest) -> bytes:
    vmax = float(r.maps.max())
    panels = [colourise(p, r.cmap, 0.0, vmax) for p in (*r.maps, r.maps.mean(axis=0))]
    return encode_png(tile(panels, columns=len(panels)))


class HeadsFigure(Template):
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
        vmax = positive_max(r.maps)
        for image, matrix in zip(self.images, [*r.maps, r.maps.mean(axis=0)], strict=True):
            image.set_data(matrix)
            image.set_clim(0.0, vmax)
        self.header.set_text(self.suptitle(r, f"{r.layer}: all {r.maps.shape[0]} heads"))


def paper(r: FigureRequest) -> bytes:
    return render_template("heads", HeadsFigure, r)


def notebook(r: FigureRequest) -> object:
    return HeadsFigure(r).figure


KIND = FigureKind(
    name="heads",
    scope=Scope.LAYER,
    uses=frozenset(),
    file_name=file_name,
    bare=bare,
    paper=paper,
    notebook=notebook,
    image_wide=False,
)
