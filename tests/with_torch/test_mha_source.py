"""The MultiheadAttention source: weights recomputed beside each call, calls untouched."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from anycapture.sources.mha import MhaSource  # noqa: E402

CASES = {
    "plain": {},
    "batch_first": {"batch_first": True},
    "bias_kv_zero_attn": {"add_bias_kv": True, "add_zero_attn": True},
    "kdim_vdim": {"kdim": 6, "vdim": 5},
    "no_bias": {"bias": False},
}
MASKS = ["none", "bool", "float", "padding", "both", "three_dim"]


def _inputs(module: nn.MultiheadAttention, mask: str, gen: torch.Generator):
    length, source, batch = 4, 6, 2
    kdim = module.kdim
    shape_q = (batch, length, module.embed_dim) if module.batch_first else (length, batch, 8)
    shape_k = (batch, source, kdim) if module.batch_first else (source, batch, kdim)
    shape_v = (*shape_k[:-1], module.vdim)
    q = torch.randn(shape_q, generator=gen)
    k, v = torch.randn(shape_k, generator=gen), torch.randn(shape_v, generator=gen)
    kwargs: dict = {}
    if mask in ("bool", "both"):
        kwargs["attn_mask"] = torch.rand(length, source, generator=gen) > 0.6
        kwargs["attn_mask"][:, 0] = False
    if mask == "float":
        kwargs["attn_mask"] = torch.randn(length, source, generator=gen)
    if mask == "three_dim":
        kwargs["attn_mask"] = torch.randn(batch * module.num_heads, length, source, generator=gen)
    if mask in ("padding", "both"):
        kwargs["key_padding_mask"] = torch.tensor([[False] * 5 + [True], [False] * 6])
    return q, k, v, kwargs


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("case", list(CASES))
def test_weights_equal_the_modules_own(case: str, mask: str) -> None:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    module = nn.MultiheadAttention(8, 2, **CASES[case]).eval()
    q, k, v, kwargs = _inputs(module, mask, gen)
    with torch.no_grad():
        plain = module(q, k, v, need_weights=False, **kwargs)[0]
        expected = module(q, k, v, need_weights=True, average_attn_weights=False, **kwargs)[1]
        with MhaSource(module) as source:
            captured = module(q, k, v, need_weights=False, **kwargs)[0]
    assert torch.equal(plain, captured)
    ((name, maps),) = source.take()
    assert name == "" and maps.dtype == np.float32 and maps.shape == expected.shape
    np.testing.assert_allclose(maps, np.nan_to_num(expected.numpy()), atol=1e-6)


def test_unbatched_input_and_stop_removes_hooks() -> None:
    module = nn.MultiheadAttention(8, 2).eval()
    x = torch.randn(5, 8)
    with torch.no_grad():
        expected = module(x, x, x, average_attn_weights=False)[1]
        source = MhaSource(module).start()
        module(x, x, x)
        source.stop()
        source.stop()
        module(x, x, x)
    ((_, maps),) = source.take()
    np.testing.assert_allclose(maps[0], expected.numpy(), atol=1e-6)
    assert not module._forward_hooks
