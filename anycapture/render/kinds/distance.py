"""``distance``: mean attention distance per layer and head, in model-input pixels
(the ViT paper's Fig. 7): over the patch queries, the attention to the patch keys
(prefix keys left out, weights renormalised) times the distance between the patch
centres.  Manifest ``values``: ``distance_px``, a list per layer of per-head values
(None where a layer has no patch queries or is windowed).

One sheet per image (layer on x, one dot per head, the head mean as a line) and,
with two or more images, one for the run: means across images with their standard
deviation (``distance_all_images.png``, values ``distance_px`` and ``..._sd``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import statplot
from ..registry import Drawn, FigureKind, Scope
from ..request import FigureRequest

NAME = "distance"


def file_name(_r: FigureRequest) -> str:
    return f"{NAME}.png"


def paper(r: FigureRequest) -> Drawn:
    return statplot.draw(*statplot.image_sheet(NAME, r), bare=False)


def bare(r: FigureRequest) -> Drawn:
    return statplot.draw(*statplot.image_sheet(NAME, r), bare=True)


def notebook(r: FigureRequest) -> Any:
    return statplot.stat_figure(statplot.image_sheet(NAME, r)[0])


def collect(state: statplot.StatRun | None, r: FigureRequest) -> statplot.StatRun:
    return statplot.collect(NAME, state, r)


def run_file_name(_state: statplot.StatRun) -> str:
    return f"{NAME}_all_images.png"


def run_paper(state: statplot.StatRun) -> Drawn:
    return statplot.draw(*statplot.run_sheet(state), bare=False)


def run_bare(state: statplot.StatRun) -> Drawn:
    return statplot.draw(*statplot.run_sheet(state), bare=True)


def caption(values: Mapping[str, Any]) -> str:
    return statplot.caption(NAME, values)


AGGREGATE = FigureKind(
    name=NAME,
    scope=Scope.RUN,
    uses=frozenset(),
    file_name=run_file_name,
    bare=run_bare,
    paper=run_paper,
    collect=collect,
    caption=caption,
)

KIND = FigureKind(
    name=NAME,
    scope=Scope.IMAGE,
    uses=frozenset(),
    file_name=file_name,
    bare=bare,
    paper=paper,
    notebook=notebook,
    aggregate=AGGREGATE,
    caption=caption,
)
