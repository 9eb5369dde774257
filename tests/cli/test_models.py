"""The ViT family end to end with random weights: layout, sites and figures per model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import CAT, KNOWN

pytestmark = pytest.mark.slow

MODELS = [
    # name, extra args, prefix names, grid, layers, heads
    ("deit_tiny_distilled_patch16_224", [], ["cls", "dist"], [14, 14], 12, 3),
    (
        "vit_small_patch14_reg4_dinov2",
        ["--img-size", "112,168"],
        ["cls", "reg0", "reg1", "reg2", "reg3"],
        [8, 12],
        12,
        6,
    ),
    ("beit_base_patch16_224", ["--img-size", "112,112"], ["cls"], [7, 7], 12, 12),
    ("eva02_tiny_patch14_224", [], ["cls"], [16, 16], 12, 3),
    # 24 talking-heads layers mix heads after the softmax (not attention): skipped
    ("cait_xxs24_224", [], ["cls"], [14, 14], 2, 4),
    (f"{KNOWN}:mha_vit", [], ["cls"], [3, 5], 2, 2),
]


@pytest.mark.parametrize(
    ("model", "extra", "prefix", "grid", "layers", "heads"),
    MODELS,
    ids=[m[0].rsplit(":", 1)[-1] for m in MODELS],
)
def test_model_family(cli, tmp_path: Path, model, extra, prefix, grid, layers, heads) -> None:
    result = cli("sites", "-m", model, "--json", *extra)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["prefix_names"] == prefix and report["grid"] == grid
    assert len(report["layers"]) == layers and report["layers"][0]["heads"] == heads
    out = tmp_path / "out"
    result = cli(
        "render",
        "-m",
        model,
        "-i",
        str(CAT),
        "-o",
        str(out),
        "--no-pretrained",
        "--figures",
        "head,heads,grid,cls",
        "-q",
        *extra,
    )
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    kinds = [f["figure"] for f in manifest["figures"]]
    if model.startswith("cait"):
        # the last layers are class attention: only CLS queries, so no grid figure
        assert kinds == ["head", "heads", "cls"]
        assert any("class attention" in n for n in manifest["notes"])
    else:
        assert kinds == ["head", "heads", "grid", "cls"]


def test_swin_windows(cli, tmp_path: Path) -> None:
    out = tmp_path / "swin"
    result = cli(
        "render",
        "-m",
        "swin_tiny_patch4_window7_224",
        "-i",
        str(CAT),
        "-o",
        str(out),
        "--no-pretrained",
        "--layer",
        "all",
        "--figures",
        "heads,grid",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    grids = [f for f in manifest["figures"] if f["figure"] == "grid"]
    heads = [f for f in manifest["figures"] if f["figure"] == "heads"]
    assert len(heads) == 12  # every layer, one window each
    assert heads[0]["window"] == [32, 64]  # stage 1: 8x8 windows of 7x7, the middle one
    # only the last stage's single 7x7 window covers the whole image
    assert [g["layer"] for g in grids] == [10, 11]
    assert any("windowed attention" in n and "--window" in n for n in manifest["notes"])
    result = cli(
        "render",
        "-m",
        "swin_tiny_patch4_window7_224",
        "-i",
        str(CAT),
        "-o",
        str(tmp_path / "w"),
        "--no-pretrained",
        "--layer",
        "0",
        "--window",
        "64",
    )
    assert result.exit_code == 2 and "--window 64 is out of range" in result.stderr


def test_multihead_attention_callers_see_no_difference() -> None:
    import torch

    from anycapture.attention import AttentionRecorder
    from tests.models.known import mha_vit

    model = mha_vit().eval()
    x = torch.randn(2, 3, 48, 80)
    attention = model.blocks[0].attn
    tokens = torch.randn(2, 16, 16)
    with torch.inference_mode():
        expected = model(x)
        averaged = attention(tokens, tokens, tokens)[1]
        recorder = AttentionRecorder(model)
        with recorder.recording():
            got = model(x)
            assert attention(tokens, tokens, tokens, need_weights=False)[1] is None
            torch.testing.assert_close(attention(tokens, tokens, tokens)[1], averaged)
            per_head = attention(tokens, tokens, tokens, None, True, None, False)[1]
    torch.testing.assert_close(got, expected)
    assert per_head.shape == (2, 2, 16, 16)
    maps = recorder.take()
    # the three direct calls are blocks.0.attn's calls #1..#3, after the model's own
    assert list(maps) == [
        "blocks.0.attn",
        "blocks.0.attn#1",
        "blocks.0.attn#2",
        "blocks.0.attn#3",
        "blocks.1.attn",
    ]
    assert maps["blocks.0.attn"].shape == (2, 2, 16, 16)
    assert torch.backends.mha.get_fastpath_enabled()
    assert not attention._forward_pre_hooks and not attention._forward_hooks
