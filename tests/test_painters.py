"""Paper figures drawn by the fast painters (``render/painters.py``) look as matplotlib
draws the same figure.

The reference is the very same template (same frozen layout) drawn whole by
matplotlib: every changing artist drawn by Agg, the colorbar's ticks by its own axis.
Stated tolerance, per figure: at most 1.5% of the pixels differ by more than 8 levels
(of 255) in any channel, and the mean absolute difference is under 1 level.  What
differs: bilinear photos (Pillow's resampler against Agg's: a level or two on a
photo, more on per-pixel noise), and the
tick labels, pasted to the whole pixel where Agg places glyphs to 1/64 pixel.  The
colour-mapped attention maps (nearest) are pixel for pixel the same.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from figure_checks import CAT, KINDS, decode, matplotlib_draw
from PIL import Image

from anycapture.layout import TokenLayout
from anycapture.render import FigureRequest, render_figure
from anycapture.render import paper as paper_module


def request(seed: int, head: int | None = 0, sharp: float = 1.0) -> FigureRequest:
    rng = np.random.default_rng(seed)
    layers = []
    for index in range(3):
        maps = rng.random((4, 65, 65)).astype(np.float32) ** (1 + sharp * rng.random())
        layers.append((f"blocks.{index}.attn", maps / maps.sum(-1, keepdims=True)))
    with Image.open(CAT) as cat:  # a photo: bilinear resamplers differ most on noise
        view = cat.convert("RGB").rotate(seed * 25).resize((128, 128))
    return FigureRequest(
        maps=layers[seed % 3][1],
        layout=TokenLayout(1, (8, 8)),
        view=view,
        layer=layers[seed % 3][0],
        layer_index=seed % 3,
        head=head,
        query=(seed % 8, 3),
        title=f"model · image{seed}",
        all_layers=tuple(layers),
    )


def only_template() -> paper_module.Template:
    (template,) = paper_module._TEMPLATES.values()
    return template


@pytest.fixture(autouse=True)
def fresh_templates():
    paper_module._TEMPLATES.clear()
    yield
    paper_module._TEMPLATES.clear()


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_painted_figures_match_matplotlib_within_tolerance(kind):
    first = request(0)
    render_figure(kind, "paper", first)  # solves the layout; later figures are painted
    for seed, head, sharp in ((1, 1, 4.0), (2, None, 8.0), (3, 3, 0.5)):
        r = request(seed, head, sharp)
        ours = decode(render_figure(kind, "paper", r))
        reference = matplotlib_draw(only_template())
        assert ours.shape == reference.shape
        difference = np.abs(ours - reference).max(axis=2)
        assert np.mean(difference > 8) <= 0.015, (kind, seed, np.mean(difference > 8))
        assert np.abs(ours - reference).mean() < 1.0, (kind, seed)
        paper_module._TEMPLATES.clear()  # the reference draw changed the template
        render_figure(kind, "paper", first)


@pytest.mark.slow
def test_attention_maps_are_painted_pixel_for_pixel():
    """The head map's on-screen pixels equal Agg's nearest-neighbour resampling exactly
    (catches a flipped or shifted map, which the tolerance above would let through
    only for a tiny share of pixels)."""
    render_figure("head", "paper", request(0))
    ours = decode(render_figure("head", "paper", request(4, 2, 6.0)))
    template = only_template()
    reference = matplotlib_draw(template)
    box = template.image.axes.bbox
    height = reference.shape[0]
    rows = slice(int(height - box.y1) + 2, int(height - box.y0) - 2)
    cols = slice(int(box.x0) + 2, int(box.x1) - 2)
    assert np.array_equal(ours[rows, cols], reference[rows, cols])


@pytest.mark.parametrize("kind", ("head", "heads", "grid", "cls"))
def test_files_do_not_depend_on_which_figure_came_first(kind):
    """The layout is solved with stand-in content, so a figure's bytes are the same
    whichever figure a process (a --jobs worker, a shard) drew first."""
    target = request(5, 1, 3.0)
    outputs = []
    for first in (request(6, 0, 0.2), request(7, None, 9.0)):
        paper_module._TEMPLATES.clear()
        render_figure(kind, "paper", first)
        outputs.append(render_figure(kind, "paper", target))
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize(
    ("kind", "top"),
    [("head", 1e-6), ("head", 2.3e7), ("heads", 1e-6), ("grid", 4e-6), ("head", 0.00175),
     ("heads", 0.00175), ("grid", 0.0012), ("head", 0.8)],
)  # fmt: skip
def test_colorbars_read_as_matplotlib_draws_them(kind, top):
    """The common factor ("1e-6" above the bar) is drawn, and the bar's title stands
    beside the widest tick label as matplotlib puts it, never over the labels
    ("0.00175": 7 characters); both compared in their own boxes."""
    r = request(8, head=None)
    scaled = FigureRequest(**{**r.__dict__, "maps": r.maps / r.head_map().max() * top})
    render_figure(kind, "paper", r)
    ours = decode(render_figure(kind, "paper", scaled))
    template = only_template()
    reference = matplotlib_draw(template)
    (bar,) = [a for a in template.figure.axes if getattr(a, "_colorbar", None) is not None]
    renderer = template.figure.canvas.get_renderer()
    texts = [bar.yaxis.label, *([bar.yaxis.offsetText] if top < 1e-4 or top > 1e4 else [])]
    height = reference.shape[0]
    for text in texts:
        assert text.get_visible() and text.get_text()
        box = text.get_window_extent(renderer)
        rows = slice(int(height - box.y1) - 1, int(height - box.y0) + 2)
        cols = slice(int(box.x0) - 1, int(box.x1) + 2)
        assert (ours[rows, cols] < 128).any(), (kind, top, text.get_text())  # it is there
        assert np.abs(ours[rows, cols] - reference[rows, cols]).mean() < 2.0, (kind, top)


def test_the_grid_photo_is_resampled_once_per_image(monkeypatch):
    """Layers of one image share its photo: painted from the memo after the first, and a
    new image's photo is never taken for the previous one's."""
    from dataclasses import replace

    from anycapture.render.painters import ImagePainter

    calls = []
    resample = ImagePainter._resample
    monkeypatch.setattr(
        ImagePainter,
        "_resample",
        lambda self, data: calls.append(data.ndim) or resample(self, data),
    )
    first = request(0)
    render_figure("grid", "paper", first)
    calls.clear()
    for layer in (1, 2):  # the same image (view object), other layers
        render_figure(
            "grid", "paper", replace(first, layer_index=layer, maps=first.all_layers[layer][1])
        )
    assert calls.count(3) == 2  # the overlay each time, the photo not again
    other = request(9)  # another image: its own photo, as matplotlib draws it
    ours = decode(render_figure("grid", "paper", other))
    reference = matplotlib_draw(only_template())
    assert np.mean(np.abs(ours - reference).max(axis=2) > 8) <= 0.015


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["head", "heads", "grid", "cls", "layers"])
@pytest.mark.parametrize("top", [0.8, 0.00175, 1.4e-4])
def test_the_colorbar_title_stays_inside_the_figure(kind, top):
    """Tick labels up to 8 characters ("0.000175") leave the bar's title whole."""
    r = request(8, head=None)
    factor = top / r.head_map().max()
    scaled = FigureRequest(
        **{**r.__dict__, "maps": r.maps * factor,
           "all_layers": tuple((name, maps * factor) for name, maps in r.all_layers)}
    )  # fmt: skip
    render_figure(kind, "paper", r)
    ours = decode(render_figure(kind, "paper", scaled))
    (bar,) = [a for a in only_template().figure.axes if getattr(a, "_colorbar", None)]
    title = bar.yaxis.label
    title.set_visible(True)
    box = title.get_window_extent(only_template().figure.canvas.get_renderer())
    assert box.x1 <= ours.shape[1] - 1, (kind, top, box.x1)
    assert (ours[:, -1] == 255).all()  # nothing inked in the last column


@pytest.mark.parametrize("kind", ["head", "heads", "grid", "cls"])
def test_a_long_image_name_is_shortened_to_the_figure_width(kind):
    name = "vit_tiny_patch16_224 · " + "a_much_longer_name_" * 5 + "0123456789.jpg"
    r = FigureRequest(**{**request(3).__dict__, "title": name})
    render_figure(kind, "paper", request(2))
    ours = decode(render_figure(kind, "paper", r))
    header = only_template().header
    assert ("…" in header.get_text()) is (kind != "cls")  # cls is 1440 px wide: it fits
    box = header.get_window_extent(only_template().figure.canvas.get_renderer())
    assert 0 <= box.x0 and box.x1 <= ours.shape[1], (kind, box)
