"""``head``: one head's (or the head mean's) token x token attention map, per layer."""

from __future__ import annotations

import numpy as np

from ..colour import colourise, encode_png
from ..paper import SCALE_LABEL, Template, over_image, plain_text, render_template, token_ticks
from ..registry import FigureKind, Scope, Uses
from ..request import FigureRequest, positive_max


def file_name(r: FigureRequest) -> str:
    return f"head_L{r.layer_index:02d}_{r.head_tag}.png"


def bare(r: FigureRequest) -> bytes:
    matrix = r.head_map()
    return encode_png(colourise(matrix, r.cmap, 0.0, float(matrix.max())))


class HeadFigure(Template):
    def __init__(self, r: FigureRequest) -> None:
        super().__init__(5.4, 4.6)
        axis = self.figure.add_subplot()
        self.image = axis.imshow(
            np.zeros(r.maps.shape[1:]), cmap=r.cmap, vmin=0.0, vmax=1.0, interpolation="nearest"
        )
        token_ticks(axis, r.layout, square=r.maps.shape[-2] == r.maps.shape[-1])
        axis.set_xlabel("key token")
        axis.set_ylabel("query token")
        self.title = axis.set_title("", fontsize=10)
        self.colorbar = self.figure.colorbar(self.image, ax=axis, shrink=0.85, label=SCALE_LABEL)
        self.header = self.figure.suptitle("", fontsize=9, color="#333333")
        self.update(r)

    def dynamic(self) -> list[object]:
        axis = self.image.axes
        return [self.image, *over_image(axis), self.colorbar.ax.yaxis, self.title, self.header]

    def update(self, r: FigureRequest) -> None:
        matrix = r.head_map()
        self.image.set_data(matrix)
        self.image.set_clim(0.0, positive_max(matrix))
        self.title.set_text(plain_text(f"{r.layer} · {r.head_label}"))
        prefix = ", ".join(r.layout.prefix_names) or "no"
        grid = f"{r.layout.grid[0]}x{r.layout.grid[1]} patches"
        self.header.set_text(self.suptitle(r, f"tokens: {prefix} prefix, then {grid}"))


def paper(r: FigureRequest) -> bytes:
    return render_template("head", HeadFigure, r)


def notebook(r: FigureRequest) -> object:
    return HeadFigure(r).figure


KIND = FigureKind(
    name="head",
    scope=Scope.LAYER,
    uses=frozenset({Uses.HEAD}),
    file_name=file_name,
    bare=bare,
    paper=paper,
    notebook=notebook,
    image_wide=False,
)
