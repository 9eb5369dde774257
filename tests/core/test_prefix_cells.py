"""The grid figure's prefix cells fit over the image however many prefix tokens."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from anycapture.render.kinds.grid import prefix_pitch


@pytest.mark.parametrize(("columns", "count"), [(14, 1), (12, 5), (4, 5), (2, 9)])
def test_prefix_cells_stay_over_the_image(columns: int, count: int) -> None:
    cell_w = 16.0
    pitch = prefix_pitch(cell_w, columns, count)
    right_edge = (count - 1) * pitch + pitch / 1.1
    assert right_edge <= columns * cell_w
    assert pitch == pytest.approx(cell_w * 1.1) or count * pitch == pytest.approx(columns * cell_w)
