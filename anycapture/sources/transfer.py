"""A forward pass's maps leave the device together: one copy, one wait.

Sources keep what they record as tensors on the model's device while the model
runs (a per-layer ``.cpu()`` would make the host wait for the device at every
layer); :func:`to_host` then packs a batch's tensors into one buffer per device,
copies it into page-locked host memory without blocking, waits once, and hands
back numpy arrays.  On CPU there is nothing to copy: the arrays share the
tensors' memory.  torch is imported by whoever made the tensors.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["copy_to_host", "named_to_host", "to_host"]


def to_host(values: list[Any]) -> list[Any]:
    """``values`` with every torch tensor as a numpy array (bfloat16 as float32), the
    tensors copied to the host in one :func:`copy_to_host` call; others unchanged."""
    torch = sys.modules.get("torch")
    if torch is None:
        return list(values)
    at = [i for i, value in enumerate(values) if isinstance(value, torch.Tensor)]
    if not at:
        return list(values)
    host = copy_to_host([values[i].detach() for i in at])
    converted = list(values)
    for i, tensor in zip(at, host, strict=True):
        converted[i] = _numpy(tensor, torch)
    return converted


def named_to_host(records: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``(name, value)`` records with their values on the host, in one copy."""
    values = to_host([value for _, value in records])
    return [(name, value) for (name, _), value in zip(records, values, strict=True)]


def copy_to_host(tensors: list[Any]) -> list[Any]:
    """The batch's one device-to-host transfer (per device): tensors on the host."""
    by_device: dict[Any, list[int]] = {}
    for i, tensor in enumerate(tensors):
        if tensor.device.type != "cpu":
            by_device.setdefault(tensor.device, []).append(i)
    host = list(tensors)
    for indices in by_device.values():
        for i, copied in zip(indices, packed_copy([tensors[i] for i in indices]), strict=True):
            host[i] = copied
    return host


def packed_copy(tensors: list[Any]) -> list[Any]:
    """Tensors of one device, flattened into one buffer (float32 unless they share a
    dtype), copied to the host at once and split back into their shapes."""
    import torch

    dtypes = {t.dtype for t in tensors}
    dtype = dtypes.pop() if len(dtypes) == 1 else torch.float32
    with torch.no_grad():
        flat = torch.cat([t.reshape(-1).to(dtype) for t in tensors])
        pinned = flat.device.type == "cuda"  # page-locked: the copy need not block
        buffer = torch.empty(flat.shape, dtype=dtype, pin_memory=pinned)
        buffer.copy_(flat, non_blocking=pinned)
        if pinned:
            torch.cuda.current_stream(flat.device).synchronize()  # the one wait
    parts = torch.split(buffer, [t.numel() for t in tensors])
    return [part.view(t.shape) for part, t in zip(parts, tensors, strict=True)]


def _numpy(tensor: Any, torch: Any) -> np.ndarray:
    if tensor.dtype.is_floating_point and tensor.dtype.itemsize == 2:
        if tensor.dtype != torch.float16:
            tensor = tensor.float()  # bfloat16: numpy has none
    array: np.ndarray = tensor.numpy()
    return array
