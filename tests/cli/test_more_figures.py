"""The figures beyond the seeds: cls, rollout, layers, --query-pixel, saved maps, HTML."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import CAT, KNOWN, read_manifest

pytestmark = pytest.mark.slow
known = pytest.importorskip("tests.models.known")


def test_new_kinds_on_a_timm_model(cli, tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = cli(
        "render",
        "-m",
        "deit_tiny_distilled_patch16_224",
        "-i",
        str(CAT),
        "-o",
        str(out),
        "--figures",
        "cls,rollout,layers",
        "--token",
        "1",
        "--threshold",
        "0.6",
        "--head",
        "mean",
        "--fusion",
        "max",
        "--discard-ratio",
        "0.2",
        "--no-pretrained",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest["model"]["prefix_names"] == ["cls", "dist"]
    paths = [f["path"] for f in manifest["figures"]]
    assert paths == [
        "cat/cls_L11_T1_t0.6.png",  # --threshold is in the name (issue 14)
        "cat/rollout_T1_max_d0.2.png",
        "cat/layers_Hmean_q7-7.png",
    ]
    for path in paths:
        assert Image.open(out / path).width > 400


def test_bare_cls_and_layers_are_tiled_views(cli, tmp_path: Path) -> None:
    out = tmp_path / "bare"
    result = cli(
        "render",
        "-m",
        f"{KNOWN}:build",
        "-i",
        str(CAT),
        "-o",
        str(out),
        "--style",
        "bare",
        "--figures",
        "cls,layers,rollout",
        "--no-pretrained",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    sizes = {f["figure"]: Image.open(out / f["path"]).size for f in read_manifest(out)["figures"]}
    height, width = known.GRID[0] * known.PATCH, known.GRID[1] * known.PATCH
    gap = 1
    assert sizes["cls"] == (3 * width + 2 * gap, height)  # 2 heads + mean
    strip = round(known.PATCH * 1.25)  # the prefix-token cells above each layers panel
    assert sizes["layers"] == (2 * width + gap, strip + height)  # 2 layers
    assert sizes["rollout"] == (2 * width + gap, height)  # input + rollout


def test_query_pixel_picks_the_patch_under_it(cli, tmp_path: Path) -> None:
    rows, cols = known.GRID
    image = tmp_path / "exact.png"
    Image.new("RGB", (cols * known.PATCH, rows * known.PATCH), (90, 90, 90)).save(image)
    out = tmp_path / "px"
    result = cli(
        "render",
        "-m",
        f"{KNOWN}:build",
        "-i",
        str(image),
        "-o",
        str(out),
        "--figures",
        "grid",
        "--query-pixel",
        "70,40",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    (figure,) = read_manifest(out)["figures"]
    assert figure["query"] == [40 // known.PATCH, 70 // known.PATCH]
    bad = cli(
        "render",
        "-m",
        f"{KNOWN}:build",
        "-i",
        str(image),
        "-o",
        str(tmp_path / "x"),
        "--figures",
        "grid",
        "--query-pixel",
        "500,10",
    )
    assert bad.exit_code == 2 and "outside the 80x48 image" in bad.stderr


def test_save_maps_then_render_without_the_model(cli, tmp_path: Path) -> None:
    first = tmp_path / "first"
    args = ["--figures", "grid,head", "--style", "bare", "-q"]
    result = cli(
        "render",
        "-m",
        f"{KNOWN}:tiny_vit",
        "-i",
        str(CAT),
        "-o",
        str(first),
        "--save-maps",
        "--layer",
        "all",
        *args,
    )
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(first)
    (maps_entry,) = manifest["maps"]
    with np.load(first / maps_entry["path"]) as saved:
        meta = json.loads(str(saved["meta"]))
        assert meta["layer_names"] == ["blocks.0.attn", "blocks.1.attn"]
        assert saved["layer_000"].shape == (3, 7, 7) and saved["view"].shape == (32, 48, 3)
    second = tmp_path / "second"
    result = cli(
        "render",
        "--from-maps",
        str(first / maps_entry["path"]),
        "-o",
        str(second),
        "--layer",
        "all",
        *args,
    )
    assert result.exit_code == 0, result.stderr
    again = read_manifest(second)
    assert [f["path"] for f in again["figures"]] == [f["path"] for f in manifest["figures"]]
    for figure in again["figures"]:  # identical pixels: the same maps, the same renderer
        assert (second / figure["path"]).read_bytes() == (first / figure["path"]).read_bytes()
    assert again["model"]["grid"] == [2, 3]
    half = tmp_path / "half"
    cli(
        "render",
        "-m",
        f"{KNOWN}:tiny_vit",
        "-i",
        str(CAT),
        "-o",
        str(half),
        "--save-maps",
        "--maps-float16",
        "-q",
        "--figures",
        "head",
    )
    with np.load(half / "cat" / "maps.npz") as saved:
        assert saved["layer_001"].dtype == np.float16


def test_from_maps_errors(cli, tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    np.savez(junk, x=np.zeros(2))
    result = cli("render", "--from-maps", str(junk), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2 and "not a maps file written by --save-maps" in result.stderr
    result = cli("render", "--from-maps", str(junk), "-m", "vit_tiny", "-o", str(tmp_path / "o"))
    assert result.exit_code == 2 and "drop --model" in result.stderr


def test_html_index_is_offline_and_complete(cli, tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = cli(
        "render",
        "-m",
        f"{KNOWN}:build",
        "-i",
        str(CAT),
        "-o",
        str(out),
        "--html",
        "--layer",
        "all",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    page = (out / "index.html").read_text()
    for figure in read_manifest(out)["figures"]:
        assert f'href="{figure["path"]}"' in page  # each figure links its full-size PNG
    assert "http://" not in page and "https://" not in page and "<script" not in page
