"""Fast painters for a template's changing artists, straight into the Agg buffer.

A frozen template (``paper.Template``) restores its static frame and then draws only
what changes.  Drawing those artists through matplotlib costs most of a figure:
an image is colour-mapped and resampled in Python-heavy steps, every text is laid
out and rasterised glyph by glyph, and a colorbar's axis re-solves its ticks and
label position.  The painters here do the same work with numpy on the buffer:

* :class:`ImagePainter`: an ``imshow`` image, resampled to its on-screen pixels
  (nearest: an index gather; bilinear RGB: Pillow) and colour-mapped by the image's
  own colormap and norm;
* :class:`TextMemo`: a text over the static frame: its pixels depend only on its
  string, colour and place, so they are drawn once by matplotlib and pasted after;
* :class:`ColorbarTicks`: a colorbar's ticks, located and labelled by the colorbar's
  own locator and formatter; the marks drawn by matplotlib, each label's pixels
  rendered once per string and pasted at its tick (to the whole pixel); its common
  factor ("1e-6") and its title, beside the widest label, as matplotlib places them.

What a painter cannot do exactly enough it declines (``None``) and matplotlib draws
the artist as before.  ``tests/render/test_painters.py`` compares every kind's file
with matplotlib's own full draw under a stated tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["Step", "paint_steps"]

Step = Callable[[np.ndarray], None]
_PAD = 3  # pixels around a text's extent that antialiasing may touch
_MEMO_SIZE = 64  # texts kept per text artist (layer titles, headers)


def paint_steps(figure: Any, dynamic: list[Any]) -> list[Step]:
    """One step per dynamic artist, in drawing order: a painter where one applies,
    else matplotlib's ``draw_artist``.  Called once the layout is frozen."""
    from matplotlib.image import AxesImage
    from matplotlib.text import Text

    # where changing pixels are: a text's memo must not hold any of them
    images = [a.axes.bbox for a in dynamic if isinstance(a, AxesImage)]
    bars = [_tick_side(figure, a.axes.bbox) for a in dynamic if _colorbar_axis(a) is not None]
    busy = [_pixel_box(figure, box) for box in (*images, *bars)]
    steps: list[Step] = []
    for artist in dynamic:
        painter: Step | None = None
        if isinstance(artist, AxesImage):
            painter = ImagePainter.build(figure, artist)
        elif isinstance(artist, Text):
            painter = TextMemo.build(figure, artist, busy)
        elif _colorbar_axis(artist) is not None:
            painter = ColorbarTicks.build(figure, artist)
        steps.append(painter or _drawer(figure, artist))
    return steps


def _drawer(figure: Any, artist: Any) -> Step:
    def draw(buffer: np.ndarray) -> None:
        figure.draw_artist(artist)

    return draw


def _pixel_box(figure: Any, bbox: Any) -> tuple[int, int, int, int]:
    """A display bbox as buffer (row0, row1, col0, col1), rows counted from the top."""
    height = int(figure.bbox.height)
    col0, col1 = int(np.floor(bbox.x0)), int(np.ceil(bbox.x1))
    row0, row1 = height - int(np.ceil(bbox.y1)), height - int(np.floor(bbox.y0))
    return max(row0, 0), max(row1, 0), max(col0, 0), max(col1, 0)


def _tick_side(figure: Any, bbox: Any) -> Any:
    """A colorbar and the figure's width right of it, where its ticks are drawn (read
    without matplotlib's tight bbox, which would move the axis label)."""
    from matplotlib.transforms import Bbox

    return Bbox.from_extents(bbox.x0, bbox.y0 - 20, figure.bbox.x1, bbox.y1 + 20)


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def _centres(start: float, stop: float, count: int, pixels: np.ndarray) -> np.ndarray:
    """Which of ``count`` data cells between display ``start`` and ``stop`` each pixel's
    centre falls in (nearest-neighbour sampling, as Agg's image resampler does)."""
    index = np.floor((pixels + 0.5 - start) / (stop - start) * count).astype(np.intp)
    return np.clip(index, 0, count - 1)


