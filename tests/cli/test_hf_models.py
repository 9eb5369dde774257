"""End to end: HuggingFace directories, two-tower models, SDPA-only models, the
preprocessing and dtype options, and what the manifest records about them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import CAT, REPO, read_manifest

pytest.importorskip("transformers")

from tests.models_ext.hf_tiny import save

pytestmark = pytest.mark.slow
FACTORIES = REPO / "tests" / "models_ext" / "factories.py"


def _render(cli, tmp_path: Path, model: str, *extra: str):
    out = tmp_path / "out"
    result = cli(
        "render",
        "-m",
        model,
        "-i",
        str(CAT),
        "-o",
        str(out),
        "--figures",
        "head,grid,cls",
        *extra,
    )
    return result, out


@pytest.mark.parametrize(
    ("family", "prefix", "processor"),
    [
        ("vit", ["cls"], "ViTImageProcessor"),
        ("dinov2_reg", ["cls", "reg0", "reg1", "reg2", "reg3"], "BitImageProcessor"),
        ("clip", ["cls"], "CLIPImageProcessor"),
    ],
)
def test_save_pretrained_directory(cli, tmp_path: Path, family, prefix, processor) -> None:
    folder = save(family, tmp_path / family)
    result, out = _render(cli, tmp_path, str(folder))
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    model = manifest["model"]
    assert model["source"] == "transformers" and model["pretrained"] is True
    assert model["prefix_names"] == prefix and model["grid"] == [4, 4]
    assert model["preprocessing"]["source"] == f"image processor ({processor})"
    assert model["capture"] == "auto" and len(model["layers"]) == 2
    assert [f["figure"] for f in manifest["figures"]] == ["head", "grid", "cls"]
    assert ("two-tower" in result.stderr) == (family == "clip")
    sites = cli("sites", "-m", str(folder), "--json")
    assert sites.exit_code == 0, sites.stderr
    assert json.loads(sites.stdout)["capture"][0].endswith("Attention.forward")


def test_siglip_and_swin(cli, tmp_path: Path) -> None:
    """SigLIP: no CLS, a pooling head (nn.MultiheadAttention, one query) last; Swin:
    windowed attention, drawn per window."""
    result, out = _render(cli, tmp_path, str(save("siglip", tmp_path / "s")), "--layer", "all")
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest["model"]["prefix_names"] == [] and manifest["model"]["grid"] == [4, 4]
    assert manifest["model"]["layers"][-1] == "head.attention"
    assert any("head.attention is class attention" in n for n in manifest["notes"])
    swin = save("swin", tmp_path / "w")
    result = cli("render", "-m", str(swin), "-i", str(CAT), "-o", str(tmp_path / "w-out"))
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(tmp_path / "w-out")
    assert [f["figure"] for f in manifest["figures"]] == ["head", "heads"]
    assert manifest["figures"][0]["window"] == [2, 4]


def test_sdpa_only_model_and_imagenet_note(cli, tmp_path: Path) -> None:
    result, out = _render(cli, tmp_path, f"{FACTORIES}:sdpa_vit", "--no-pretrained")
    assert result.exit_code == 0, result.stderr
    assert "assuming ImageNet mean/std" in result.stderr
    model = read_manifest(out)["model"]
    assert model["capture"] == "sdpa"
    assert model["layers"] == ["blocks.0.attn", "blocks.1.attn"]
    assert model["preprocessing"]["source"] == "ImageNet defaults (assumed)"


def test_preprocessing_options_recorded(cli, tmp_path: Path) -> None:
    result, out = _render(
        cli,
        tmp_path,
        f"{FACTORIES}:sdpa_vit",
        "--img-size",
        "32,32",
        "--mean",
        "0.5,0.5,0.5",
        "--std",
        "0.25,0.25,0.25",
        "--resize",
        "squash",
        "--dtype",
        "bfloat16",
    )
    assert result.exit_code == 0, result.stderr
    assert "assuming" not in result.stderr
    pre = read_manifest(out)["model"]["preprocessing"]
    assert pre["mean"] == [0.5] * 3 and pre["std"] == [0.25] * 3
    assert pre["resize"] == "squash" and pre["dtype"] == "bfloat16"
    assert pre["input_size"] == [32, 32]


def test_open_clip_two_tower(cli, tmp_path: Path) -> None:
    pytest.importorskip("open_clip")
    result, out = _render(cli, tmp_path, f"{FACTORIES}:tiny_open_clip")
    assert result.exit_code == 0, result.stderr
    assert "image tower `visual`" in result.stderr
    model = read_manifest(out)["model"]
    assert model["preprocessing"]["source"] == "open_clip preprocess_cfg"
    assert model["layers"] == [f"transformer.resblocks.{i}.attn" for i in range(2)]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mean", "0.5,0.5"], "--mean needs three values"),
        (["--mean", "a,b,c"], "--mean 'a,b,c' must be three numbers"),
        (["--std", "0.2,0,0.2"], "--std values must be positive"),
        (["--resize", "stretch"], "--resize 'stretch': choose crop or squash"),
        (["--dtype", "int8"], "--dtype 'int8': choose"),
    ],
)
def test_bad_options_exit_2(cli, tmp_path: Path, extra, message) -> None:
    result, out = _render(cli, tmp_path, "vit_tiny", *extra)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_no_attention_lists_candidates_exit_2(cli, tmp_path: Path) -> None:
    # weights made without a softmax call: the softmax source does not see them
    result, _ = _render(cli, tmp_path, "tests.with_torch.test_candidates:Normalised")
    assert result.exit_code == 2
    spec = "tests.with_torch.test_candidates:Normalised.forward:weights"
    assert f"--capture '{spec}'" in result.stderr


def test_hub_name_offline_not_cached_exit_2(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    result, _ = _render(cli, tmp_path, "transformers:nobody/nothing")
    assert result.exit_code == 2 and "not in the local HuggingFace cache" in result.stderr


def test_classification_checkpoint_keeps_its_head_for_explain(cli, tmp_path: Path) -> None:
    """A saved ViTForImageClassification loads as itself (not a bare ViTModel), so
    explain gets its logits and id2label names."""
    folder = save("vit_classifier", tmp_path / "vit_classifier")
    result, out = _render(cli, tmp_path, str(folder), "--figures", "explain,head")
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest["model"]["layers"][0].startswith("vit.")
    (explain,) = [f for f in manifest["figures"] if f["figure"] == "explain"]
    (chosen,) = explain["classes"]
    assert chosen["name"] in {"cat", "dog", "fox"} and chosen["rank"] == 1
