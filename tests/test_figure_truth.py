"""A figure is a function of its own inputs: the same request gives the same pixels
whether drawn alone or after other figures (a template reused), and every text on it
says what a fresh matplotlib draw of that request says.

The painters keep a template's static frame and paint only what the kind lists as
changing; a text that changes with the data but is not listed (``heads`` titles under
``--scale each`` once were) would show the first figure's words on every later one.
Two nets: ``paper.STATIC_REDRAWS`` counts frames redrawn because a static text
changed (the kinds must never need one), and each text's box is compared with a
whole matplotlib draw of the same template.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from figure_checks import CAT, KINDS, decode, matplotlib_draw
from PIL import Image

from anycapture.layout import TokenLayout
from anycapture.render import FigureRequest, render_figure
from anycapture.render import paper as paper_module


def random_request(rng: np.random.Generator, scale: str, name: str) -> FigureRequest:
    """Maps whose heads peak at very different heights (0.05 .. 0.95), so per-head
    maxima, colour bars and titles differ from one request to the next."""
    heads, layout = 3, TokenLayout(1, (6, 6))
    layers = []
    for index in range(3):
        logits = rng.normal(size=(heads, 37, 37)) * rng.uniform(0.1, 6.0, size=(heads, 1, 1))
        maps = np.exp(logits)
        layers.append((f"blocks.{index}.attn", (maps / maps.sum(-1, keepdims=True))))
    index = int(rng.integers(3))
    with Image.open(CAT) as cat:
        view = cat.convert("RGB").rotate(float(rng.uniform(0, 90))).resize((96, 96))
    return FigureRequest(
        maps=layers[index][1].astype(np.float32),
        layout=layout,
        view=view,
        layer=layers[index][0],
        layer_index=index,
        head=None if rng.random() < 0.3 else int(rng.integers(heads)),
        query=(int(rng.integers(6)), int(rng.integers(6))),
        title=f"model · {name}",
        all_layers=tuple((n, m.astype(np.float32)) for n, m in layers),
        scale=scale,
    )


def alone(kind: str, r: FigureRequest) -> bytes:
    paper_module._TEMPLATES.clear()
    return render_figure(kind, "paper", r)


@pytest.fixture(autouse=True)
def fresh_templates():
    paper_module._TEMPLATES.clear()
    yield
    paper_module._TEMPLATES.clear()


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["shared", "each"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0])
def test_a_figure_after_others_equals_the_figure_alone(kind, scale, seed):
    rng = np.random.default_rng(seed)
    sequence = [random_request(rng, scale, f"image{i}") for i in range(3)]
    redraws = paper_module.STATIC_REDRAWS[0]
    in_sequence = [render_figure(kind, "paper", r) for r in sequence]
    assert paper_module.STATIC_REDRAWS[0] == redraws, f"{kind} changes a text it calls static"
    for i, r in enumerate(sequence[1:], start=1):
        assert in_sequence[i] == alone(kind, r), (kind, scale, i)


def _text_boxes(template: paper_module.Template, texts: list) -> list[tuple[str, slice, slice]]:
    renderer = template.figure.canvas.get_renderer()
    height = int(template.figure.bbox.height)
    boxes = []
    for text in texts:
        box = text.get_window_extent(renderer)
        rows = slice(max(int(height - box.y1), 1), max(int(height - box.y0), 1))
        cols = slice(max(int(box.x0), 1), max(int(box.x1), 1))
        boxes.append((text.get_text(), rows, cols))
    return boxes


def _misinked(ours: np.ndarray, reference: np.ndarray, rows: slice, cols: slice) -> float:
    """The share of a text's box inked differently (by more than half the range), at
    the best of the nine whole-pixel shifts: tick labels are pasted to the whole pixel
    where Agg places glyphs to 1/64 pixel, which moves antialiased edges by less; one
    digit changed ("0.2" for "0.4") misinks about 10% of its box."""
    expected = reference[rows, cols]
    best = 1.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = ours[rows.start + dy : rows.stop + dy, cols.start + dx : cols.stop + dx]
            if shifted.shape == expected.shape:
                share = float((np.abs(shifted - expected).max(axis=2) > 128).mean())
                best = min(best, share)
    return best


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_every_text_reads_as_a_fresh_matplotlib_draw(kind):
    """Each text's box on the painted figure against matplotlib's whole draw of the same
    template, for the third figure of a random sequence under both scales: a stale
    title differs by whole glyphs; pasted glyphs only in antialiased edges."""
    rng = np.random.default_rng(7)
    for scale in ("shared", "each"):
        sequence = [random_request(rng, scale, f"image{i}") for i in range(3)]
        for r in sequence:
            ours = decode(render_figure(kind, "paper", r))
        (template,) = [t for t in paper_module._TEMPLATES.values() if t.figure is not None][-1:]
        texts: list = []
        reference = matplotlib_draw(template, texts)
        assert texts, kind
        for said, rows, cols in _text_boxes(template, texts):
            misinked = _misinked(ours, reference, rows, cols)
            assert misinked < 0.02, (kind, scale, said, misinked)
        paper_module._TEMPLATES.clear()


def test_heads_titles_say_each_figures_own_maxima():
    """The bug report's case: under --scale each, the second sheet's panel titles give
    its own maxima, not the first sheet's."""
    rng = np.random.default_rng(3)
    first, second = (random_request(rng, "each", f"scene{i}") for i in range(2))
    second = replace(second, maps=second.maps * 0 + np.eye(37, dtype=np.float32)[None])
    render_figure("heads", "paper", first)
    render_figure("heads", "paper", second)
    (template,) = paper_module._TEMPLATES.values()
    titles = [t.get_text() for t in template.titles]
    assert titles[0] == "head 0 (max 1)", titles
    assert all(t in template.dynamic() for t in template.titles)


@pytest.mark.parametrize("kind", ["heads", "cls"])
def test_a_sheet_of_too_many_heads_is_refused_in_one_line(kind):
    """4096 heads in a maps file drew a heads sheet for 400 s: past 64 heads the sheet
    is not drawn, and the note names the figure to use."""
    from anycapture.render.registry import NotApplicable

    r = random_request(np.random.default_rng(0), "shared", "many")
    many = replace(r, maps=np.repeat(r.maps, 22, axis=0))  # 66 heads
    for style in ("paper", "bare"):
        with pytest.raises(NotApplicable, match=r"66 heads are too many .* --figures head"):
            render_figure(kind, style, many)
