"""``anycapture sites`` says what each layer's map is over: tokens, windows, channels."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("timm")


def test_xcit_channel_attention_is_labelled_channel(cli) -> None:
    """XCiT's cross-covariance layers attend over a head's 32 channels, not tokens;
    its class-attention layers over the 1 + 14x14 tokens."""
    result = cli("sites", "-m", "xcit_nano_12_p16_224", "--no-pretrained", "--json")
    assert result.exit_code == 0, result.stderr
    layers = json.loads(result.stdout)["layers"]
    kinds = [layer["kind"] for layer in layers]
    assert kinds == ["channel"] * 12 + ["class"] * 2
    assert layers[0]["tokens"] == layers[0]["queries"] == 32
    assert layers[-1]["queries"] == 1 and layers[-1]["tokens"] == 197


def test_layer_kind_windows_and_tokens() -> None:
    import torch

    from anycapture.cli.sites import layer_kind

    attention = torch.nn.Module()
    attention.qkv = torch.nn.Linear(64, 192)
    from anycapture.layout import TokenLayout

    small, large = TokenLayout(1, (7, 7)), TokenLayout(1, (14, 14))
    assert layer_kind(attention, np.zeros((1, 2, 50, 50)), small) == "token"
    assert layer_kind(attention, np.zeros((4, 2, 49, 49)), large) == "window"
    assert layer_kind(attention, np.zeros((1, 2, 32, 32)), large) == "channel"
    assert layer_kind(None, np.zeros((1, 2, 32, 32)), large) == "token"
    assert layer_kind(None, np.zeros((1, 2, 1, 197)), large) == "class"
    assert layer_kind(None, np.zeros((1, 2, 197, 77)), large) == "cross"  # text keys
    assert layer_kind(None, np.zeros((1, 2, 100, 197)), large) == "to-image"  # queries


def test_sites_shows_the_images_layout_and_labels_cross_attention(cli) -> None:
    """Image queries x 77 text keys: the layout is the image's (cls + 8x4), never one
    made from the keys ("5 prefix + 12x6 = 77"), and the layer reads "cross"."""
    from .conftest import REPO

    model = REPO / "tests" / "models" / "truth_models.py"
    result = cli("sites", "-m", f"{model}:cross", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["prefix_tokens"] == 1 and report["grid"] == [8, 4]
    assert [layer["kind"] for layer in report["layers"]] == ["token", "cross"] * 2


def test_layers_left_out_are_listed_with_why(cli) -> None:
    """CaiT's talking-heads layers (heads mixed after the softmax) are not drawn:
    ``sites`` lists them with the reason instead of dropping them silently."""
    extra = ("--img-size", "32,32")
    result = cli("sites", "-m", "cait_xxs24_224", "--no-pretrained", "--json", *extra)
    if result.exit_code != 0:  # a timm without img_size for CaiT: its own size
        result = cli("sites", "-m", "cait_xxs24_224", "--no-pretrained", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["layers"]) == 2 and len(report["left_out"]) == 24
    assert all("is not attention" in row["reason"] for row in report["left_out"])
    table = cli("sites", "-m", "cait_xxs24_224", "--no-pretrained", *extra)
    assert "left out     24 layers" in table.stdout


def test_sites_names_the_softmax_source(cli) -> None:
    from pathlib import Path

    factories = Path(__file__).resolve().parents[1] / "models_zoo" / "vit_pytorch_models.py"
    result = cli("sites", "-m", f"{factories}:vit", "--img-size", "32,32", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["capture"] == ["softmax outputs applied to values (named after their modules)"]
    assert [layer["name"] for layer in report["layers"]] == [
        "transformer.layers.0.0",
        "transformer.layers.1.0",
    ]
