"""The notebook API: maps with their layout in one call, figures as matplotlib objects."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

REPO = Path(__file__).resolve().parents[2]
CAT = REPO / "assets" / "cat.jpg"


def test_import_stays_light() -> None:
    import subprocess

    code = "import anycapture, sys; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_attention_maps_and_figures() -> None:
    import anycapture
    from tests.models.known import GRID, TARGET, build

    result = anycapture.attention_maps(build(), CAT)
    assert list(result.layers) == ["blocks.0", "blocks.1"]
    assert result.layout.grid == GRID and result.layout.prefix_tokens == 1
    assert result[-1].shape == (2, 16, 16)
    assert result.view.size == (GRID[1] * 16, GRID[0] * 16)
    token = 1 + TARGET[0] * GRID[1] + TARGET[1]
    assert np.all(result["blocks.1"][:, :, token] == 1.0)
    from matplotlib.figure import Figure

    for kind in ("head", "heads", "grid", "cls", "rollout", "layers"):
        fig = anycapture.figure(kind, result, head=None if kind == "layers" else 0)
        assert isinstance(fig, Figure) and fig.axes
    with pytest.raises(ValueError, match="'pie' is unknown; figure\\(\\) draws head, heads"):
        anycapture.figure("pie", result)
    with pytest.raises(ValueError, match="draws head, heads") as e:
        anycapture.figure("pie", result)
    assert "explain" not in str(e.value)  # it needs the model: not drawn from a result
    with pytest.raises(ValueError, match=r"call anycapture.explain.explain\(model"):
        anycapture.figure("explain", result)


def test_figure_options_are_checked_as_the_cli_checks_them() -> None:
    """The notebook builds the same FigureOptions as the CLI: bad values never draw."""
    import anycapture
    from tests.models.known import build

    result = anycapture.attention_maps(build(), CAT)
    for bad, needle in [
        ({"alpha": 5}, "alpha=5 must be between 0 and 1"),
        ({"upsample": "lanczos"}, "choose nearest, bilinear or bicubic"),
        ({"head": 2}, "head=2 is out of range: the layers have 2 heads"),
        ({"query": (3, 0)}, "outside the 3x5"),
        ({"token": 1}, "token=1 is out of range"),
        ({"colour": "red"}, "unknown figure option colour"),
    ]:
        with pytest.raises(anycapture.UsageError, match=None) as raised:
            anycapture.figure("grid", result, **bad)
        assert needle in str(raised.value), (bad, raised.value)
    with pytest.raises(anycapture.UsageError, match="layer=7"):
        anycapture.figure("head", result, layer=7)
    fig = anycapture.figure("grid", result, upsample="nearest", fusion="max", alpha=0.3)
    assert fig.axes


def test_attention_maps_from_a_name() -> None:
    import anycapture

    result = anycapture.attention_maps("vit_tiny", CAT, pretrained=False)
    assert result.model == "vit_tiny" and len(result.layers) == 12
    assert result.layout.grid == (14, 14)


def test_result_shows_as_the_explorer_and_prints_short(tmp_path) -> None:
    import html

    import anycapture
    from tests.models.known import build

    result = anycapture.attention_maps(build(), CAT)
    text = repr(result)
    assert text == (
        "<AttentionResult KnownModel on cat.jpg: 2 layers of (2, 16, 16), "
        "tokens 1 prefix + 3x5 patches, view 80x48>"
    )
    inline = result._repr_html_()
    assert inline.startswith('<iframe srcdoc="') and 'sandbox="allow-scripts"' in inline
    page = html.unescape(inline.split('srcdoc="')[1].split('" style=')[0])
    assert page.startswith("<!doctype html>") and '"name":"blocks.1"' in page
    written = result.viewer(tmp_path / "explorer.html")
    assert written.read_text() == page  # the same page, from the same code


def test_attention_maps_from_threads_each_get_their_own_forward() -> None:
    """4 threads on one model and 2 on another of the same class: each result equals
    the one a lone call gives (results held other threads' layers, blocks.0.attn#1)."""
    from concurrent.futures import ThreadPoolExecutor

    from anycapture import attention_maps
    from anycapture.demo import build_demo

    scenes = sorted((Path(__file__).resolve().parents[2] / "assets" / "demo").glob("scene*.png"))
    models = [build_demo(), build_demo()]
    jobs = [(models[i % 2 if i >= 4 else 0], scenes[i % len(scenes)]) for i in range(6)]
    alone = [attention_maps(model, scene).layers for model, scene in jobs]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda job: attention_maps(*job).layers, jobs))
    for expected, got in zip(alone, together, strict=True):
        assert list(got) == list(expected)  # the same layer names, no "#1"
        for name in expected:
            assert np.array_equal(got[name], expected[name])


def test_notebook_errors_speak_parameters_not_flags() -> None:
    """figure(alpha=5) said "--alpha 5 must be..."; layer=99 gave no valid range."""
    from anycapture import attention_maps, figure
    from anycapture.demo import build_demo
    from anycapture.errors import UsageError

    scene = Path(__file__).resolve().parents[2] / "assets" / "demo" / "scene0.png"
    result = attention_maps(build_demo(), scene)
    with pytest.raises(UsageError, match=r"^alpha=5 must") as caught:
        figure("grid", result, alpha=5)
    assert "--" not in str(caught.value)
    with pytest.raises(UsageError, match=r"^head=9 .*4 heads") as caught:
        figure("head", result, head=9)
    assert "--" not in str(caught.value)
    with pytest.raises(UsageError, match=r"layer=99 .* index in 0\.\.3 \(or -4\.\.-1"):
        figure("head", result, layer=99)


def test_attention_maps_errors_speak_parameters_and_figure_takes_cli_spellings() -> None:
    """attention_maps(img_size=(2000, 2000)) said "--img-size"; figure(query=(40, 40))
    said "--query"; head="mean" was refused though the message offered it; a missing
    image was "truncated or corrupt"."""
    from anycapture import attention_maps, figure
    from anycapture.demo import build_demo
    from anycapture.errors import UsageError

    scene = Path(__file__).resolve().parents[2] / "assets" / "demo" / "scene0.png"
    for kwargs, needle in [
        ({"img_size": (2000, 2000)}, r"^img_size=2000,2000 is over 1024"),
        ({"mean": (float("nan"), 0.0, 0.0)}, r"^mean=nan,0.0,0.0 must be finite"),
    ]:
        with pytest.raises(UsageError, match=needle) as caught:
            attention_maps(build_demo(), scene, **kwargs)
        assert "--" not in str(caught.value)
    with pytest.raises(UsageError, match="no such image file"):
        attention_maps(build_demo(), scene.with_name("missing.png"))
    result = attention_maps(build_demo(), scene)
    with pytest.raises(UsageError) as caught:
        figure("grid", result, query=(40, 40))
    assert "--" not in str(caught.value) and "query" in str(caught.value)
    assert figure("grid", result, head="mean", query="3,3").axes
