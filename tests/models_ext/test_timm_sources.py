"""timm models with fused attention kept: the SDPA source's maps equal the unfused
local ``attn`` (what anycapture captured so far), outputs untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anycapture import capture
from anycapture.sources.sdpa import SdpaSource

timm = pytest.importorskip("timm")


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8}),
        ("vit_small_patch14_reg4_dinov2", {"img_size": 28, "depth": 2}),
        ("deit_tiny_distilled_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 2}),
    ],
)
def test_sdpa_source_equals_unfused_attn(name: str, kwargs: dict) -> None:
    from timm.layers.attention import Attention

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    x = torch.randn(2, 3, kwargs["img_size"], kwargs["img_size"])
    modules = [m for m in model.modules() if isinstance(m, Attention)]
    assert all(m.fused_attn for m in modules)
    with torch.inference_mode():
        plain = model(x)
        with SdpaSource(model) as source:
            captured = model(x)
        for module in modules:
            module.fused_attn = False
        with capture(Attention.forward, "attn") as cap:
            model(x)
    assert torch.equal(plain, captured)
    records = source.take()
    names = [n for n, m in model.named_modules() if isinstance(m, Attention)]
    assert [name for name, _ in records] == names
    unfused = cap.cache["Attention.forward.attn"]
    for (_, got), expected in zip(records, unfused, strict=True):
        assert np.abs(got - expected).max() <= 1e-5


@pytest.mark.parametrize("kind", ["bottleneck", "halo"])
def test_heads_folded_into_the_batch_are_unfolded(kind: str) -> None:
    """timm's BoTNet attention keeps ``(B*heads, Q, K)``, HaloNet's ``(B*heads, blocks,
    Q, K)``: a batch of 2 gives ``(2, heads, Q, K)`` and ``(2*blocks, heads, Q, K)``
    (was "1 maps for 2 images", and HaloNet's blocks shown as heads)."""
    from timm.layers.bottleneck_attn import BottleneckAttn
    from timm.layers.halo_attn import HaloAttn

    from anycapture.attention import AttentionRecorder

    torch.manual_seed(0)
    if kind == "bottleneck":
        layer = BottleneckAttn(16, feat_size=(4, 4), num_heads=4)
    else:
        layer = HaloAttn(16, num_heads=4, block_size=2, halo_size=1)
    model = torch.nn.Sequential(layer).eval()
    x = torch.randn(2, 16, 4, 4)
    raw: list[torch.Tensor] = []
    original = torch.Tensor.softmax

    def keeping(tensor: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        raw.append(original(tensor, *args, **kwargs))
        return raw[-1]

    torch.Tensor.softmax = keeping  # the module's own softmax output, as it made it
    try:
        with torch.inference_mode():
            model(x)
    finally:
        torch.Tensor.softmax = original
    recorder = AttentionRecorder(model)
    with torch.inference_mode(), recorder.recording():
        model(x)
    (got,) = recorder.take().values()
    folded = raw[0].numpy()  # (b h) first
    if kind == "bottleneck":
        assert got.shape == (2, 4, 16, 16)
        expected = folded.reshape(2, 4, 16, 16)
    else:
        assert got.shape == (2 * 4, 4, 4, 16)  # 4 blocks of 2x2 queries, 4x4 windows
        expected = folded.reshape(2, 4, 4, 4, 16).swapaxes(1, 2).reshape(8, 4, 4, 16)
    assert np.array_equal(got, expected)  # blocks as many as heads: still told apart


def test_nest_blocks_are_drawn_as_windows() -> None:
    """NesT's attention is ``(B, heads, blocks, N, N)`` (was refused as 5-D): each block
    becomes a window, ``(B*blocks, heads, N, N)``, values exactly its ``attn``."""
    from timm.models.nest import Attention

    from anycapture.attention import AttentionRecorder
    from anycapture.scoped_capture import Capture

    torch.manual_seed(0)
    model = timm.create_model("nest_tiny", img_size=64, patch_size=4).eval()
    x = torch.randn(2, 3, 64, 64)
    recorder = AttentionRecorder(model)
    with torch.inference_mode(), recorder.recording():
        model(x)
    maps = recorder.take()
    for module in model.modules():
        if isinstance(module, Attention):
            module.fused_attn = False
    with torch.inference_mode(), Capture([Attention.forward], ["attn"]) as cap:
        model(x)
    raw = np.asarray(cap.records[0].values["Attention.forward.attn"])
    batch, heads, blocks, tokens = raw.shape[:4]
    got = next(iter(maps.values()))
    assert got.shape == (batch * blocks, heads, tokens, tokens) and blocks > 1
    assert np.array_equal(got, raw.swapaxes(1, 2).reshape(-1, heads, tokens, tokens))
