"""Each capture source alone: it records while started and leaves nothing behind."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from anycapture.recorder import Hook, instrumented  # noqa: E402
from anycapture.sources import (  # noqa: E402
    LocalsSource,
    MultiheadSource,
    decorated_sites,
    find_sites,
)

MODELS = Path(__file__).resolve().parents[1] / "models"


def _untouched(function: object) -> bool:
    hub = instrumented(function)
    fresh = Hook()
    return (
        hub.function.__code__ is hub.original_code
        and not hub.listeners
        and hub.hook.record is fresh.record
        and hub.hook.append is fresh.append
    )


def test_locals_source_on_timm_attention() -> None:
    model = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=2).eval()
    source = LocalsSource(find_sites(model), mode="skip")
    fused = [block.attn.fused_attn for block in model.blocks]
    source.start()
    try:
        assert not any(block.attn.fused_attn for block in model.blocks)
        with torch.inference_mode():
            model(torch.rand(2, 3, 32, 32))
    finally:
        source.stop()
    taken = source.take()
    assert [name for name, _ in taken] == ["blocks.0.attn", "blocks.1.attn"]
    assert all(maps.shape == (2, 3, 5, 5) for _, maps in taken)
    assert source.take() == []  # taken once
    assert [block.attn.fused_attn for block in model.blocks] == fused
    assert _untouched(type(model.blocks[0].attn).forward)


def test_multihead_source_keeps_callers_outputs() -> None:
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    model = torch.nn.ModuleDict({"attn": mha})
    x = torch.rand(1, 4, 8)
    with torch.inference_mode():
        expected = mha(x, x, x, need_weights=False)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    (site,) = find_sites(model)
    source = MultiheadSource([site])
    source.start()
    try:
        with torch.inference_mode():
            got = mha(x, x, x, need_weights=False)
    finally:
        source.stop()
    assert got[1] is None and torch.allclose(got[0], expected[0], atol=1e-6)
    ((name, weights),) = source.take()
    assert name == "attn" and weights.shape == (1, 2, 4, 4)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert not mha._forward_hooks and not mha._forward_pre_hooks
    assert torch.backends.mha.get_fastpath_enabled() == fastpath


def test_get_local_sites_source_leaves_get_local_as_it_was() -> None:
    import anycapture

    sys.path.insert(0, str(MODELS))
    try:
        import seed_vit
    finally:
        sys.path.remove(str(MODELS))
    model = seed_vit.cnn()  # decorated 'feat' only: found through get_local
    sites = decorated_sites(model)
    assert [(s.name, s.var) for s in sites] == [("", "feat")]
    source = LocalsSource(sites, mode="pick")
    source.start()
    try:
        with torch.inference_mode():
            model(torch.rand(1, 3, 32, 32))
    finally:
        source.stop()
    with pytest.raises(anycapture.UsageError, match=r"ConvNet\.forward\.feat"):
        source.take()  # a feature map is not attention
    assert not anycapture.get_local.is_active and len(anycapture.get_local.cache) == 0
    assert _untouched(seed_vit.ConvNet.forward)
