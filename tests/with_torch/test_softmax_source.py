"""The softmax source alone and in the recorder: softmax outputs applied to values are
attention, named after the module that made them; other softmaxes are not; outputs
are bit-identical and nothing is left behind."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from torch import nn  # noqa: E402

from anycapture.attention import AttentionRecorder  # noqa: E402
from anycapture.sources.softmax import SoftmaxSource, uncovered_scopes  # noqa: E402


class Attend(nn.Module):
    """vit-pytorch style: ``attend = nn.Softmax``, heads as ``self.heads``; ``style``
    says how the weights reach the values."""

    def __init__(self, dim: int = 16, heads: int = 2, style: str = "matmul") -> None:
        super().__init__()
        self.heads, self.style = heads, style
        self.qkv = nn.Linear(dim, dim * 3)
        self.attend = nn.Softmax(dim=-1)
        self.drop = nn.Dropout(0.1)
        self.mix = nn.Parameter(torch.eye(heads) + 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        if self.style == "folded":  # heads in the batch axis: (b h) n d
            q, k, v = (t.reshape(b * self.heads, n, -1) for t in (q, k, v))
        attn = self.drop(self.attend(q @ k.transpose(-1, -2)))
        if self.style == "talking":  # mixed across heads after the softmax (DeepViT)
            attn = torch.einsum("bhij,hg->bgij", attn, self.mix)
        if self.style == "right":  # applied from the right: sums over queries
            out = (v.transpose(-1, -2) @ attn).transpose(-1, -2)
        elif self.style == "transposed":  # SHViT: v^T @ attn^T sums over keys
            out = (v.transpose(-1, -2) @ attn.mT).transpose(-1, -2)
        elif self.style == "permuted":  # v first in an einsum, the map permuted
            out = torch.einsum("bhjd,bhji->bhid", v, attn.permute(0, 1, 3, 2))
        elif self.style == "einsum":
            out = torch.einsum("bhij,bhjd->bhid", attn, v)
        elif self.style == "gate":  # a gate, multiplied elementwise
            out = v * attn[..., :1]
        else:
            out = attn @ v
        return out.reshape(b, n, d)


class Net(nn.Module):
    def __init__(self, style: str = "matmul", head_softmax: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Attend(style=style) for _ in range(2)])
        self.head = nn.Linear(16, 3)
        self.head_softmax = head_softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        logits = self.head(x.mean(1))
        return logits.softmax(-1) if self.head_softmax else logits


def _softmax_outputs(model: nn.Module) -> list[torch.Tensor]:
    outputs: list[torch.Tensor] = []
    for module in model.modules():
        if isinstance(module, nn.Softmax):
            module.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    return outputs


def _run(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, np.ndarray], torch.Tensor, str]:
    recorder = AttentionRecorder(model)
    with torch.inference_mode(), recorder.recording():
        out = model(x)
    return recorder.take(), out, recorder.kind


@pytest.mark.parametrize(
    "style", ["matmul", "einsum", "talking", "folded", "transposed", "permuted"]
)
def test_softmax_applied_to_values_is_captured_exactly(style: str) -> None:
    torch.manual_seed(0)
    model = Net(style, head_softmax=True).eval()
    x = torch.randn(2, 5, 16)
    with torch.inference_mode():
        plain = model(x)
    reference = _softmax_outputs(model)
    maps, out, kind = _run(model, x)
    assert torch.equal(out, plain)  # bit-identical with capture on
    assert kind == "softmax"
    assert list(maps) == ["blocks.0", "blocks.1"]  # the module that made it, not `attend`
    for got, expected in zip(maps.values(), reference, strict=True):
        assert got.shape == (2, 2, 5, 5)  # folded (b h) unfolded by the module's heads
        assert np.abs(got - expected.reshape(got.shape).numpy()).max() == 0.0


@pytest.mark.parametrize("style", ["right", "gate"])
def test_softmax_not_applied_to_values_is_not_attention(style: str) -> None:
    """A gate, a softmax summed over queries and a classification head's softmax are
    not captured: nothing is found, in one line naming the fix."""
    model = Net(style, head_softmax=True).eval()
    recorder = AttentionRecorder(model)
    with torch.inference_mode(), recorder.recording():
        model(torch.randn(1, 5, 16))
    with pytest.raises(Exception, match="no attention found") as info:
        recorder.take()
    assert "\n" not in str(info.value)


def test_source_narrows_to_the_modules_that_made_maps_and_leaves_no_mode() -> None:
    model = Net().eval()
    x = torch.randn(1, 5, 16)
    recorder = AttentionRecorder(model)
    first, _, _ = _run_with(recorder, model, x)
    assert recorder._softmax.scopes is not None
    assert [name for name, _ in recorder._softmax.scopes] == ["blocks.0", "blocks.1"]
    second, _, _ = _run_with(recorder, model, x)
    assert list(first) == list(second)
    for name in first:
        assert np.array_equal(first[name], second[name])
    assert not torch.overrides._is_torch_function_mode_enabled()
    assert all(not block._forward_hooks for block in model.blocks)


def _run_with(recorder: AttentionRecorder, model: nn.Module, x: torch.Tensor) -> tuple:
    with torch.inference_mode(), recorder.recording():
        out = model(x)
    return recorder.take(), out, recorder.kind


def test_a_forward_that_raises_leaves_no_mode_behind() -> None:
    model = Net().eval()
    source = SoftmaxSource(model, [("blocks.0", model.blocks[0])])
    with pytest.raises(RuntimeError), source:
        model(torch.randn(1, 5, 7))  # wrong width: the first block raises
    assert not torch.overrides._is_torch_function_mode_enabled()
    assert not model.blocks[0]._forward_hooks and not model.blocks[0]._forward_pre_hooks


def test_not_active_where_known_sources_cover_attention() -> None:
    """timm's ViT: every attention module is a LocalsSource site, nothing is left for
    the softmax source (no TorchFunctionMode, no overhead)."""
    model = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=2).eval()
    recorder = AttentionRecorder(model)
    assert recorder._softmax is None
    covered = [s.module for s in recorder.sites]
    assert uncovered_scopes(model, covered) == []


def test_uncovered_attention_beside_known_sources() -> None:
    """A model with a timm attention (a site) and a softmax-attention block of its own:
    the softmax source watches only the second, both are drawn."""
    from timm.layers import Attention

    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.timm_attn = Attention(16, num_heads=2)
            self.own = Attend()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.own(self.timm_attn(x))

    model = Mixed().eval()
    maps, _, kind = _run(model, torch.randn(1, 5, 16))
    assert kind == "auto" and list(maps) == ["timm_attn", "own"]
    assert all(m.shape == (1, 2, 5, 5) for m in maps.values())


def test_sdpa_calls_under_the_mode_are_recorded_once() -> None:
    from tests.models_ext.factories import sdpa_vit

    model = sdpa_vit().eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        plain = model(x)
    maps, out, kind = _run(model, x)
    assert kind == "sdpa" and torch.equal(out, plain)
    assert len(maps) == len([m for m in model.modules() if type(m).__name__ == "Attention"])


def test_windows_beside_heads_become_the_batch_axis() -> None:
    """Hiera keeps ``(B, H, windows, Q, K)``, torchvision's MaxViT ``(B, windows, H, Q,
    K)``: both give ``(B*windows, H, Q, K)`` with each window's heads in place."""
    from anycapture.sources.softmax import _as_maps

    maps = np.random.default_rng(0).random((2, 3, 5, 4, 4))  # B, H, windows, Q, K
    hiera = _as_maps(maps, heads=3)
    assert hiera.shape == (10, 3, 4, 4)
    assert np.array_equal(hiera[5 + 1, 2], maps[1, 2, 1])  # image 1, window 1, head 2
    maxvit = _as_maps(maps.swapaxes(1, 2), heads=3)  # B, windows, H, Q, K
    assert np.array_equal(maxvit, hiera)
    assert _as_maps(maps[:, :, 0], heads=3).shape == (2, 3, 4, 4)  # 4-D: as it is
