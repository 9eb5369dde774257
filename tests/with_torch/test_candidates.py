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


class Normalised(torch.nn.Module):
    """Weights made without a softmax call (no source finds them); ``scores`` is not
    attention, ``weights`` is."""

    def forward(self, x):
        scores = x @ x.transpose(-2, -1)
        exp = (scores - scores.amax(-1, keepdim=True)).exp()
        weights = exp / exp.sum(-1, keepdim=True)
        return weights @ x


class Stack(torch.nn.Module):
    """A loop variable named ``attn`` holds a module: never a working candidate."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([Normalised(), Normalised()])

    def forward(self, x):
        for attn in self.layers:
            x = attn(x)
        return x


def test_only_candidates_holding_attention_are_offered() -> None:
    from anycapture.attention import AttentionRecorder, NoAttentionError

    model = Stack()
    recorder = AttentionRecorder(model)
    with torch.inference_mode(), recorder.recording():
        model(torch.randn(1, 2, 4, 3))
    with pytest.raises(NoAttentionError) as info:
        recorder.take()
    message = str(info.value)
    assert f"--capture '{__name__}:Normalised.forward:weights'" in message
    assert ":scores'" not in message and "Stack.forward:attn'" not in message
    specs, _ = capture_candidates(model)  # all three are named like attention
    assert len(specs) == 3


def test_no_working_candidate_says_so() -> None:
    model = torch.nn.Sequential(Scores())
    text = describe_candidates(model, lambda: None)  # a replay recording nothing
    assert "none of the 2 locals" in text and "--capture" not in text
