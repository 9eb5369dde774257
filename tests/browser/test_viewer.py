"""The explorer in real Chromium: the overlay's pixels against the maps, keyboard
stepping, windowed and class-attention layers, lazy loading, no requests, the budget.

Tolerance of the pixel checks: a weight comes back within ``MAX_ERROR`` (1/178) of
its row's maximum, so a head's colour index (255 steps over 0..max) is within
``255 * 2 * error / max`` steps (the maximum moves too) plus 1 for rounding and 1 for
the two colours viridis repeats.  For one head that is 4 steps; for the head mean the
error is the mean of the heads' bounds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anycapture.layout import TokenLayout
from anycapture.render.colour import colormap_lut, upsample
from anycapture.viewer import MAX_ERROR, ViewerImage, record_from_maps, write_viewer

from .conftest import lut_index, open_page

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "assets" / "readme" / "viewer.png"
LUT = colormap_lut("viridis")
BUDGET = 3_000_000  # bytes: vit_small, one image, 12 layers x 6 heads


def expected_index(
    row: np.ndarray, layout: TokenLayout, view_hw: tuple[int, int], method: str = "bilinear"
) -> np.ndarray:
    """What the grid figure paints: the row's grid upsampled (Pillow bilinear) onto
    the view, as colormap indices over 0..max(row)."""
    _, grid = layout.split(row)
    vmax = float(row.max())
    heat = upsample(grid, view_hw, method)
    return np.rint(np.clip(heat / vmax, 0, 1) * 255).astype(int)


def steps_allowed(maps: np.ndarray, query: int, head: int | None) -> int:
    rows = maps[:, query] if head is None else maps[head : head + 1, query]
    error = MAX_ERROR * float(rows.max(axis=-1).mean())
    vmax = float(rows.mean(axis=0).max())
    return int(255 * 2 * error / vmax) + 2


def demo_record(tmp_path: Path) -> tuple[ViewerImage, object]:
    """The demo model's maps of one scene, through a --save-maps file and back."""
    pytest.importorskip("torch")
    import anycapture
    from anycapture.demo import make_scene
    from anycapture.run.maps_file import ImageMaps, load_maps

    scene, _ = make_scene(np.random.default_rng(3))
    result = anycapture.attention_maps("demo", Image.fromarray(scene))
    saved = ImageMaps(list(result.layers.items()), result.view, result.layout, source="scene.png")
    path = tmp_path / "scene.npz"
    path.write_bytes(saved.to_npz({"name": "demo"}, float16=False))
    maps = load_maps(path)
    return record_from_maps(maps), maps


@pytest.mark.slow  # the demo model's forward pass (torch import)
def test_clicked_patches_match_the_saved_maps(browser, tmp_path) -> None:
    record, maps = demo_record(tmp_path)
    write_viewer(tmp_path / "viewer.html", [record], title="demo")
    opened = open_page(browser, tmp_path / "viewer.html")
    layer_name, layer = maps.layers[-1]  # the page opens on the last layer, head mean
    layout, view_hw = maps.layout, (maps.view.height, maps.view.width)
    for cell in [(1, 2), (4, 4), (6, 1)]:
        opened.click_cell(cell, layout.grid)
        assert opened.text("#ac-query") == f"patch {cell} (pinned)"
        query = layout.token_of(*cell)
        row = layer[:, query].mean(axis=0)
        shown = lut_index(opened.heat(), LUT)
        want = expected_index(row, layout, view_hw)
        assert (shown >= 0).all()
        assert np.abs(shown - want).max() <= steps_allowed(layer, query, None), cell
        error = MAX_ERROR * float(layer[:, query].max(axis=-1).mean())
        assert abs(opened.value("#ac-max") - row.max()) <= error
    assert opened.text("#ac-what") == f"{layer_name} · head mean"
    assert opened.elsewhere() == [] and opened.problems == []
    if os.environ.get("ANYCAPTURE_UPDATE_SCREENSHOT"):
        opened.page.mouse.move(0, 0)
        opened.click_cell((4, 3), layout.grid)  # the cross
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        box = opened.page.locator("#ac-app").bounding_box()
        clip = {
            "x": 0,
            "y": 0,
            "width": box["x"] + box["width"],
            "height": box["y"] * 2 + box["height"],
        }
        opened.page.screenshot(path=str(SCREENSHOT), clip=clip)


