"""The capture-source interface, and the check that a captured value is attention."""

from __future__ import annotations

import warnings
from typing import Any, Protocol

import numpy as np

from ..errors import UsageError

__all__ = [
    "CaptureSource",
    "NoAttentionError",
    "NotAttentionError",
    "as_attention",
    "is_half_float",
]

# Softmax rows sum to 1 within about 1e-6 in float32 (1e-5 over thousands of tokens),
# and within about 2e-3 in float16/bfloat16 (autocast, a half model): each dtype
# is checked with its own margin.
ROW_SUM_TOLERANCE = 1e-3
HALF_ROW_SUM_TOLERANCE = 1e-2
MAX_ZERO_ROW_SHARE = 0.5  # zero rows allowed: fully masked queries, never most of a map
_HALF_DTYPES = ("float16", "torch.float16", "torch.bfloat16")


class CaptureSource(Protocol):
    """Records attention while started; ``take`` hands over what it recorded.

    ``take()`` returns ``(layer name, value)`` pairs in the order the calls
    returned since the last ``take`` (or ``start``) and forgets them.  ``stop``
    restores everything ``start`` changed and is safe to call twice.
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def take(self) -> list[tuple[str, Any]]: ...


class NoAttentionError(UsageError):
    """Nothing to capture, or nothing was captured; the message says why and the fix."""


class NotAttentionError(NoAttentionError):
    """A captured value is not attention weights (what is drawn must be attention)."""


def as_attention(value: Any, key: str, half: bool | None = None) -> np.ndarray:
    """``value`` as float32 ``(batch, heads, queries, tokens)`` attention weights.

    Refuses (naming ``key``, the shape and what was expected) a value whose rows are
    not non-negative and summing to ~1 over the last axis (NaN included); all-zero rows
    (fully masked queries) are allowed, unless they are most of the map.  ``half``:
    computed in a 16-bit float, so checked
    with :data:`HALF_ROW_SUM_TOLERANCE` (bfloat16 arrives as float32: numpy has
    none); None tells from ``value``'s dtype.
    """
    if half is None:
        half = is_half_float(value)
    tolerance = HALF_ROW_SUM_TOLERANCE if half else ROW_SUM_TOLERANCE
    if value is None or np.ndim(value) == 0:
        raise NotAttentionError(
            f"{key} holds {value!r}, not an attention map: the code path that ran does not "
            "compute the weights (fused attention?); capture the softmax output instead"
        )
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise NotAttentionError(
            f"{key} has shape {tuple(array.shape)}; attention maps must be "
            "(batch, heads, queries, tokens)"
        )
    sums = array.sum(axis=-1)  # float32, pairwise: far inside the tolerance
    empty = sums == 0
    is_weights = bool(array.min(initial=0.0) >= -1e-6) and bool(
        np.all((np.abs(sums - 1) <= tolerance) | empty)
    )
    if not is_weights:
        with warnings.catch_warnings():  # an all-NaN map: its range reads nan..nan
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = float(np.nanmin(array)), float(np.nanmax(array))
            low_sum, high_sum = float(np.nanmin(sums)), float(np.nanmax(sums))
        raise NotAttentionError(
            f"{key} (shape {tuple(array.shape)}) is not attention: expected rows of "
            f"non-negative weights summing to 1 over the last axis, got values "
            f"{low:.3g}..{high:.3g} and row sums {low_sum:.3g}..{high_sum:.3g}; name the softmax "
            "output with --capture 'package.module:Class.method:variable'"
        )
    # fully masked queries (padding) give a few zero rows; a map of mostly zero rows
    # is an untrained gate or an unused branch, not attention
    if empty.mean() > MAX_ZERO_ROW_SHARE:
        raise NotAttentionError(
            f"{key} (shape {tuple(array.shape)}) is not attention: {int(empty.sum())} of "
            f"{empty.size} rows are all zeros (attention rows sum to 1; an untrained gate "
            "or an unused branch?); name the softmax output with "
            "--capture 'package.module:Class.method:variable'"
        )
    return array


def is_half_float(value: Any) -> bool:
    """Whether ``value`` (a numpy array or a torch tensor) holds float16 or bfloat16."""
    return str(getattr(value, "dtype", "")) in _HALF_DTYPES
