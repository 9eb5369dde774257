"""Maps leave the device once per forward pass (sources/transfer.py), and are the
same values as when each layer was converted on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
from torch import nn  # noqa: E402

from anycapture.attention import AttentionRecorder  # noqa: E402
from anycapture.images import Preprocessor  # noqa: E402
from anycapture.loading import load_model  # noqa: E402
from anycapture.run.decode import decode  # noqa: E402
from anycapture.run.forward import forward_views  # noqa: E402
from anycapture.sources import locals as locals_source  # noqa: E402
from anycapture.sources import mha, sdpa, transfer  # noqa: E402
from anycapture.storage import StoragePolicy  # noqa: E402

CAT = Path(__file__).resolve().parents[2] / "assets" / "cat.jpg"


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patch the one transfer: each call's number of tensors."""
    calls: list[int] = []
    copy = transfer.copy_to_host

    def counted(tensors: list[Any]) -> list[Any]:
        calls.append(len(tensors))
        return copy(tensors)

    monkeypatch.setattr(transfer, "copy_to_host", counted)
    return calls


def _per_layer(values: list[Any]) -> list[Any]:
    """What sources did before: each value converted on its own (``.cpu().numpy()``)."""
    convert = StoragePolicy().converter()
    return [convert(value) for value in values]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [None, "bfloat16"])
def test_one_copy_per_batch_and_the_same_maps(monkeypatch, dtype: str | None) -> None:
    loaded = load_model("vit_tiny", pretrained=False, dtype=dtype)
    recorder = AttentionRecorder(loaded.module)
    preprocessor = Preprocessor.for_model(loaded.module)
    views = [decode(CAT, preprocessor)[1], decode(CAT, preprocessor)[1].rotate(30)]  # type: ignore[index]
    calls = _counting(monkeypatch)
    batched = [forward_views(loaded.module, recorder, preprocessor, views, "cpu", dtype)]
    batched.append(forward_views(loaded.module, recorder, preprocessor, views[:1], "cpu", dtype))
    assert calls == [12, 12]  # two forward passes: one transfer each, all 12 layers in it

    monkeypatch.setattr(locals_source, "to_host", _per_layer)
    for maps, batch in zip(batched, (views, views[:1]), strict=True):
        alone = forward_views(loaded.module, recorder, preprocessor, batch, "cpu", dtype)
        assert list(alone) == list(maps) and len(maps) == 12
        for name in maps:
            assert maps[name].dtype == np.float32
            assert np.array_equal(maps[name], alone[name])  # exactly
    assert calls == [12, 12]  # the per-layer path does not go through it


class _TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.MultiheadAttention(16, 2, batch_first=True)
        self.second = nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, x: Any) -> Any:
        x = self.first(x, x, x, need_weights=False)[0]
        return self.second(x, x, x, need_weights=False)[0]


def test_multihead_and_sdpa_sources_copy_once(monkeypatch) -> None:
    torch.manual_seed(0)
    model = _TwoLayers().eval()
    x = torch.randn(3, 5, 16)
    calls = _counting(monkeypatch)
    source = mha.MhaSource(model, [("first", model.first), ("second", model.second)])
    with torch.no_grad(), source:
        model(x)
    taken = source.take()
    assert calls == [2] and [name for name, _ in taken] == ["first", "second"]
    for _, weights in taken:
        assert weights.shape == (3, 2, 5, 5)
        assert np.allclose(weights.sum(-1), 1.0, atol=1e-5)

    def attend(q: Any, k: Any, v: Any) -> Any:
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    calls.clear()
    fused = sdpa.SdpaSource(nn.Identity())
    fused.start()
    try:
        q = torch.randn(2, 4, 6, 8)
        attend(q, q, q)
        attend(q[:1], q[:1], q[:1])
    finally:
        fused.stop()
    maps = fused.take()
    assert calls == [2] and [m.shape for _, m in maps] == [(2, 4, 6, 6), (1, 4, 6, 6)]


def test_packed_copy_keeps_every_value_and_shape() -> None:
    torch.manual_seed(0)
    tensors = [
        torch.rand(2, 3, 5, 5),
        torch.rand(1, 4, 7).to(torch.bfloat16),
        torch.rand(6, 2, 2, 2).half(),
    ]
    copied = transfer.packed_copy(tensors)  # mixed dtypes: one float32 buffer
    assert [c.shape for c in copied] == [t.shape for t in tensors]
    assert {c.dtype for c in copied} == {torch.float32}
    assert len({c.untyped_storage().data_ptr() for c in copied}) == 1  # one buffer
    for c, t in zip(copied, tensors, strict=True):
        assert torch.equal(c, t.float())
    same = transfer.packed_copy([t.to(torch.bfloat16) for t in tensors])
    assert {c.dtype for c in same} == {torch.bfloat16}  # one dtype: copied as it is
    host = transfer.copy_to_host(tensors)  # on the host: nothing to copy
    assert all(h is t for h, t in zip(host, tensors, strict=True))
    arrays = transfer.to_host([tensors[1], "not a tensor", tensors[2]])
    assert arrays[1] == "not a tensor"
    assert arrays[0].dtype == np.float32 and arrays[2].dtype == np.float16


def test_values_recorded_in_half_are_checked_as_half() -> None:
    rows = torch.softmax(torch.randn(1, 2, 4, 4), -1)
    on_host = locals_source._on_host(
        {"A.attn": [("a", rows.to(torch.bfloat16)), ("b", rows), ("c", rows.half())]}
    )
    values = on_host["A.attn"]
    assert [(layer, half) for layer, _, half in values] == [("a", True), ("b", False), ("c", True)]
    assert [v.dtype for _, v, _ in values] == [np.float32, np.float32, np.float16]
