"""Sheets: several pictures in one figure, for the bare style and the sheet kinds
(``cls``, ``rollout``, ``layers``), whose panels share one colour scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .colour import encode_png
from .paper import Label, Panel, SheetFigure, render_sheet
from .request import FigureRequest, positive_max

QUERY_BOX_RGB = (255, 42, 42)  # paper.QUERY_BOX_COLOUR
PREFIX_EDGE_RGB = (85, 85, 85)

__all__ = [
    "Sheet",
    "bare_sheet",
    "check_sheet_heads",
    "mark_patch",
    "notebook_sheet",
    "panel_maxima",
    "paper_sheet",
    "prefix_strip",
    "tile",
]

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


MAX_SHEET_HEADS = 64  # a sheet of more panels is unreadable, and takes minutes to draw


def check_sheet_heads(kind: str, heads: int) -> None:
    """A sheet with a panel per head is refused past :data:`MAX_SHEET_HEADS` heads (a
    maps file with 4096 heads drew for 400 s); the note names the figure to use."""
    from .registry import NotApplicable

    if heads > MAX_SHEET_HEADS:
        raise NotApplicable(
            f"{kind}: {heads} heads are too many panels for one sheet (at most "
            f"{MAX_SHEET_HEADS}); draw one head with --figures head --head H"
        )


def panel_maxima(values: Sequence[np.ndarray], scale: str) -> tuple[list[float], float]:
    """Each panel's colour maximum and the sheet's colour-bar maximum.

    ``shared``: one maximum over every panel (panels compare honestly); ``each``: every
    panel scaled to its own maximum (one outlier no longer washes the others out), and
    the colour bar reads 0..1 of each panel's maximum.
    """
    if scale == "each":
        return [positive_max(v) for v in values], 1.0
    top = positive_max(np.concatenate([np.ravel(v) for v in values]))
    return [top] * len(values), top


def mark_patch(pixels: np.ndarray, grid: tuple[int, int], patch: tuple[int, int]) -> np.ndarray:
    """``pixels`` with a box around patch (row, col) of a ``grid`` laid over it."""
    height, width = pixels.shape[:2]
    cell_h, cell_w = height / grid[0], width / grid[1]
    top, left = round(patch[0] * cell_h), round(patch[1] * cell_w)
    bottom, right = round((patch[0] + 1) * cell_h) - 1, round((patch[1] + 1) * cell_w) - 1
    line = max(1, round(min(cell_h, cell_w) / 12))
    marked = pixels.copy()
    for i in range(line):
        marked[top + i, left : right + 1] = QUERY_BOX_RGB
        marked[bottom - i, left : right + 1] = QUERY_BOX_RGB
        marked[top : bottom + 1, left + i] = QUERY_BOX_RGB
        marked[top : bottom + 1, right - i] = QUERY_BOX_RGB
    return marked


def prefix_strip(
    pixels: np.ndarray,
    grid: tuple[int, int],
    weights: np.ndarray,
    names: Sequence[str],
    colour: Any,
) -> tuple[np.ndarray, tuple[Label, ...]]:
    """``pixels`` under a strip of one cell per prefix token (CLS, registers...),
    each coloured by its weight, as ``grid`` draws them; and the cells' labels.

    ``colour(weights)`` maps weights to RGB uint8 with the panel's scale.
    """
    if not len(names):
        return pixels, ()
    height, width = pixels.shape[:2]
    cell_h, cell_w = height / grid[0], width / grid[1]
    strip_h = max(3, round(cell_h * 1.25))
    strip = np.full((strip_h, width, 3), 255, dtype=np.uint8)
    labels = []
    colours = colour(np.asarray(weights, dtype=np.float32))
    for i, (name, rgb) in enumerate(zip(names, colours, strict=True)):
        left, right = round(i * cell_w * 1.1), round(i * cell_w * 1.1 + cell_w)
        if right > width:
            break  # more prefix tokens than fit in one row: the first ones are drawn
        strip[: round(cell_h), left:right] = PREFIX_EDGE_RGB
        strip[1 : round(cell_h) - 1, left + 1 : right - 1] = rgb
        luminance = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255
        ink = "black" if luminance > 0.55 else "white"
        labels.append(Label((left + right) / 2, cell_h / 2, str(name), ink))
    return np.concatenate([strip, pixels]), tuple(labels)


def bare_sheet(sheet: Sheet) -> bytes:
    return encode_png(tile([p.pixels for p in sheet[0]]))


def paper_sheet(kind: str, r: FigureRequest, sheet: Sheet) -> bytes:
    return render_sheet(kind, r, *sheet)


def notebook_sheet(r: FigureRequest, sheet: Sheet) -> Any:
    """A fresh matplotlib Figure of the sheet (nothing cached)."""
    return SheetFigure(r, *sheet).figure
