"""Renderers: attention maps (numpy) + token layout + input view -> PNG figures.

``paper`` figures (matplotlib) carry titles, colour bars, prefix-token cells and the
query box; ``bare`` figures (Pillow only) are the picture alone at the model's
input resolution, for composing figures and for tests.  Each figure kind is one
module in ``kinds/``, described by a record in the registry (``registry.py``).

Names load on first use (PEP 562): the CLI reads the kinds' names from here without
importing numpy or Pillow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .draw import render_figure
    from .request import FigureRequest

__all__ = ["FigureRequest", "render_figure"]

_EXPORTS = {"FigureRequest": "request", "render_figure": "draw"}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
