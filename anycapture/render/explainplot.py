"""The ``explain`` picture: a class's relevance over the patches, on the image.

``paper``: the input view beside the overlay, titled with the class name and the
model's probability for it, with a colour bar; ``bare``: the overlay alone at the
model's input resolution.  Relevance is shown from 0 to its maximum over the
patches (its absolute scale depends on the logit, so only the pattern compares).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .colour import encode_png, overlay, upsample

__all__ = ["SCALE_LABEL", "class_caption", "render_explain"]

SCALE_LABEL = "relevance (0 to max)"
DPI = 120


def class_caption(name: str | None, index: int, probability: float, rank: int | None) -> str:
    """``goldfish (class 1) · p = 0.973 · top-1``."""
    label = f"{name} (class {index})" if name else f"class {index}"
    text = f"{label} · p = {probability:.3f}"
    return f"{text} · top-{rank}" if rank is not None else text


def _heat(
    relevance: np.ndarray, view: Image.Image, cmap: str, alpha: float, method: str
) -> tuple[np.ndarray, float]:
    grid = np.clip(relevance, 0.0, None)
    top = float(grid.max()) if float(grid.max()) > 0 else 1.0
    heat = upsample(grid, (view.height, view.width), method)
    return overlay(view, heat, cmap, alpha, 0.0, top), top


def render_explain(
    relevance: np.ndarray,
    view: Image.Image,
    caption: str,
    title: str = "",
    *,
    cmap: str = "viridis",
    alpha: float = 0.6,
    method: str = "bilinear",
    bare: bool = False,
) -> bytes:
    """PNG of a ``(rows, cols)`` relevance grid over ``view``."""
    pixels, top = _heat(relevance, view, cmap, alpha, method)
    if bare:
        return encode_png(pixels)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    aspect = view.height / view.width
    figure = Figure(
        figsize=(7.6, 3.3 * aspect + 0.9), dpi=DPI, layout="constrained", facecolor="white"
    )
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    left.imshow(np.asarray(view.convert("RGB")), interpolation="bilinear")
    left.set_title("input", fontsize=9)
    right.imshow(pixels, interpolation="bilinear")
    right.set_title(caption, fontsize=9)
    for axis in (left, right):
        axis.set_axis_off()
    figure.colorbar(
        ScalarMappable(Normalize(0.0, top), cmap), ax=right, shrink=0.8, label=SCALE_LABEL
    )
    header = "class relevance (Chefer et al. 2021)"
    figure.suptitle(f"{title}\n{header}" if title else header, fontsize=9, color="#333333")
    figure.canvas.draw()
    return encode_png(np.asarray(figure.canvas.buffer_rgba())[..., :3])
