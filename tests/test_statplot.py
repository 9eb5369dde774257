"""Per-head statistic sheets (distance, entropy) keep every dot and error bar inside
the axes, with room above the highest."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from anycapture.render.statplot import StatSheet, stat_figure


@pytest.mark.parametrize("spread", [None, 0.8])
def test_the_highest_dot_and_bar_have_room_above_them(spread):
    values = [np.array([30.0, 43.0, 27.5]), None, np.array([3.0, np.nan, 12.0])]
    spreads = None if spread is None else [v if v is None else np.full(3, spread) for v in values]
    figure = stat_figure(StatSheet("distance", values, spreads, title="t"))
    bottom, top = figure.axes[0].get_ylim()
    highest = 43.0 + (spread or 0.0)
    assert bottom == 0.0
    assert top >= highest * 1.05


def test_a_sheet_of_zeros_still_has_an_axis():
    figure = stat_figure(StatSheet("entropy", [np.zeros(4)], reference=None))
    assert figure.axes[0].get_ylim() == (0.0, 1.0)
