""" "No attention found" names ready-to-paste --capture candidates."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from anycapture.sources.candidates import (  # noqa: E402
    capture_candidates,
    describe_candidates,
)


class Scores(torch.nn.Module):
    def forward(self, x):
        attn_scores = x @ x.transpose(-2, -1)
        probs = attn_scores.softmax(-1)
        attn_output = probs @ x
        return attn_output


class FusedAttention(torch.nn.Module):  # keeps no weights at all
    def forward(self, x):
        return torch.nn.functional.scaled_dot_product_attention(x, x, x)


def test_locals_of_each_class_once_in_module_order() -> None:
    model = torch.nn.Sequential(Scores(), Scores(), FusedAttention())
    specs, bare = capture_candidates(model)
    where = f"{__name__}:Scores.forward"
    assert specs == [f"{where}:attn_scores", f"{where}:probs"]  # not attn_output
    assert bare == ["2"]
    text = describe_candidates(model)
    assert f"--capture '{where}:probs'" in text and "fused" in text


def test_timm_attention_is_a_candidate() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8)
    specs, _ = capture_candidates(model)
    assert specs == ["timm.layers.attention:Attention.forward:attn"]


def test_nothing_likely() -> None:
    assert "no module's forward" in describe_candidates(torch.nn.Linear(2, 2))
