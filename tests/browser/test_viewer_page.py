"""The explorer page without a browser: quantisation error, layer plans, what the
page holds and does not hold (no network addresses), records from saved maps."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from anycapture.layout import TokenLayout
from anycapture.viewer import MAX_ERROR, ViewerImage, build_page, record_from_maps
from anycapture.viewer.encode import ALPHABET, LEVELS, dequantise, plan_layer, quantise


def test_alphabet_is_script_safe() -> None:
    assert len(ALPHABET) == LEVELS + 1 == 90 and not set("<>&\"'") & set(ALPHABET)
    assert all(0x20 <= ord(c) < 0x7F for c in ALPHABET)
    assert MAX_ERROR == pytest.approx(1 / 178)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (3, 7), elements=st.floats(0, 1e3, width=32)))
def test_weights_come_back_within_the_stated_error(maps) -> None:
    text, scales = quantise(maps)
    assert len(text) == maps.size
    back = dequantise(text, scales, maps.shape[-1]).reshape(maps.shape)
    row_max = maps.max(axis=-1, keepdims=True).astype(np.float64)
    assert (np.abs(back - maps) <= MAX_ERROR * row_max * (1 + 1e-6)).all()
    assert np.array_equal(back.max(axis=-1), row_max[:, 0])  # the maximum is exact


def test_negative_weights_count_as_zero() -> None:
    text, scales = quantise(np.array([[-1.0, 0.5, 1.0]]))
    assert dequantise(text, scales, 3).tolist() == [[0.0, 44 / 89, 1.0]]  # 44.5 rounds to even


def test_layer_plans() -> None:
    layout = TokenLayout(1, (4, 4))
    hw = (64, 64)
    assert plan_layer("a", (2, 17, 17), layout, hw).kind == "self"
    patches_only = plan_layer("a", (2, 16, 16), layout, hw)  # before a class token joins
    assert patches_only.kind == "self" and patches_only.layout.prefix_tokens == 0
    cls = plan_layer("a", (2, 1, 17), layout, hw)
    assert cls.kind == "class" and "only cls queries" in cls.note
    assert plan_layer("a", (2, 10, 17), layout, hw).note == (
        "a: not drawn, 10 queries but 17 keys: not token self-attention"
    )
    window = plan_layer("w", (2, 49, 49), layout, (224, 448), (5, 8))
    assert window.kind == "window" and window.layout.grid == (7, 7)
    assert window.rect == (112.0, 112.0, 224.0, 224.0)  # row 1, column 1 of 2x4 windows
    assert plan_layer("w", (2, 49, 49), layout, hw, (1, 7)).kind == "none"  # 7 windows: where?
    assert plan_layer("w", (2, 17, 17), layout, hw, (0, 1)).kind == "self"  # one window: all


def record(layers: dict[str, np.ndarray]) -> ViewerImage:
    return ViewerImage("a <b> & c", np.zeros((32, 32, 3), np.uint8), layers, TokenLayout(1, (2, 2)))


def test_page_is_self_contained() -> None:
    page = build_page([record({"x</script>": np.full((1, 5, 5), 0.2)})], title="t<")
    assert page.count("</script>") == 3  # the index, one image, the script
    code = re.sub(r'(?s)<script type="application/octet-stream".*?</script>', "", page)
    addresses = set(re.findall(r"[a-z-]+://[^\s\"')]*", code))
    assert addresses == {"http://www.w3.org/2000/svg"}, addresses  # an SVG namespace, not a load
    assert not re.search(r"\b(?:src|href)=", code)  # no element points anywhere
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page  # the browser refuses any load as well
    assert "<title>t&lt;</title>" in page


def test_bad_records_are_refused() -> None:
    with pytest.raises(ValueError, match="layer x has NaN"):
        build_page([record({"x": np.full((1, 5, 5), np.nan)})])
    with pytest.raises(ValueError, match=r"must be \(heads, Q, N\)"):
        build_page([record({"x": np.zeros((5, 5))})])
    with pytest.raises(ValueError, match="at least one image"):
        build_page([])
    with pytest.raises(ValueError, match="upsample 'lanczos'"):
        build_page([record({"x": np.zeros((1, 5, 5))})], upsample="lanczos")


def test_record_from_saved_maps(tmp_path) -> None:
    from PIL import Image

    from anycapture.run.maps_file import ImageMaps, load_maps

    layout = TokenLayout(1, (2, 2))
    maps = ImageMaps(
        [("l0", np.full((2, 5, 5), 0.2, np.float32))],
        Image.new("RGB", (32, 32)),
        layout,
        {"l0": (0, 1)},
        source="/data/cat.jpg",
    )
    path = tmp_path / "cat.npz"
    path.write_bytes(maps.to_npz({"name": "m"}, float16=True))
    made = record_from_maps(load_maps(path))
    assert made.name == "cat.jpg" and made.layout == layout and dict(made.windows) == {"l0": (0, 1)}
    assert made.pixels().shape == (32, 32, 3) and list(made.layers) == ["l0"]


def test_notebook_iframe_carries_the_maps_unescaped() -> None:
    """The maps' characters need no HTML escaping: inline in a notebook's iframe they
    take no more room than in the file."""
    import html

    maps = np.random.default_rng(0).random((4, 65, 65))
    view = np.zeros((32, 32, 3), np.uint8)
    page = build_page([ViewerImage("a", view, {"x": maps}, TokenLayout(1, (8, 8)))])
    blob = re.search(r'(?s)<script type="application/octet-stream"[^>]*>(.*?)</script>', page)
    codes = blob.group(1).split("\n", 1)[1]
    assert len(codes) == maps.size + 65 * 65  # the layer, then the rollout
    assert html.escape(codes) == codes


def test_building_a_page_needs_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from anycapture.viewer import build_page, ViewerImage\n"
        "from anycapture.layout import TokenLayout\n"
        "maps, view = {'x': np.full((1, 5, 5), 0.2)}, np.zeros((8, 8, 3), np.uint8)\n"
        "build_page([ViewerImage('a', view, maps, TokenLayout(1, (2, 2)))])\n"
        "print(sorted(m for m in ('torch', 'timm', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_script_runs_before_the_other_images_are_read() -> None:
    maps = {"x": np.full((1, 5, 5), 0.2)}
    page = build_page([record(maps), record(maps), record(maps)])
    order = re.findall(r'<script(?: type="[^"]+" id="([^"]+)")?>', page)
    assert order == ["ac-index", "ac-image-0", "", "ac-image-1", "ac-image-2"]
