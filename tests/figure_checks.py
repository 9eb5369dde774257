"""What the figure tests share: the figure kinds drawn from templates, decoding a PNG,
and a template drawn whole by matplotlib (the reference painted figures are held to)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from anycapture.render import paper as paper_module

CAT = Path(__file__).resolve().parents[1] / "assets" / "cat.jpg"
KINDS = ("head", "heads", "grid", "cls", "rollout", "layers")


def decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def matplotlib_draw(template: paper_module.Template, drawn: list[Any] | None = None) -> np.ndarray:
    """The template as matplotlib draws it whole: nothing animated, colorbar ticks on.
    ``drawn`` receives each text that draws ink (hidden axes' tick labels do not)."""
    from matplotlib.text import Text

    canvas = template.figure.canvas
    for artist in template.dynamic():
        artist.set_animated(False)
    for axis in template.figure.axes:
        if getattr(axis, "_colorbar", None) is not None:
            axis.yaxis.set_tick_params(right=True, labelright=True)
            axis.yaxis.label.set_visible(True)
            axis.yaxis._autolabelpos = True  # placed by matplotlib, beside its tick labels
    draw = Text.draw

    def recording(self: Text, renderer: Any) -> Any:
        if drawn is not None and self.get_visible() and self.get_text().strip():
            drawn.append(self)
        return draw(self, renderer)

    Text.draw = recording  # type: ignore[method-assign]
    try:
        canvas.draw()
    finally:
        Text.draw = draw  # type: ignore[method-assign]
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(np.int16)
