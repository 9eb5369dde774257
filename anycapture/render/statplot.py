"""Per-head statistic sheets (``distance``, ``entropy``): layer on x, one dot per head,
the head mean as a line; for a whole run, dots are means across images with their
spread (standard deviation) as error bars.  matplotlib, imported on use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .colour import encode_png

__all__ = ["STAT_LABELS", "StatSheet", "render_stat_sheet"]

STAT_LABELS = {
    "distance": "mean attention distance (input px)",
    "entropy": "attention entropy (nats)",
}
DPI = 120
HEAD_COLOUR = "#4c72b0"
MEAN_COLOUR = "#c44e52"


@dataclass(frozen=True)
class StatSheet:
    """What one sheet shows.

    Attributes:
        kind: ``distance`` or ``entropy``.
        values: per layer, ``(heads,)`` values (``nan`` where a head has none) or None
            (the statistic does not apply to that layer).
        spread: per layer, the standard deviation across images (aggregate sheets).
        layer_names: for the x tick labels' caption.
        title: the header line (image or run).
        reference: a dashed horizontal line and its label (e.g. uniform entropy).
    """

    kind: str
    values: Sequence[np.ndarray | None]
    spread: Sequence[np.ndarray | None] | None = None
    layer_names: Sequence[str] = ()
    title: str = ""
    reference: tuple[float, str] | None = None


def render_stat_sheet(sheet: StatSheet, bare: bool = False) -> bytes:
    """The sheet as PNG; ``bare`` leaves out the header, legend and reference label."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layers = len(sheet.values)
    figure = Figure(
        figsize=(max(4.0, 0.45 * layers + 2.2), 3.4),
        dpi=DPI,
        layout="constrained",
        facecolor="white",
    )
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    means_x, means_y = [], []
    for layer, values in enumerate(sheet.values):
        if values is None:
            continue
        present = ~np.isnan(values)
        if not present.any():
            continue
        xs = np.full(int(present.sum()), float(layer))
        if sheet.spread is not None and sheet.spread[layer] is not None:
            axis.errorbar(
                xs,
                values[present],
                yerr=np.asarray(sheet.spread[layer])[present],
                fmt="o",
                ms=3.5,
                color=HEAD_COLOUR,
                ecolor=HEAD_COLOUR,
                elinewidth=0.7,
                capsize=2,
                alpha=0.7,
                label="head (mean ± sd across images)" if not means_x else None,
            )
        else:
            axis.scatter(
                xs,
                values[present],
                s=14,
                color=HEAD_COLOUR,
                alpha=0.75,
                label="head" if not means_x else None,
            )
        means_x.append(layer)
        means_y.append(float(values[present].mean()))
    axis.plot(means_x, means_y, "-", color=MEAN_COLOUR, lw=1.6, label="mean over heads")
    if sheet.reference is not None:
        value, label = sheet.reference
        axis.axhline(value, color="#777777", lw=0.8, ls="--", label=None if bare else label)
    axis.set_xlim(-0.5, max(layers - 0.5, 0.5))
    axis.set_xticks(range(layers))
    axis.tick_params(labelsize=7)
    axis.set_xlabel("layer")
    axis.set_ylabel(STAT_LABELS[sheet.kind], fontsize=9)
    axis.set_ylim(bottom=0.0)
    axis.grid(axis="y", color="#dddddd", lw=0.6)
    if not bare:
        axis.legend(fontsize=7, loc="best", frameon=False)
        if sheet.title:
            figure.suptitle(sheet.title, fontsize=9, color="#333333")
    figure.canvas.draw()
    rgba = np.asarray(figure.canvas.buffer_rgba())
    return encode_png(rgba[..., :3])
