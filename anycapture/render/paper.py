"""Annotated (``paper``) figures with matplotlib.

Building a matplotlib figure and solving its layout costs far more than drawing
it, so each figure kind is built once per shape (a *template*), its layout
frozen, and later images only swap the data, colour limits and texts.  The kinds'
own templates live in their modules (``kinds/``); here are the base class, the
cache, the shared sheet figure and small drawing helpers.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..layout import TokenLayout
from .colour import encode_png

if TYPE_CHECKING:
    from .request import FigureRequest

__all__ = [
    "QUERY_BOX_COLOUR",
    "SCALE_LABEL",
    "Label",
    "Panel",
    "SheetFigure",
    "Template",
    "ink",
    "over_image",
    "plain_text",
    "render_sheet",
    "render_template",
    "token_ticks",
]

QUERY_BOX_COLOUR = "#ff2a2a"
SCALE_LABEL = "attention weight"
DPI = 120
_TEMPLATES: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_MAX_TEMPLATES = 8
STATIC_REDRAWS = [0]  # frames redrawn because a text a template called static changed
_HEADER_CHAR_PX = 9.5  # the widest average glyph of a 9-point header at DPI (DejaVu Sans)
_CANONICAL_TOP = 0.000175  # tick labels "0.000000" .. "0.000175": room for the widest
# labels maxima down to 1e-5 give (a 448 px vit_small's head mean: 0.00175); below
# that matplotlib writes a common factor (1e-6) and short labels


@dataclass(frozen=True)
class Label:
    """Text on a panel (a prefix cell's name), at pixel (x, y), in ``ink``."""

    x: float
    y: float
    text: str
    ink: str


@dataclass(frozen=True)
class Panel:
    """One picture of a sheet figure: a title, RGB pixels, and labels on it
    (drawn by the annotated style only)."""

    title: str
    pixels: np.ndarray
    labels: tuple[Label, ...] = ()


def plain_text(text: str) -> str:
    """``text`` drawn as it is: a ``$`` never starts math text (an image named
    ``$\\frac$.png``), and undecodable bytes of a file name (surrogates) show as U+FFFD."""
    text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text.replace("$", r"\$")


def render_template(kind: str, template_class: type[Template], r: FigureRequest) -> bytes:
    """``kind``'s PNG from its template class, reusing a template of the same shape."""
    key = (kind, r.maps.shape, r.layout, r.view.size, r.cmap, template_class.key(r))
    return _cached(key, lambda: template_class(r), lambda t: t.update(r)).png()


def render_sheet(
    kind: str, r: FigureRequest, panels: list[Panel], vmax: float, header: str
) -> bytes:
    """A sheet of image panels sharing one colour scale (cls, rollout, layers)."""
    labels = tuple(len(p.labels) for p in panels)
    key = (kind, len(panels), panels[0].pixels.shape, r.cmap, r.scale, labels)

    def update(template: SheetFigure) -> None:
        template.update(r, panels, vmax, header)

    return _cached(key, lambda: SheetFigure(r, panels, vmax, header), update).png()


def _cached(key: tuple[Any, ...], build: Any, update: Any) -> Any:
    template = _TEMPLATES.get(key)
    if template is None:
        template = build()
        _TEMPLATES[key] = template
        if len(_TEMPLATES) > _MAX_TEMPLATES:
            _TEMPLATES.popitem(last=False)
    else:
        _TEMPLATES.move_to_end(key)
        update(template)
    return template


class Template:
    """A figure whose layout is solved once, on the first draw, then frozen.

    A template that lists its :meth:`dynamic` artists (what changes from one figure
    to the next, in drawing order) is then drawn in two parts: everything else once,
    as a static frame, and per figure the frame restored and only those artists
    drawn over it (matplotlib's blitting, on the Agg canvas).
    """

    def __init__(self, width: float, height: float) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.figure = Figure(
            figsize=(width, height), dpi=DPI, layout="constrained", facecolor="white"
        )
        FigureCanvasAgg(self.figure)
        self._frozen = False
        self._frame: Any = None
        self._steps: list[Any] = []
        self._static_texts: list[tuple[Any, tuple[Any, ...]]] = []

    @staticmethod
    def key(r: FigureRequest) -> tuple[Any, ...]:
        return ()

    def update(self, r: FigureRequest) -> None:
        raise NotImplementedError

    def dynamic(self) -> list[Any]:
        """The artists that change between figures, in the order they are drawn; every
        static artist drawn over one of them must be listed too (spines over images)."""
        return []

    def png(self) -> bytes:
        canvas = self.figure.canvas
        if not self._frozen:
            self._freeze()
        if self._frame is None:
            canvas.draw()  # one Agg draw; savefig would draw twice
            rgba = np.asarray(canvas.buffer_rgba())
        else:
            if self._static_texts_changed():
                self._redraw_frame()
            canvas.restore_region(self._frame)
            rgba = np.asarray(canvas.buffer_rgba())
            for step in self._steps:
                step(rgba)
        return encode_png(rgba[..., :3])

    def _freeze(self) -> None:
        """Solve the constrained layout once and keep it; then set apart the dynamic
        artists (painted per figure, ``painters.py``) from the static frame."""
        from .painters import paint_steps

        canvas = self.figure.canvas
        with self._canonical_content():
            canvas.draw()
        self.figure.set_layout_engine("none")
        self._frozen = True
        dynamic = self.dynamic()
        if dynamic:
            for artist in dynamic:
                artist.set_animated(True)  # left out of the frame
            self._steps = paint_steps(self.figure, dynamic)
            self._redraw_frame()

    def _redraw_frame(self) -> None:
        """Draw the static frame and note what its texts say."""
        self.figure.canvas.draw()
        self._frame = self.figure.canvas.copy_from_bbox(self.figure.bbox)
        self._static_texts = [(text, _text_state(text)) for text in self._static_text_artists()]

    def _static_text_artists(self) -> list[Any]:
        from matplotlib.text import Text

        painted = {id(a) for artist in self.dynamic() for a in artist.findobj()}
        return [t for t in self.figure.findobj(Text) if id(t) not in painted]

    def _static_texts_changed(self) -> bool:
        """Whether a text of the frame now says something else: a kind that changes a
        text without listing it as dynamic would otherwise show the first figure's
        words on every later one, so the frame is redrawn (and counted: the kinds'
        tests require no such redraw)."""
        if all(_text_state(text) == state for text, state in self._static_texts):
            return False
        STATIC_REDRAWS[0] += 1
        return True

    @contextmanager
    def _canonical_content(self) -> Iterator[None]:
        """The layout is solved with stand-ins for what changes (each changing text
        one "Mg" per line, each colorbar over 0..0.000175), so one template shape has one
        layout whichever figure a process draws first: files do not depend on --jobs
        or shards."""
        from matplotlib.text import Text

        texts = [a for a in self.dynamic() if isinstance(a, Text)]
        saved = [(text, text.get_text()) for text in texts]
        bars = [a._colorbar.mappable for a in self.figure.axes if getattr(a, "_colorbar", None)]
        limits = [(bar, bar.get_clim()) for bar in bars]
        for text, said in saved:
            text.set_text("\n".join("Mg" for _ in said.split("\n")) if said else "")
        for bar in bars:
            bar.set_clim(0.0, _CANONICAL_TOP)
        try:
            yield
        finally:
            for text, said in saved:
                text.set_text(said)
            for bar, (low, high) in limits:
                bar.set_clim(low, high)

    def suptitle(self, r: FigureRequest, text: str) -> str:
        """The header: the run's title (model, image) over ``text``, each line shortened
        in its middle to what the figure's width holds (a 66-character file name)."""
        fits = int(self.figure.bbox.width / _HEADER_CHAR_PX)
        lines = [r.title, text] if r.title else [text]
        return plain_text("\n".join(_middle_cut(line, fits) for line in lines))


def _text_state(text: Any) -> tuple[Any, ...]:
    return (text.get_text(), str(text.get_color()), text.get_position(), text.get_visible())


def _middle_cut(line: str, fits: int) -> str:
    """``line`` with its middle replaced by an ellipsis when longer than ``fits``."""
    if len(line) <= fits:
        return line
    head = (fits - 1) // 2
    return f"{line[:head]}…{line[len(line) - (fits - 1 - head) :]}"


def over_image(axis: Any) -> list[Any]:
    """What an axes draws over its images: lines, patches, texts and the spines."""
    spines = list(axis.spines.values()) if axis.axison else []
    return [*axis.lines, *axis.patches, *axis.texts, *spines]


class SheetFigure(Template):
    def __init__(self, r: FigureRequest, panels: list[Panel], vmax: float, header: str) -> None:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        height, width = panels[0].pixels.shape[:2]
        cols = min(len(panels), 6)
        rows = math.ceil(len(panels) / cols)
        panel_w = 2.2
        super().__init__(panel_w * cols + 1.0, panel_w * height / width * rows + 0.3 * rows + 0.6)
        grid_spec = self.figure.add_gridspec(rows, cols)
        self.images, self.titles, self.labels = [], [], []
        for i, panel in enumerate(panels):
            axis = self.figure.add_subplot(grid_spec[i // cols, i % cols])
            self.images.append(axis.imshow(panel.pixels, interpolation="bilinear"))
            self.titles.append(axis.set_title(panel.title, fontsize=8))
            self.labels += [
                axis.text(lb.x, lb.y, lb.text, ha="center", va="center", fontsize=6)
                for lb in panel.labels
            ]
            axis.set_axis_off()
        self.scale = ScalarMappable(Normalize(0.0, vmax), r.cmap)
        each = r.scale == "each"
        label = "share of each panel's own maximum" if each else SCALE_LABEL
        self.colorbar = self.figure.colorbar(
            self.scale, ax=self.figure.axes, shrink=0.8, label=label
        )
        self.header = self.figure.suptitle("", fontsize=9, color="#333333")
        self.update(r, panels, vmax, header)

    def dynamic(self) -> list[Any]:
        pictures = [a for image in self.images for a in (image, *over_image(image.axes))]
        return [*pictures, *self.titles, self.colorbar.ax.yaxis, self.header]

    def update(self, r: FigureRequest, panels: list[Panel], vmax: float, header: str) -> None:  # type: ignore[override]
        for image, title, panel in zip(self.images, self.titles, panels, strict=True):
            image.set_data(panel.pixels)
            title.set_text(panel.title)
        labels = [label for panel in panels for label in panel.labels]
        for text, label in zip(self.labels, labels, strict=True):
            text.set_text(label.text)
            text.set_color(label.ink)
        self.scale.set_clim(0.0, vmax)
        self.header.set_text(self.suptitle(r, header))


def token_ticks(axis: Any, layout: TokenLayout, square: bool) -> None:
    """Mark where the prefix tokens end on a token x token map."""
    step = layout.grid[1] * max(1, layout.grid[0] // 4)
    ticks = list(range(layout.prefix_tokens, layout.num_tokens, step))
    axis.set_xticks(ticks)
    axis.set_yticks(ticks if square else [])
    axis.tick_params(labelsize=7)
    if layout.prefix_tokens:
        edge = layout.prefix_tokens - 0.5
        axis.axvline(edge, color="white", linewidth=0.6, linestyle="--")
        if square:
            axis.axhline(edge, color="white", linewidth=0.6, linestyle="--")


def ink(rgba: tuple[float, ...]) -> str:
    """Black or white text, whichever reads on this background."""
    luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
    return "black" if luminance > 0.55 else "white"
