"""What ``distance`` and ``entropy`` share: a per-head statistic drawn by ``statplot``.

``statistic_kind(name)`` builds the kind: one sheet per image (layer on x, one dot per
head, the head mean as a line) and, with two or more images, one for the run (means
across images with their standard deviation, ``<name>_all_images.png``).  The
drawing functions are module-level and bound to the name with ``functools.partial``,
so worker processes receive them by reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from .. import statplot
from ..registry import Drawn, FigureKind, Scope
from ..request import FigureRequest

__all__ = ["statistic_kind"]


def _file_name(name: str, _r: Any) -> str:
    return f"{name}.png"


def _run_file_name(name: str, _state: statplot.StatRun) -> str:
    return f"{name}_all_images.png"


def _sheet(name: str, bare: bool, r: FigureRequest) -> Drawn:
    return statplot.draw(*statplot.image_sheet(name, r), bare=bare)


def _notebook(name: str, r: FigureRequest) -> Any:
    return statplot.stat_figure(statplot.image_sheet(name, r)[0])


def _collect(name: str, state: statplot.StatRun | None, r: FigureRequest) -> statplot.StatRun:
    return statplot.collect(name, state, r)


def _run_sheet(bare: bool, state: statplot.StatRun) -> Drawn:
    return statplot.draw(*statplot.run_sheet(state), bare=bare)


def _caption(name: str, values: Mapping[str, Any]) -> str:
    return statplot.caption(name, values)


def statistic_kind(name: str) -> FigureKind:
    """The per-image kind ``name`` (a statistic ``statplot`` computes) and its run
    aggregate."""
    aggregate = FigureKind(
        name=name,
        scope=Scope.RUN,
        uses=frozenset(),
        file_name=partial(_run_file_name, name),
        bare=partial(_run_sheet, True),
        paper=partial(_run_sheet, False),
        collect=partial(_collect, name),
        caption=partial(_caption, name),
    )
    return FigureKind(
        name=name,
        scope=Scope.IMAGE,
        uses=frozenset(),
        file_name=partial(_file_name, name),
        bare=partial(_sheet, name, True),
        paper=partial(_sheet, name, False),
        notebook=partial(_notebook, name),
        aggregate=aggregate,
        caption=partial(_caption, name),
    )
