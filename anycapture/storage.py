"""How captured values are stored: numpy copies by default, tensors on request.

Never imports torch: tensors are recognised by duck typing (``detach``/``cpu``),
so the capture core runs with only ``bytecode`` and ``numpy`` installed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import UsageError

__all__ = ["StoragePolicy"]


@dataclass(frozen=True)
class StoragePolicy:
    """What to keep of each captured value.

    Attributes:
        keep_tensors: keep torch tensors as tensors, on their device, instead of
            ``value.detach().cpu().numpy()``.
        keep_grad: with ``keep_tensors``, do not detach (the value stays in the
            autograd graph, so gradients can flow through it).
        float16: cast floating tensors and arrays to float16 (halves memory).
        max_calls: keep at most this many values per key, dropping the oldest.
    """

    keep_tensors: bool = False
    keep_grad: bool = False
    float16: bool = False
    max_calls: int | None = None

    def __post_init__(self) -> None:
        if self.keep_grad and not self.keep_tensors:
            raise UsageError("keep_grad=True needs keep_tensors=True (numpy arrays carry no grad)")
        if self.max_calls is not None and self.max_calls < 1:
            raise UsageError(f"max_calls must be a positive integer or None, got {self.max_calls}")

    def stores_unchanged(self, cls: type) -> bool:
        """Whether every value of type ``cls`` is stored as it is (no conversion).

        Lets recorders skip conversion by type: torch tensors always convert, and
        numpy arrays do when casting to float16.
        """
        if issubclass(cls, _CONTAINERS):
            return False  # may hold tensors: converted item by item
        torch = sys.modules.get("torch")
        if torch is not None and issubclass(cls, torch.Tensor):
            return False
        numpy = sys.modules.get("numpy")
        return not (self.float16 and numpy is not None and issubclass(cls, numpy.ndarray))

    def converter(self) -> Callable[[Any], Any]:
        """Return the function that turns a captured value into what is stored."""
        if self.keep_tensors:
            return _keep_tensor(self.keep_grad, self.float16)
        return _to_numpy_f16 if self.float16 else _to_numpy


_CONTAINERS = (tuple, list, dict)

# Each converter is one frame for any leaf value (no helper calls), so a recorder
# near the recursion limit costs as little as possible; containers recurse (as
# AnyCapture does: an HF attention returns ``(output, weights)``).


def _each(value: Any, convert: Callable[[Any], Any]) -> Any:
    if type(value) is dict:
        return {k: convert(v) for k, v in value.items()}
    return type(value)(convert(v) for v in value)


def _to_numpy(value: Any) -> Any:
    if type(value) in _CONTAINERS:
        return _each(value, _to_numpy)
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(value, torch.Tensor):
        return value
    tensor = value.detach()
    if (
        tensor.dtype.is_floating_point
        and tensor.dtype.itemsize == 2
        and str(tensor.dtype) != "torch.float16"
    ):
        tensor = tensor.float()  # bfloat16 (and other 16-bit floats numpy lacks)
    return tensor.cpu().numpy()


def _to_numpy_f16(value: Any) -> Any:
    if type(value) in _CONTAINERS:
        return _each(value, _to_numpy_f16)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        tensor = value.detach()
        if tensor.dtype.is_floating_point:
            tensor = tensor.half()
        return tensor.cpu().numpy()
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray) and value.dtype.kind == "f":
        return value.astype(numpy.float16)
    return value


def _keep_tensor(keep_grad: bool, float16: bool) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) in _CONTAINERS:
            return _each(value, convert)
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(value, torch.Tensor):
            numpy = sys.modules.get("numpy")
            if float16 and numpy is not None and isinstance(value, numpy.ndarray):
                return value.astype(numpy.float16) if value.dtype.kind == "f" else value
            return value
        tensor = value if keep_grad else value.detach()
        if float16 and tensor.dtype.is_floating_point:
            tensor = tensor.half()
        return tensor

    return convert
