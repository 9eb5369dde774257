"""The render run's extension points and pieces, through the CLI: a new figure kind
is one module-level record and one registration; maps from two models in one
``--from-maps`` run; the manifest as typed records."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from anycapture.render.colour import encode_png
from anycapture.render.kinds import KINDS
from anycapture.render.registry import Drawn, FigureKind, LayerView, NotApplicable, Scope, Uses
from anycapture.render.request import FigureRequest

from .conftest import CAT, KNOWN, read_manifest

pytestmark = pytest.mark.slow


# -- a throwaway kind: per layer, with numbers for its manifest entry -------------------
def peak_file_name(r: FigureRequest) -> str:
    return f"peak_L{r.layer_index:02d}_{r.head_tag}.png"


def peak_skip(view: LayerView) -> str:
    return f"{view.layer}: peak skips layer 0 on purpose" if view.layer.endswith("0") else ""


def peak_draw(r: FigureRequest) -> Drawn:
    matrix = r.head_map()
    pixels = (matrix / max(float(matrix.max()), 1e-12) * 255).astype(np.uint8)
    return Drawn(encode_png(pixels), {"peak": float(matrix.max()), "argmax": int(matrix.argmax())})


PEAK = FigureKind(
    name="peak",
    scope=Scope.LAYER,
    uses=frozenset({Uses.HEAD}),
    file_name=peak_file_name,
    bare=peak_draw,
    paper=peak_draw,
    image_wide=False,
    skip=peak_skip,
)


# -- a throwaway aggregate kind: one figure per run from every image ------------------
def count_collect(state: list[str] | None, r: FigureRequest) -> list[str]:
    return [*(state or []), r.title]


def count_file_name(state: list[str]) -> str:
    return f"count_{len(state)}.png"


def count_draw(state: list[str]) -> Drawn:
    return Drawn(encode_png(np.zeros((4, 4 * len(state), 3), np.uint8)), {"images": len(state)})


COUNT = FigureKind(
    name="count",
    scope=Scope.RUN,
    uses=frozenset(),
    file_name=count_file_name,
    bare=count_draw,
    paper=count_draw,
    collect=count_collect,
)


def never_draw(r: FigureRequest) -> bytes:
    raise NotApplicable("never applies here")


NEVER = FigureKind(
    name="never",
    scope=Scope.IMAGE,
    uses=frozenset(),
    file_name=lambda r: "never.png",
    bare=never_draw,
    paper=never_draw,
)


@pytest.fixture
def throwaway_kinds() -> Iterator[None]:
    for kind in (PEAK, COUNT, NEVER):
        KINDS.register(kind, "a kind registered by a test")
    yield
    for kind in (PEAK, COUNT, NEVER):
        KINDS.unregister(kind.name)


@pytest.mark.parametrize("jobs", ["0", "2"])
def test_a_new_kind_is_one_record_and_one_registration(
    cli, tmp_path: Path, throwaway_kinds: None, jobs: str
) -> None:
    out = tmp_path / "out"
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(CAT, tmp_path / folder / "cat.jpg")
    images = [str(tmp_path / "a" / "cat.jpg"), str(tmp_path / "b" / "cat.jpg")]
    result = cli(
        "render", "-m", f"{KNOWN}:build", "-i", images[0], "-i", images[1], "-o", str(out),
        "--figures", "peak,count,never,head", "--layer", "all", "--head", "1", "--html",
        "--jobs", jobs, "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    peaks = [f for f in manifest["figures"] if f["figure"] == "peak"]
    assert [f["path"] for f in peaks] == ["cat/peak_L01_H1.png", "cat-2/peak_L01_H1.png"]
    assert all(f["head"] == 1 and f["layer_name"] == "blocks.1" for f in peaks)
    assert (peaks[0]["peak"], peaks[0]["argmax"]) == (1.0, 1 + 2 * 5 + 1)  # the known TARGET
    (count,) = [f for f in manifest["figures"] if f["figure"] == "count"]
    assert count["path"] == "count_2.png" and count["image"] is None
    assert count["images"] == 2
    assert (out / "count_2.png").is_file()
    assert "values" not in next(f for f in manifest["figures"] if f["figure"] == "head")
    assert "blocks.0: peak skips layer 0 on purpose" in manifest["notes"]
    assert "never: never applies here" in manifest["notes"]
    page = (out / "index.html").read_text()
    assert "all images" in page and "count_2.png" in page
    assert "peak" in KINDS.help() and "peak" not in KINDS.names()[:6]


def test_unknown_kind_lists_registered_ones(cli, tmp_path: Path, throwaway_kinds: None) -> None:
    result = cli("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "--figures", "pie")
    assert result.exit_code == 2
    assert "unknown kind pie" in result.stderr and "peak, count, never" in result.stderr


def _save_maps(cli: Any, model: str, out: Path) -> Path:
    result = cli(
        "render", "-m", model, "-i", str(CAT), "-o", str(out), "--save-maps", "--figures",
        "head", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return out / "cat" / "maps.npz"


def test_from_maps_of_two_models_in_one_run(cli, tmp_path: Path) -> None:
    known = _save_maps(cli, f"{KNOWN}:build", tmp_path / "known")  # 2 heads, 3x5 grid
    vit = _save_maps(cli, f"{KNOWN}:tiny_vit", tmp_path / "vit")  # 3 heads, 2x3 grid
    out = tmp_path / "both"
    result = cli(
        "render", "--from-maps", str(known), "--from-maps", str(vit), "-o", str(out),
        "--layer", "all", "--figures", "head,grid,cls,rollout", "--style", "bare", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    figures = read_manifest(out)["figures"]
    by_image: dict[str, list[str]] = {}
    for figure in figures:
        by_image.setdefault(figure["path"].split("/")[0], []).append(figure["layer_name"])
    assert by_image == {
        "cat": ["blocks.0", "blocks.1", "blocks.0", "blocks.1", "blocks.0", "blocks.1", None],
        "cat-2": [
            *["blocks.0.attn", "blocks.1.attn"] * 3,
            None,
        ],
    }
    grids = {f["path"]: f["query"] for f in figures if f["figure"] == "grid"}
    assert grids["cat/grid_L00_H0_q1-2.png"] == [1, 2]  # each image's own centre patch
    assert grids["cat-2/grid_L00_H0_q1-1.png"] == [1, 1]
    # a head that only the second model has: that image is refused, naming the range
    result = cli(
        "render", "--from-maps", str(vit), "--from-maps", str(known), "-o",
        str(tmp_path / "bad"), "--head", "2", "--figures", "head",
    )  # fmt: skip
    assert result.exit_code == 2 and "--head 2 is out of range" in result.stderr


def test_manifest_records_round_trip(tmp_path: Path) -> None:
    from anycapture.run.manifest import FigureEntry, Manifest, MapsEntry

    manifest = Manifest(
        model={"name": "m"},
        figures=[FigureEntry("a.png", "grid", 1, "b.1", 0, [1, 2], None, "paper", "a/g.png")],
        maps=[MapsEntry("a.png", "a/maps.npz")],
    )
    data = json.loads(manifest.to_bytes())
    assert list(data) == [
        "model",
        "figures",
        "maps",
        "complete",
        "notes",
        "skipped",
        "options",
        "pages",
        "job_options",
        "images_done",
    ]  # issue 14 added skipped, options, pages; issue 15 the last two; the first five keep order
    assert list(data["figures"][0]) == [
        "image", "figure", "layer", "layer_name", "head", "query", "window", "style", "path",
    ]  # fmt: skip
    assert Manifest.from_json(data) == manifest