class ImagePainter:
    """An axes image whose extent fills its axes, painted with numpy."""

    def __init__(self, figure: Any, image: Any) -> None:
        self.figure, self.image = figure, image
        height = figure.bbox.height
        (x0, y0), (x1, y1) = image.get_transform().transform(_corners(image))
        box = image.axes.bbox  # the image is clipped to its axes
        top, bottom = height - max(y0, y1), height - min(y0, y1)
        rows = _span(max(top, height - box.y1), min(bottom, height - box.y0))
        cols = _span(max(min(x0, x1), box.x0), min(max(x0, x1), box.x1))
        self.rows, self.cols = slice(*rows), slice(*cols)
        # display rows (from the top) of the extent's top and bottom edge: array row 0
        # sits at the top (origin "upper"), or at the bottom (origin "lower")
        self.x, self.y = (x0, x1), (top, bottom) if image.origin == "upper" else (bottom, top)
        self.smooth = image.get_interpolation() == "bilinear"
        self._memo: tuple[Any, np.ndarray] | None = None  # (the data, its pixels)

    @classmethod
    def build(cls, figure: Any, image: Any) -> ImagePainter | None:
        from matplotlib.colors import Normalize

        if image.get_alpha() is not None or image.get_interpolation() not in (
            "nearest",
            "bilinear",
        ):
            return None
        if type(image.norm) is not Normalize or image.get_clip_path() is not None:
            return None
        return cls(figure, image)

    def __call__(self, buffer: np.ndarray) -> None:
        data = self.image.get_array()
        if self._memo is not None and self._memo[0] is data:
            pixels = self._memo[1]  # the same picture again (the grid's left panel)
        else:  # the memo holds the data itself: an id could be reused once it is freed
            pixels = self._resample(data)
            self._memo = (data, pixels) if data.ndim == 3 else None
        buffer[self.rows, self.cols, :3] = pixels
        buffer[self.rows, self.cols, 3] = 255

    def _resample(self, data: Any) -> np.ndarray:
        rows = np.arange(self.rows.start, self.rows.stop)
        cols = np.arange(self.cols.start, self.cols.stop)
        if data.ndim == 3 and self.smooth:
            return self._smooth(np.asarray(data, dtype=np.uint8), rows, cols)
        row_index = _centres(self.y[0], self.y[1], data.shape[0], rows)
        col_index = _centres(self.x[0], self.x[1], data.shape[1], cols)
        if data.ndim == 2:  # colour the small map first, then gather its pixels
            data = self.image.cmap(self.image.norm(np.ma.asarray(data)), bytes=True)[..., :3]
        return np.asarray(data)[row_index[:, None], col_index[None, :], :3]

    def _smooth(self, data: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Bilinear resampling by Pillow, its source box aligned to the pixels' edges."""
        (x0, x1), (y0, y1) = self.x, self.y
        height, width = data.shape[:2]
        left, right = np.clip(((cols[0], cols[-1] + 1) - x0) / (x1 - x0) * width, 0, width)
        top, bottom = np.clip(((rows[0], rows[-1] + 1) - y0) / (y1 - y0) * height, 0, height)
        box = (float(left), float(top), float(right), float(bottom))
        picture = Image.fromarray(np.ascontiguousarray(data[..., :3]))
        size = (len(cols), len(rows))
        return np.asarray(picture.resize(size, Image.Resampling.BILINEAR, box=box))


def _corners(image: Any) -> np.ndarray:
    left, right, bottom, top = image.get_extent()
    return np.array([[left, bottom], [right, top]])


def _span(start: float, stop: float) -> tuple[int, int]:
    """The pixels whose centres lie in [start, stop)."""
    return int(np.ceil(start - 0.5)), int(np.ceil(stop - 0.5))


class TextMemo:
    """A text drawn over the static frame: the pixels it inks, once drawn by matplotlib,
    kept by what it says (a layer's title recurs for every image, a header for every
    figure) and pasted after; only inked pixels, so a neighbouring text is kept."""

    def __init__(self, figure: Any, text: Any, busy: list[tuple[int, int, int, int]]) -> None:
        self.figure, self.text, self.busy = figure, text, busy
        self._inked: dict[tuple[Any, ...], tuple[tuple[slice, slice], np.ndarray, np.ndarray]]
        self._inked = {}

    @classmethod
    def build(
        cls, figure: Any, text: Any, busy: list[tuple[int, int, int, int]]
    ) -> TextMemo | None:
        if any(_overlaps(_text_box(figure, text), other) for other in busy):
            return None  # over a changing picture: its pixels depend on what is under it
        return cls(figure, text, busy)

    def __call__(self, buffer: np.ndarray) -> None:
        text = self.text
        key = (text.get_text(), text.get_color(), text.get_position(), text.get_visible())
        kept = self._inked.get(key)
        if kept is not None:
            region, mask, pixels = kept
            buffer[region][mask] = pixels
            return
        row0, row1, col0, col1 = box = _text_box(self.figure, text)
        region = (slice(row0, row1), slice(col0, col1))
        before = buffer[region].copy()
        self.figure.draw_artist(text)
        if len(self._inked) < _MEMO_SIZE and not any(_overlaps(box, b) for b in self.busy):
            mask = (buffer[region] != before).any(axis=2)
            self._inked[key] = (region, mask, buffer[region][mask])


def _text_box(figure: Any, text: Any) -> tuple[int, int, int, int]:
    from matplotlib.transforms import Bbox

    extent = text.get_window_extent(renderer=figure.canvas.get_renderer())
    padded = Bbox.from_extents(
        extent.x0 - _PAD, extent.y0 - _PAD, extent.x1 + _PAD, extent.y1 + _PAD
    )
    return _pixel_box(figure, padded)


def _colorbar_axis(artist: Any) -> Any:
    from matplotlib.axis import YAxis

    if isinstance(artist, YAxis) and getattr(artist.axes, "_colorbar", None) is not None:
        return artist
    return None


@contextmanager
def _shown(text: Any) -> Iterator[None]:
    """A text of the colorbar's axis, visible only while it is painted (the axis keeps
    it hidden, so the static frame never holds it)."""
    text.set_visible(True)
    try:
        yield
    finally:
        text.set_visible(False)


@dataclass(frozen=True)
class _Sprite:
    """A tick label's inked pixels (dark on white), their (row, col) offset from the
    anchor's pixel, and how far right of the anchor its text box reaches."""

    pixels: np.ndarray
    dy: int
    dx: int
    reach: float


class ColorbarTicks:
    """A vertical colorbar's ticks, tick labels, offset text and axis label.

    The tick marks are one marker line drawn by matplotlib; each label string is
    rendered once by matplotlib on a scratch canvas and its dark pixels pasted at its
    tick; the axis label is placed beside the widest label, as matplotlib places it,
    and its pixels kept per place.  The axis itself stays in the static frame with
    none of these."""

    def __init__(self, figure: Any, axis: Any) -> None:
        from matplotlib.lines import Line2D

        self.figure, self.axis = figure, axis
        probe = axis.get_major_ticks()[0]
        mark = probe.tick2line
        self.marks = Line2D(
            [],
            [],
            linestyle="none",
            marker=mark.get_marker(),
            markersize=mark.get_markersize(),
            markeredgewidth=mark.get_markeredgewidth(),
            color=mark.get_color(),
            transform=axis.axes.get_yaxis_transform(which="tick2"),
        )
        self.marks.set_figure(figure)
        self.label_x = probe.label2.get_transform().transform(probe.label2.get_position())[0]
        self.label_style = {
            "fontproperties": probe.label2.get_fontproperties(),
            "color": probe.label2.get_color(),
            "ha": probe.label2.get_ha(),
            "va": probe.label2.get_va(),
        }
        self.title = axis.label  # "attention weight": beside the widest tick label
        self.title_y = self.title.get_position()[1]
        axis.set_label_coords(
            self.title.get_position()[0], self.title_y, self.title.get_transform()
        )
        self._title = TextMemo(figure, self.title, [])
        self.title_width = self.title.get_window_extent(figure.canvas.get_renderer()).width
        axis.set_tick_params(which="both", right=False, labelright=False)
        self.title.set_visible(False)
        axis.set_animated(False)  # what is left of it (the outline) is static
        self._sprites: dict[str, _Sprite] = {}

    @classmethod
    def build(cls, figure: Any, axis: Any) -> ColorbarTicks | None:
        ticks = axis.get_major_ticks()
        if not ticks or axis.get_scale() != "linear" or axis.get_ticks_position() != "right":
            return None
        if not ticks[0].label2.get_visible() or ticks[0].label1.get_visible():
            return None
        if axis.get_label_position() != "right":
            return None
        return cls(figure, axis)

    def __call__(self, buffer: np.ndarray) -> None:
        low, high = sorted(self.axis.get_view_interval())
        span = (high - low) * 1e-9
        locs = [loc for loc in self.axis.get_majorticklocs() if low - span <= loc <= high + span]
        formatter = self.axis.major.formatter
        labels = formatter.format_ticks(locs)
        self.marks.set_data([1.0] * len(locs), locs)
        self.figure.draw_artist(self.marks)
        height = buffer.shape[0]
        to_display = self.axis.axes.transData
        reach = self.axis.axes.bbox.x1
        for loc, label in zip(locs, labels, strict=True):
            y = to_display.transform((0.0, loc))[1]
            reach = max(reach, self._paste(buffer, label, self.label_x, height - y))
        offset = formatter.get_offset()
        if offset:  # a common factor (1e-5): above the bar, as matplotlib puts it
            text = self.axis.offsetText
            text.set_text(offset)
            pad = self.axis.OFFSETTEXTPAD * self.figure.dpi / 72
            text.set_position((text.get_position()[0], self.axis.axes.bbox.y1 + pad))
            with _shown(text):
                self.figure.draw_artist(text)
        gap = self.axis.labelpad * self.figure.dpi / 72
        room = self.figure.bbox.x1 - self.title_width - 1  # labels wider than the layout
        self.title.set_position((max(reach + 1, min(reach + gap, room)), self.title_y))
        with _shown(self.title):
            self._title(buffer)

    def _paste(self, buffer: np.ndarray, label: str, x: float, y: float) -> float:
        """Paste ``label`` at its anchor (x, y from the top); where its text box ends."""
        sprite = self._sprites.get(label)
        if sprite is None:
            sprite = self._sprites[label] = self._render(label, x)
        row, col = round(y) + sprite.dy, int(np.floor(x)) + sprite.dx
        rows, cols = sprite.pixels.shape[:2]
        if (
            row >= 0
            and col >= 0
            and row + rows <= buffer.shape[0]
            and col + cols <= buffer.shape[1]
        ):
            region = buffer[row : row + rows, col : col + cols, :3]
            np.minimum(region, sprite.pixels, out=region)
        return x + sprite.reach

    def _render(self, label: str, x: float) -> _Sprite:
        """``label`` drawn by matplotlib on white (the anchor's fractional x kept, its y
        on a pixel edge)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.transforms import IdentityTransform

        size = 40 + 12 * len(label)  # pixels, even: the anchor sits on a pixel edge
        inches = size / self.figure.dpi
        scratch = Figure(figsize=(inches, inches), dpi=self.figure.dpi, facecolor="white")
        canvas = FigureCanvasAgg(scratch)
        anchor_x, anchor_y = size / 4 + (x - np.floor(x)), size / 2
        text = scratch.text(
            anchor_x, anchor_y, label, transform=IdentityTransform(), **self.label_style
        )
        canvas.draw()
        reach = text.get_window_extent(canvas.get_renderer()).x1 - anchor_x
        rgb = np.asarray(canvas.buffer_rgba())[..., :3]
        inked = np.argwhere(rgb.min(axis=2) < 255)
        if not len(inked):
            return _Sprite(np.full((0, 0, 3), 255, np.uint8), 0, 0, reach)
        (top, left), (bottom, right) = inked.min(axis=0), inked.max(axis=0) + 1
        anchor_row = rgb.shape[0] - anchor_y
        return _Sprite(
            rgb[top:bottom, left:right].copy(),
            int(top - round(anchor_row)),
            int(left - np.floor(anchor_x)),
            float(reach),
        )