def crafted(layers: int = 3, heads: int = 2, grid: tuple[int, int] = (4, 5)) -> ViewerImage:
    """Maps where patch (r, c) looks most at its mirror cell, with a weight that names
    the layer and head: 0.3 + 0.1 * layer + 0.02 * head."""
    rng = np.random.default_rng(0)
    layout = TokenLayout(1, grid)
    n = layout.num_tokens
    maps = {}
    for i in range(layers):
        m = rng.uniform(0.0, 0.01, (heads, n, n))
        for h in range(heads):
            for r in range(grid[0]):
                for c in range(grid[1]):
                    mirror = layout.token_of(grid[0] - 1 - r, grid[1] - 1 - c)
                    m[h, layout.token_of(r, c), mirror] = 0.3 + 0.1 * i + 0.02 * h
        maps[f"blocks.{i}"] = m.astype(np.float32)
    view = np.full((grid[0] * 16, grid[1] * 16, 3), 90, dtype=np.uint8)
    return ViewerImage("crafted", view, maps, layout)


def argmax_cell(opened, grid: tuple[int, int]) -> tuple[int, int]:
    """The cell whose centre pixel the overlay paints brightest."""
    index = lut_index(opened.heat(), LUT)
    height, width = index.shape
    centres = index[
        (np.arange(grid[0]) * height // grid[0] + height // grid[0] // 2)[:, None],
        (np.arange(grid[1]) * width // grid[1] + width // grid[1] // 2)[None, :],
    ]
    return tuple(int(v) for v in np.unravel_index(np.argmax(centres), grid))


def test_argmax_cells_and_keyboard_steps(browser, tmp_path) -> None:
    record = crafted()
    write_viewer(tmp_path / "viewer.html", [record])
    opened = open_page(browser, tmp_path / "viewer.html")
    rows, cols = record.layout.grid
    for cell in [(0, 0), (1, 3), (3, 2)]:
        opened.click_cell(cell, record.layout.grid)
        mirror = (rows - 1 - cell[0], cols - 1 - cell[1])
        assert argmax_cell(opened, record.layout.grid) == mirror
        assert opened.text("#ac-max").endswith(f"at {mirror}")
    press = opened.page.keyboard.press
    press("ArrowUp")  # head mean -> head 0
    assert opened.text("#ac-what") == "blocks.2 · head 0"
    assert opened.value("#ac-max") == pytest.approx(0.5, abs=1e-6)  # the maximum is exact
    press("ArrowUp")
    assert opened.value("#ac-max") == pytest.approx(0.52, abs=1e-6)
    press("ArrowLeft")
    press("ArrowLeft")
    assert opened.text("#ac-what") == "blocks.0 · head 1"
    assert opened.value("#ac-max") == pytest.approx(0.32, abs=1e-6)
    assert opened.page.input_value("#ac-layer-range") == "0"
    press("ArrowUp")  # past the last head: the head mean
    assert opened.text("#ac-what") == "blocks.0 · head mean"
    press("ArrowLeft")  # already the first layer
    assert opened.text("#ac-what") == "blocks.0 · head mean"
    key = (1, 1)  # the query is pinned: pointing reads a key's weight
    opened.page.mouse.move(*centre_of(opened, key, record.layout.grid))
    query = record.layout.token_of(3, 2)
    weight = record.layers["blocks.0"][:, query, record.layout.token_of(*key)].mean()
    assert opened.value("#ac-key") == pytest.approx(weight, abs=MAX_ERROR * 0.31)
    opened.page.fill("#ac-layer-range", "1")  # the sliders do what the keys do
    opened.page.fill("#ac-head-range", "1")
    assert opened.text("#ac-what") == "blocks.1 · head 1"
    assert opened.value("#ac-max") == pytest.approx(0.42, abs=1e-6)
    opened.page.check("#ac-rollout")
    assert opened.text("#ac-what").startswith("rollout over 3 layers")
    assert opened.elsewhere() == [] and opened.problems == []


def centre_of(opened, cell: tuple[int, int], grid: tuple[int, int]) -> tuple[float, float]:
    box = opened.page.locator("#ac-stage").bounding_box()
    return (
        box["x"] + (cell[1] + 0.5) * box["width"] / grid[1],
        box["y"] + (cell[0] + 0.5) * box["height"] / grid[0],
    )


def test_windows_class_attention_and_odd_layers(browser, tmp_path) -> None:
    rng = np.random.default_rng(1)
    layout = TokenLayout(1, (4, 4))
    layers = {
        "self": rng.random((2, 17, 17)),
        "win": rng.random((2, 4, 4)),  # window 3 of 4: the bottom-right quarter, 2x2 tokens
        "class": rng.random((2, 1, 17)),  # only the class token queries
        "pooled": rng.random((2, 10, 17)),  # 10 queries, 17 keys
    }
    record = ViewerImage("odd", np.zeros((64, 64, 3), np.uint8), layers, layout, {"win": (3, 4)})
    write_viewer(tmp_path / "viewer.html", [record])
    opened = open_page(browser, tmp_path / "viewer.html")
    press = opened.page.keyboard.press
    assert opened.text("#ac-what").startswith("pooled")
    assert "not drawn, 10 queries but 17 keys" in opened.text("#ac-note")
    assert (opened.heat()[..., 3] == 0).all()
    press("ArrowLeft")
    assert "class attention: only cls queries" in opened.text("#ac-note")
    assert (opened.heat()[..., 3] == 0).all()
    press("c")  # the class token's map is drawn
    assert opened.text("#ac-query") == "cls token"
    assert (opened.heat()[..., 3] == 255).all()
    want = layers["class"][:, 0].mean(axis=0)
    assert opened.value("#ac-max") == pytest.approx(want.max(), abs=MAX_ERROR * 1.0)
    press("ArrowLeft")
    assert "has no prefix token" in opened.text("#ac-note")
    press("c")  # the query, the image's centre, lies in the window's top-left token
    assert opened.text("#ac-query") == "window token (0, 0)"
    opened.click_cell((3, 3), (4, 4))  # in the window: drawn there only
    assert "window 3 of 4 (row 1, column 1 of 2x2)" in opened.text("#ac-note")
    alpha = opened.heat()[..., 3]
    assert (alpha[32:, 32:] == 255).all() and alpha.sum() == 255 * 32 * 32
    assert opened.text("#ac-query").startswith("window token (1, 1)")
    opened.click_cell((0, 0), (4, 4))
    assert "outside this layer's window: window 3 of 4" in opened.text("#ac-note")
    press("ArrowLeft")
    press("ArrowRight")  # back on the window layer: the query moves into the window
    assert opened.text("#ac-query") == "window token (1, 1) (pinned)"
    assert opened.elsewhere() == [] and opened.problems == []


def test_rollout_toggle(browser, tmp_path) -> None:
    from anycapture.analysis import rollout

    record = crafted(layers=2)
    write_viewer(tmp_path / "viewer.html", [record])
    opened = open_page(browser, tmp_path / "viewer.html")
    opened.page.keyboard.press("r")
    assert opened.text("#ac-what").startswith("rollout over 2 layers")
    assert opened.page.is_disabled("#ac-layer-range")
    opened.page.keyboard.press("c")
    rolled = rollout(list(record.layers.values()))
    assert opened.value("#ac-max") == pytest.approx(rolled[0].max(), rel=1e-6)
    assert opened.problems == []


def vit_small_record() -> ViewerImage:
    rng = np.random.default_rng(0)
    layers = {}
    for i in range(12):
        maps = rng.random((6, 197, 197), dtype=np.float32)
        layers[f"blocks.{i}.attn"] = maps / maps.sum(axis=-1, keepdims=True)
    cat = Image.open(REPO / "assets" / "cat.jpg").convert("RGB").resize((224, 224))
    return ViewerImage("cat.jpg", cat, layers, TokenLayout(1, (14, 14), patch_size=(16, 16)))


def test_vit_small_page_within_budget_offline_and_fast(browser, tmp_path) -> None:
    """Random (incompressible) maps: the worst case of the size budget."""
    size = write_viewer(tmp_path / "viewer.html", [vit_small_record()])
    assert size == (tmp_path / "viewer.html").stat().st_size < BUDGET
    opened = open_page(browser, tmp_path / "viewer.html")
    ready = opened.page.evaluate("window.anycapture.readyMs")  # from navigation start
    print(f"vit_small page: {size} bytes, interactive after {ready:.0f} ms")
    assert ready < 1000
    opened.page.keyboard.press("ArrowDown")
    assert opened.text("#ac-what") == "blocks.11.attn · head 5"
    assert opened.elsewhere() == [] and opened.problems == []


def test_images_load_when_opened(browser, tmp_path) -> None:
    first, second = crafted(), crafted(layers=2, grid=(2, 2))  # views 80x64, 32x32
    second = ViewerImage("second", second.view, second.layers, second.layout)
    write_viewer(tmp_path / "viewer.html", [first, second])
    opened = open_page(browser, tmp_path / "viewer.html")
    decoded = "() => window.anycapture.decoded()"
    assert opened.page.evaluate(decoded) == [0]
    opened.page.keyboard.press("]")
    assert opened.page.evaluate(decoded) == [0, 1]
    assert opened.text("#ac-what") == "blocks.1 · head mean"
    assert opened.text("#ac-query") == "patch (1, 1)"  # the query was off this smaller view
    opened.page.select_option("#ac-pick", "0")
    assert opened.text("#ac-what") == "blocks.1 · head mean"
    assert opened.problems == []


def test_an_image_asked_for_before_the_file_is_read_opens_once_it_is(browser, tmp_path) -> None:
    """The script runs after the first image; the others' elements come later."""
    write_viewer(tmp_path / "viewer.html", [crafted(), crafted(layers=2)])
    opened = open_page(browser, tmp_path / "viewer.html")
    page = opened.page
    page.evaluate("() => { window.held = document.getElementById('ac-image-1'); held.remove(); }")
    page.evaluate("() => window.anycapture.openImage(1)")  # as if not read yet
    assert opened.text("#ac-note") == "loading crafted…"
    assert page.evaluate("() => window.anycapture.decoded()") == [0]
    page.evaluate(
        "() => { document.body.append(window.held);"
        " document.dispatchEvent(new Event('DOMContentLoaded')); }"
    )
    assert page.evaluate("() => window.anycapture.decoded()") == [0, 1]
    assert page.input_value("#ac-pick") == "1" and opened.problems == []


def test_notebook_result_shows_the_explorer_inline(browser) -> None:
    """What Jupyter shows: the same page in a sandboxed iframe, working."""
    from anycapture.notebook import AttentionResult

    made = crafted()
    result = AttentionResult(
        dict(made.layers), made.layout, Image.fromarray(made.view), model="m", image="x.png"
    )
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.set_content(f"<!doctype html><body>{result._repr_html_()}</body>")
    frame = page.frame_locator("iframe")
    frame.locator("body[data-ready='1']").wait_for(timeout=10_000)
    assert frame.locator("h1").inner_text() == "m: x.png"
    assert frame.locator("#ac-what").inner_text() == "blocks.2 · head mean"
    frame.locator("#ac-stage").click(position={"x": 5, "y": 5})
    assert frame.locator("#ac-query").inner_text() == "patch (0, 0) (pinned)"
    assert problems == []


@pytest.mark.parametrize("method", ["nearest", "bilinear", "bicubic"])
def test_upsampling_matches_pillow(browser, tmp_path, method) -> None:
    """The overlay is resized as the figures resize it (Pillow), on a non-square grid
    whose patches are not a whole number of pixels."""
    layout = TokenLayout(1, (5, 7))
    rng = np.random.default_rng(2)
    maps = rng.random((1, 36, 36)).astype(np.float32)
    record = ViewerImage("r", np.zeros((53, 75, 3), np.uint8), {"l": maps}, layout)
    write_viewer(tmp_path / "viewer.html", [record], upsample=method)
    opened = open_page(browser, tmp_path / "viewer.html")
    opened.click_cell((2, 3), layout.grid)
    row = maps[0, layout.token_of(2, 3)]
    want = expected_index(row, layout, (53, 75), method)
    shown = lut_index(opened.heat(), LUT)
    assert np.abs(shown - want).max() <= steps_allowed(maps, layout.token_of(2, 3), 0)
    assert opened.problems == []


def test_prefix_cells_pick_the_token(browser, tmp_path) -> None:
    """Two prefix tokens (cls, dist): clicking a cell shows that token's map; in class
    attention where only cls queries, dist is refused with the reason."""
    layout = TokenLayout(2, (2, 2))
    rng = np.random.default_rng(3)
    layers = {"self": rng.random((1, 6, 6)), "class": rng.random((1, 1, 6))}
    record = ViewerImage("p", np.zeros((32, 32, 3), np.uint8), layers, layout)
    write_viewer(tmp_path / "viewer.html", [record])
    opened = open_page(browser, tmp_path / "viewer.html")
    opened.page.keyboard.press("ArrowLeft")  # the self-attention layer
    opened.page.click("#ac-prefix-cells [data-token='1']")
    assert opened.text("#ac-query") == "dist token"
    assert opened.value("#ac-max") == pytest.approx(layers["self"][0, 1].max(), rel=1e-6)
    opened.page.keyboard.press("ArrowRight")
    assert "dist does not query here" in opened.text("#ac-note")
    opened.page.click("#ac-prefix-cells [data-token='0']")
    assert opened.text("#ac-query") == "cls token"
    assert opened.value("#ac-max") == pytest.approx(layers["class"][0, 0].max(), rel=1e-6)
    assert opened.problems == []
