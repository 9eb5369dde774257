"""Torch values: numpy by default, tensors on request, bf16/fp16, grad, no_grad and
torch.compile keep working with capture on and off."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from anycapture import capture  # noqa: E402
from anycapture.decorator import GetLocal  # noqa: E402


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):  # type: ignore[no-untyped-def]
        attn = torch.softmax(self.lin(x), dim=-1)
        return attn * 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_numpy_by_default_for_every_float_dtype(gl: GetLocal, dtype) -> None:  # type: ignore[no-untyped-def]
    @gl("t")
    def f(x):  # type: ignore[no-untyped-def]
        t = x * 1
        return t.sum()

    gl.activate()
    f(torch.ones(2, 3, dtype=dtype, requires_grad=dtype == torch.float32))
    (stored,) = next(iter(gl.cache.values()))
    assert isinstance(stored, np.ndarray) and stored.shape == (2, 3)
    assert stored.dtype == (np.float32 if dtype == torch.bfloat16 else np.dtype(str(dtype)[6:]))


def test_keep_tensors_float16_and_grad(gl: GetLocal) -> None:
    @gl("t")
    def f(x):  # type: ignore[no-untyped-def]
        t = x * 3
        return t.sum()

    gl.activate(keep_tensors=True, keep_grad=True)
    x = torch.ones(3, requires_grad=True)
    f(x)
    (kept,) = next(iter(gl.cache.values()))
    assert isinstance(kept, torch.Tensor) and kept.requires_grad
    kept.sum().backward()  # the stored value is still in the graph
    assert torch.equal(x.grad, torch.full((3,), 3.0))
    gl.clear()
    gl.activate(keep_tensors=True, float16=True)
    f(torch.ones(3))
    (half,) = next(iter(gl.cache.values()))
    assert half.dtype == torch.float16 and not half.requires_grad


def test_no_grad_wrapped_forward(gl: GetLocal) -> None:
    class M(torch.nn.Module):
        @gl("attn")
        @torch.no_grad()
        def forward(self, x):  # type: ignore[no-untyped-def]
            attn = x + 1
            return attn

    gl.activate()
    out = M()(torch.zeros(2, requires_grad=True))
    assert not out.requires_grad  # the no_grad wrapper still applies
    assert next(iter(gl.cache.values()))[0].tolist() == [1.0, 1.0]


@pytest.mark.slow
def test_torch_compile_with_capture_on_and_off() -> None:
    model = Tiny().eval()
    x = torch.randn(2, 4)
    expected = model(x)
    compiled = torch.compile(model, backend="eager")
    torch.testing.assert_close(compiled(x), expected)  # off
    with capture(Tiny.forward, "attn") as cap:
        torch.testing.assert_close(compiled(x), expected)  # on
    torch.testing.assert_close(compiled(x), expected)  # off again
    assert Tiny.forward.__code__ is Tiny.forward.__code__
    (attn,) = cap.cache["Tiny.forward.attn"]
    np.testing.assert_allclose(attn * 2, expected.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.eye(3).to_sparse(),
        lambda: torch.empty(2, 2, device="meta"),
        lambda: torch.quantize_per_tensor(torch.rand(3), 0.1, 0, torch.qint8),
    ],
    ids=["sparse", "meta", "qint8"],
)
def test_tensors_numpy_cannot_take_are_skipped_not_raised(gl: GetLocal, make) -> None:  # type: ignore[no-untyped-def]
    from anycapture.recorder import CaptureWarning

    @gl("value")
    def f(ok: bool):  # type: ignore[no-untyped-def]
        value = torch.ones(2) if ok else make()
        return value

    gl.activate()
    with pytest.warns(CaptureWarning, match="cannot be stored was skipped"):
        assert f(False) is not None  # the user's call returns
    f(True)
    (values,) = gl.cache.values()
    assert len(values) == 1 and np.array_equal(values[0], np.ones(2))
