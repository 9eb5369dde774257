"""Renderers: attention maps (numpy) + token layout + input view -> PNG figures.

``paper`` figures (matplotlib) carry titles, colour bars, prefix-token cells and the
query box; ``bare`` figures (Pillow only) are the picture alone at the model's
input resolution, for composing figures and for tests.
"""

from .figures import FIGURE_KINDS, STYLES, FigureRequest, render_figure
from .output import write_bytes_atomic

__all__ = ["FIGURE_KINDS", "STYLES", "FigureRequest", "render_figure", "write_bytes_atomic"]
