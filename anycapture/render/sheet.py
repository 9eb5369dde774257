"""Sheets: several pictures in one figure, for the bare style and the sheet kinds
(``cls``, ``rollout``, ``layers``), whose panels share one colour scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .colour import encode_png
from .paper import Panel, SheetFigure, render_sheet
from .request import FigureRequest

__all__ = ["Sheet", "bare_sheet", "notebook_sheet", "paper_sheet", "tile"]

Sheet = tuple[list[Panel], float, str]
"""A sheet's panels, their shared colour maximum, and its header."""


def tile(panels: Sequence[np.ndarray], columns: int = 6) -> np.ndarray:
    """Panels of one size in rows of ``columns``, white gaps between them."""
    height, width = panels[0].shape[:2]
    gap = max(1, min(height, width) // 50)
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    sheet = np.full(
        (rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, dtype=np.uint8
    )
    for i, panel in enumerate(panels):
        top, left = (i // columns) * (height + gap), (i % columns) * (width + gap)
        sheet[top : top + height, left : left + width] = panel
    return sheet


def bare_sheet(sheet: Sheet) -> bytes:
    return encode_png(tile([p.pixels for p in sheet[0]]))


def paper_sheet(kind: str, r: FigureRequest, sheet: Sheet) -> bytes:
    return render_sheet(kind, r, *sheet)


def notebook_sheet(r: FigureRequest, sheet: Sheet) -> Any:
    """A fresh matplotlib Figure of the sheet (nothing cached)."""
    return SheetFigure(r, *sheet).figure
