"""End-to-end: the render and sites commands on random-init and known-attention models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import CAT, KNOWN, read_manifest

pytestmark = pytest.mark.slow

known = pytest.importorskip("tests.models.known")


def test_default_figures_for_a_timm_model(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("render", "--model", "vit_tiny", "--image", str(CAT), "--out", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest["complete"] is True
    model = manifest["model"]
    assert model["name"] == "vit_tiny_patch16_224"
    assert (model["grid"], model["prefix_tokens"], model["heads"]) == ([14, 14], 1, 3)
    assert len(model["layers"]) == 12
    kinds = [f["figure"] for f in manifest["figures"]]
    assert kinds == ["head", "heads", "grid"]
    for figure in manifest["figures"]:
        assert figure["layer"] == 11 and not Path(figure["path"]).is_absolute()
        with Image.open(out / figure["path"]) as png:
            assert png.format == "PNG" and png.width > 300
    grid = manifest["figures"][2]
    assert grid["query"] == [7, 7] and grid["path"] == "cat/grid_L11_H0_q7-7.png"
    assert not list(out.rglob("*.part")) and not (out / ".anycapture.lock").exists()


def test_bare_style_is_model_resolution(cli, tmp_path: Path) -> None:
    out = tmp_path / "bare"
    result = cli(
        "render",
        "-m",
        "vit_tiny",
        "-i",
        str(CAT),
        "-o",
        str(out),
        "--style",
        "bare",
        "--layer",
        "0",
        "--head",
        "2",
        "--query",
        "0,13",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    sizes = {f["figure"]: Image.open(out / f["path"]).size for f in read_manifest(out)["figures"]}
    assert sizes["head"] == (197, 197)
    assert sizes["grid"] == (224, 224)
    assert sizes["heads"][1] == 197


def test_layer_all_and_python_path_non_square(cli, tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = cli(
        "render",
        "-m",
        f"{KNOWN}:tiny_vit",
        "-i",
        str(CAT),
        "-i",
        str(CAT.parent),
        "-o",
        str(out),
        "--layer",
        "all",
        "--figures",
        "grid,head",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest["model"]["grid"] == [2, 3]
    assert manifest["model"]["input_size"] == [32, 48]
    assert len(manifest["figures"]) == 2 * 2  # one image (deduplicated), 2 layers, 2 kinds


def test_truthful_grid_hottest_region_is_the_attended_patch(cli, tmp_path: Path) -> None:
    out = tmp_path / "truth"
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
        "grid",
        "--cmap",
        "gray",
        "--alpha",
        "1",
        "--query",
        "0,4",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    (figure,) = read_manifest(out)["figures"]
    pixels = np.asarray(Image.open(out / figure["path"]).convert("L"), dtype=np.float32)
    rows, cols = known.GRID
    assert pixels.shape == (rows * known.PATCH, cols * known.PATCH)
    y, x = np.unravel_index(np.argmax(pixels), pixels.shape)
    assert (y // known.PATCH, x // known.PATCH) == known.TARGET
    # and each patch's mean brightness peaks there too
    patch_means = pixels.reshape(rows, known.PATCH, cols, known.PATCH).mean(axis=(1, 3))
    assert np.unravel_index(np.argmax(patch_means), patch_means.shape) == known.TARGET


def test_seed_style_get_local_model(cli, tmp_path: Path) -> None:
    out = tmp_path / "seed"
    result = cli("render", "-m", f"{KNOWN}:seed", "-i", str(CAT), "-o", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest["model"]["capture"] == "get_local"
    # (keyed by module too: pytest imported tests.models.known under another name first)
    (layer,) = manifest["model"]["layers"]
    assert layer == "layer"  # named as in named_modules(), like every other site
    assert len(manifest["figures"]) == 3


def test_sites_lists_layers(cli) -> None:
    result = cli("sites", "--model", "vit_tiny", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["grid"] == [14, 14] and report["prefix_names"] == ["cls"]
    assert [layer["heads"] for layer in report["layers"]] == [3] * 12
    assert report["capture"] == ["timm.layers.attention:Attention.forward"]


def test_fused_attention_restored_after_run(tmp_path: Path) -> None:
    import timm
    import torch

    from anycapture.attention import AttentionRecorder

    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2).eval()
    recorder = AttentionRecorder(model)
    before = [block.attn.fused_attn for block in model.blocks]
    with torch.inference_mode(), recorder.recording():
        model(torch.zeros(1, 3, 224, 224))
    assert [block.attn.fused_attn for block in model.blocks] == before
    maps = recorder.take()
    assert list(maps) == ["blocks.0.attn", "blocks.1.attn"]
    np.testing.assert_allclose(maps["blocks.0.attn"].sum(-1), 1.0, rtol=1e-5)


def test_demo_model_from_the_cli(cli, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    scene = CAT.parents[0] / "demo" / "scene0.png"
    result = cli(
        "render",
        "-m",
        "demo",
        "-i",
        str(scene),
        "-o",
        str(out),
        "--figures",
        "cls,rollout",
        "--layer",
        "1",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest["model"]["name"] == "demo" and manifest["model"]["pretrained"] is True
    assert manifest["model"]["grid"] == [8, 8]
    assert [f["figure"] for f in manifest["figures"]] == ["cls", "rollout"]
