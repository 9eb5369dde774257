"""Drawing one figure by kind name, outside a render run (benchmarks, scripts)."""

from __future__ import annotations

from .kinds import KINDS
from .registry import Drawn
from .request import FigureRequest

__all__ = ["render_figure"]


def render_figure(kind: str, style: str, request: FigureRequest) -> bytes:
    """``kind``'s PNG in ``style`` (paper or bare) for a per-layer or per-image request."""
    drawing = KINDS[kind].draw_function(style)(request)
    return drawing.png if isinstance(drawing, Drawn) else drawing
