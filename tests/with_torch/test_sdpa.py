"""The SDPA capture source: weights computed beside each call, outputs untouched."""

from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.functional import scaled_dot_product_attention as imported_sdpa  # noqa: E402

from anycapture.sources.sdpa import SdpaSource, attention_weights  # noqa: E402

TARGET = 3  # in KnownSdpa every query attends only to this token


class KnownSdpa(nn.Module):
    """SDPA-only attention whose map is known: a mask leaves one key per query."""

    def __init__(self, heads: int = 2, dim: int = 8) -> None:
        super().__init__()
        self.heads, self.qkv = heads, nn.Linear(dim, 3 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        mask = torch.full((tokens, tokens), float("-inf"))
        mask[:, TARGET] = 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return out.transpose(1, 2).reshape(batch, tokens, dim)


class ImportedByName(nn.Module):
    """Calls the function imported by name at module level, not through F."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x[:, None]
        return imported_sdpa(q, q, q, is_causal=True)[:, 0]


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([KnownSdpa(), KnownSdpa()])
        self.tail = ImportedByName()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return self.tail(x)


def _reference(q, k, v, **kwargs):
    """SDPA's own output from our weights, to compare with the real call."""
    weights = attention_weights(q, k, **{k_: v_ for k_, v_ in kwargs.items() if k_ != "dropout_p"})
    if kwargs.get("enable_gqa") and v.shape[-3] != q.shape[-3]:
        v = v.repeat_interleave(q.shape[-3] // v.shape[-3], dim=-3)
    return weights @ v.float()


@pytest.mark.parametrize(
    "case",
    ["plain", "bool_mask", "additive_mask", "causal", "scale", "gqa", "three_dim", "causal_rect"],
)
def test_weights_reproduce_sdpa_output(case: str) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 5, 8, generator=gen)
    k = torch.randn(2, 4, 7, 8, generator=gen)
    v = torch.randn(2, 4, 7, 8, generator=gen)
    kwargs: dict = {}
    if case == "bool_mask":
        kwargs["attn_mask"] = torch.rand(5, 7, generator=gen) > 0.3
        kwargs["attn_mask"][:, 0] = True
    elif case == "additive_mask":
        kwargs["attn_mask"] = torch.randn(2, 1, 5, 7, generator=gen)
    elif case == "causal":
        k, v = k[..., :5, :], v[..., :5, :]
        kwargs["is_causal"] = True
    elif case == "causal_rect":
        kwargs["is_causal"] = True  # top-left aligned, as SDPA does
    elif case == "scale":
        kwargs["scale"] = 0.05
    elif case == "gqa":
        k, v = k[:, :2], v[:, :2]
        kwargs["enable_gqa"] = True
    elif case == "three_dim":
        q, k, v = q[0], k[0], v[0]
    expected = F.scaled_dot_product_attention(q, k, v, **kwargs)
    assert torch.allclose(_reference(q, k, v, **kwargs), expected, atol=1e-5)
    weights = attention_weights(q, k, **kwargs)
    assert weights.dtype == torch.float32
    assert torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-5)


def test_fully_masked_row_gives_zeros() -> None:
    q = torch.randn(1, 1, 2, 4)
    mask = torch.tensor([[True, True], [False, False]])
    weights = attention_weights(q, q, mask)
    assert torch.equal(weights[0, 0, 1], torch.zeros(2))


def test_known_model_maps_names_and_bit_identical_outputs() -> None:
    torch.manual_seed(0)
    model = Net().eval()
    x = torch.randn(2, 6, 8)
    with torch.inference_mode():
        plain = model(x)
        source = SdpaSource(model).start()
        try:
            captured = model(x)
        finally:
            source.stop()
    assert torch.equal(plain, captured)  # bit-identical, not just close
    records = source.take()
    assert [name for name, _ in records] == ["blocks.0", "blocks.1", "tail"]
    for _, maps in records[:2]:
        assert maps.shape == (2, 2, 6, 6) and maps.dtype == np.float32
        expected = np.zeros((6, 6), np.float32)
        expected[:, TARGET] = 1.0
        np.testing.assert_array_equal(maps, np.broadcast_to(expected, maps.shape))
    causal = records[2][1]
    assert causal.shape == (2, 1, 6, 6)
    assert np.allclose(np.triu(causal[0, 0], 1), 0.0) and np.allclose(causal.sum(-1), 1.0)
    assert source.take() == []  # take forgets


def test_stop_restores_everything_and_is_idempotent() -> None:
    import sys

    original = F.scaled_dot_product_attention
    module = sys.modules[__name__]
    source = SdpaSource(nn.Linear(2, 2))
    source.start()
    assert F.scaled_dot_product_attention is not original
    assert module.imported_sdpa is not original  # patched where imported by name
    source.stop()
    source.stop()
    assert F.scaled_dot_product_attention is original
    assert torch._C._nn.scaled_dot_product_attention is original
    assert module.imported_sdpa is original
    q = torch.randn(1, 1, 3, 4)
    F.scaled_dot_product_attention(q, q, q)
    assert source.take() == []  # nothing recorded once stopped


def test_nested_sources_and_stop_order() -> None:
    original = F.scaled_dot_product_attention
    model = KnownSdpa()
    outer, inner = SdpaSource(model).start(), SdpaSource(model).start()
    with torch.no_grad():
        model(torch.randn(1, 5, 8))
    outer.stop()  # out of order: inner keeps recording
    with torch.no_grad():
        model(torch.randn(1, 5, 8))
    inner.stop()
    assert F.scaled_dot_product_attention is original
    assert len(outer.take()) == 1 and len(inner.take()) == 2


def test_other_threads_pass_through_unrecorded() -> None:
    model = KnownSdpa().eval()
    with SdpaSource(model) as source:
        thread = threading.Thread(target=lambda: model(torch.randn(1, 5, 8)))
        thread.start()
        thread.join()
        assert source.take() == []
        with torch.no_grad():
            model(torch.randn(1, 5, 8))
        assert [name for name, _ in source.take()] == [""]  # the root module


def test_exception_in_forward_leaves_nothing_installed() -> None:
    original = F.scaled_dot_product_attention
    model = KnownSdpa()
    with pytest.raises(RuntimeError), SdpaSource(model):
        model(torch.randn(1, 5, 7))  # wrong width: the Linear raises
    assert F.scaled_dot_product_attention is original


def test_bf16_model_maps_float32_and_outputs_identical() -> None:
    torch.manual_seed(0)
    model = Net().eval().to(torch.bfloat16)
    x = torch.randn(1, 6, 8, dtype=torch.bfloat16)
    with torch.inference_mode():
        plain = model(x)
        with SdpaSource(model) as source:
            captured = model(x)
    assert torch.equal(plain, captured)
    records = source.take()
    assert all(maps.dtype == np.float32 for _, maps in records)
    assert records[0][1][0, 0, :, TARGET].tolist() == [1.0] * 6


def test_multihead_attention_slow_path_matches_its_own_weights() -> None:
    """nn.MultiheadAttention calls SDPA inside F.multi_head_attention_forward."""
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        expected = mha(x, x, x, need_weights=True, average_attn_weights=False)[1]
        with SdpaSource(mha) as source:
            mha.train()  # the fast path (no SDPA call from Python) is for eval only
            mha.dropout = 0.0
            mha(x, x, x, need_weights=False)
    ((name, maps),) = source.take()
    assert name == ""
    np.testing.assert_allclose(maps, expected.numpy(), atol=1e-6)
