"""Per-head statistic sheets for the ``distance`` and ``entropy`` kinds: layer on x,
one dot per head, the head mean as a line; for a whole run (:class:`StatRun`), the
dots are means across images with their spread (standard deviation) as error bars.
matplotlib is imported on use."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..head_stats import aggregate, as_json, per_layer
from .colour import encode_png
from .registry import Drawn, NotApplicable
from .request import FigureRequest

__all__ = [
    "STATS",
    "StatRun",
    "StatSheet",
    "caption",
    "collect",
    "draw",
    "image_sheet",
    "run_sheet",
    "stat_figure",
]

# kind -> (axis label, manifest key)
STATS = {
    "distance": ("mean attention distance (input px)", "distance_px"),
    "entropy": ("attention entropy (nats)", "entropy_nats"),
}
DPI = 120
HEAD_COLOUR = "#4c72b0"
MEAN_COLOUR = "#c44e52"


@dataclass(frozen=True)
class StatSheet:
    """What one sheet shows: per layer, ``(heads,)`` values (``nan`` where a head has
    none) or None (the statistic does not apply to that layer); ``spread`` per layer
    for run sheets; a dashed ``reference`` line with its label."""

    kind: str
    values: Sequence[np.ndarray | None]
    spread: Sequence[np.ndarray | None] | None = None
    title: str = ""
    reference: tuple[float, str] | None = None


@dataclass
class StatRun:
    """A run's collected values: per image, per layer ``(heads,)`` or None."""

    kind: str
    title: str = ""
    reference: tuple[float, str] | None = None
    images: list[list[np.ndarray | None]] = field(default_factory=list)


def _reference(kind: str, r: FigureRequest) -> tuple[float, str] | None:
    if kind != "entropy":
        return None
    patches = r.layout.num_patches
    return math.log(patches), f"uniform over {patches} patches"


def _values(kind: str, r: FigureRequest) -> list[np.ndarray | None]:
    """Per layer ``(heads,)``; None for class-attention layers and for windowed ones
    (a window's tokens are not the image's patch grid)."""
    view_hw = (r.view.height, r.view.width)
    values = per_layer(kind, list(r.all_layers), r.layout, view_hw)
    for i, (name, _) in enumerate(r.all_layers):
        window = r.windows.get(name)
        if window is not None and window[1] > 1:
            values[i] = None
    if all(v is None for v in values):
        raise NotApplicable(
            f"{kind} needs layers whose patch tokens attend to the patch grid; this model "
            "has none (windowed or class attention only)"
        )
    return values


def image_sheet(kind: str, r: FigureRequest) -> tuple[StatSheet, dict[str, Any]]:
    """One image's sheet and its manifest values (``distance_px`` / ``entropy_nats``)."""
    values = _values(kind, r)
    sheet = StatSheet(kind, values, None, r.title, _reference(kind, r))
    return sheet, {STATS[kind][1]: as_json(values)}


def collect(kind: str, state: StatRun | None, r: FigureRequest) -> StatRun:
    """Fold one image into the run's state (numbers only, no maps)."""
    if state is None:
        title = r.title.rsplit(" · ", 1)[0] if " · " in r.title else ""
        state = StatRun(kind, title, _reference(kind, r))
    try:
        state.images.append(_values(kind, r))
    except NotApplicable:
        pass  # noted by the per-image figure
    return state


def run_sheet(state: StatRun) -> tuple[StatSheet, dict[str, Any]]:
    """The run's sheet (mean and spread across images) and its manifest values."""
    if not state.images:
        raise NotApplicable(f"{state.kind}: no image had values to aggregate")
    mean, spread = aggregate(state.images)
    count = len(state.images)
    title = f"{state.title} · {count} images" if state.title else f"{count} images"
    key = STATS[state.kind][1]
    values = {key: as_json(mean), f"{key}_sd": as_json(spread), "images": count}
    return StatSheet(state.kind, mean, spread, title, state.reference), values


def draw(sheet: StatSheet, values: Mapping[str, Any], bare: bool) -> Drawn:
    figure = stat_figure(sheet, bare)
    figure.canvas.draw()
    return Drawn(encode_png(np.asarray(figure.canvas.buffer_rgba())[..., :3]), values)


def stat_figure(sheet: StatSheet, bare: bool = False) -> Any:
    """The sheet as a matplotlib Figure; ``bare`` leaves out the header and legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layers = len(sheet.values)
    figure = Figure(figsize=(max(4.0, 0.45 * layers + 2.2), 3.4), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    means = _plot_layers(axis, sheet)
    axis.plot(*means, "-", color=MEAN_COLOUR, lw=1.6, label="mean over heads")
    if sheet.reference is not None:
        value, label = sheet.reference
        axis.axhline(value, color="#777777", lw=0.8, ls="--", label=label)
    axis.set_xlim(-0.5, max(layers - 0.5, 0.5))
    axis.set_xticks(range(layers))
    axis.tick_params(labelsize=7)
    axis.set_xlabel("layer")
    axis.set_ylabel(STATS[sheet.kind][0], fontsize=9)
    top = float(axis.dataLim.y1)  # the highest dot, error bar or reference line
    axis.set_ylim(0.0, top * 1.08 if np.isfinite(top) and top > 0 else 1.0)  # room above it
    axis.grid(axis="y", color="#dddddd", lw=0.6)
    if not bare:
        figure.legend(loc="outside lower center", ncol=2, fontsize=7, frameon=False)
        if sheet.title:
            figure.suptitle(sheet.title, fontsize=9, color="#333333")
    return figure


def _plot_layers(axis: Any, sheet: StatSheet) -> tuple[list[int], list[float]]:
    """One dot per head per layer (with error bars on run sheets); the head means."""
    means_x: list[int] = []
    means_y: list[float] = []
    for layer, values in enumerate(sheet.values):
        present = None if values is None else ~np.isnan(values)
        if values is None or present is None or not present.any():
            continue
        xs = np.full(int(present.sum()), float(layer))
        label = None if means_x else "head"
        spread = None if sheet.spread is None else sheet.spread[layer]
        if spread is not None:
            axis.errorbar(
                xs,
                values[present],
                yerr=np.asarray(spread)[present],
                fmt="o",
                ms=3.5,
                color=HEAD_COLOUR,
                elinewidth=0.7,
                capsize=2,
                alpha=0.7,
                label=None if means_x else "head (mean ± sd across images)",
            )
        else:
            axis.scatter(xs, values[present], s=14, color=HEAD_COLOUR, alpha=0.75, label=label)
        means_x.append(layer)
        means_y.append(float(values[present].mean()))
    return means_x, means_y


def caption(kind: str, values: Mapping[str, Any]) -> str:
    """The HTML caption: the head mean per layer (and the image count for a run)."""
    key = STATS[kind][1]
    layers = values.get(key) or []
    means = [
        f"{np.mean([v for v in layer if v is not None]):.2f}"
        if layer and any(v is not None for v in layer)
        else "–"
        for layer in layers
    ]
    unit = "px" if kind == "distance" else "nats"
    text = f"{kind} per layer, head mean ({unit}): {' '.join(means)}"
    return f"{text}; mean ± sd over {values['images']} images" if "images" in values else text
