"""What is drawn as attention must be attention: the check every source's maps pass."""

from __future__ import annotations

import numpy as np
import pytest

from anycapture.errors import UsageError
from anycapture.sources.base import as_attention


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_softmax_rows_pass_and_come_back_4d_float32() -> None:
    maps = _softmax(np.random.default_rng(0).normal(size=(2, 3, 5, 5)))
    assert as_attention(maps, "k").dtype == np.float32
    assert as_attention(maps[0], "k").shape == (1, 3, 5, 5)  # unbatched: batch of one
    half = maps.astype(np.float16)  # stored as float16: rows sum to 1 within ~1e-3
    assert as_attention(half, "k").shape == maps.shape


def test_fully_masked_rows_are_allowed() -> None:
    maps = _softmax(np.zeros((1, 1, 4, 4)))
    maps[0, 0, 3] = 0.0
    assert as_attention(maps, "k").shape == (1, 1, 4, 4)
    half = np.pad(np.eye(4)[None, None], ((0, 0), (0, 0), (0, 4), (0, 0)))
    assert as_attention(half, "k").shape == (1, 1, 8, 4)  # half the queries masked


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.random.default_rng(1).normal(size=(1, 4, 8, 8)), r"k \(shape \(1, 4, 8, 8\)\) is not"),
        (np.full((1, 2, 3, 3), 0.5), "row sums 1.5..1.5"),
        (np.ones((2, 3)), r"has shape \(2, 3\)"),
        (None, "holds None"),
        (np.zeros((1, 16, 56, 56), dtype=np.float32), "896 of 896 rows are all zeros"),
        (np.pad(np.eye(3)[None, None], ((0, 0), (0, 0), (0, 5), (0, 0))), "5 of 8 rows"),
        (np.full((1, 2, 3, 3), np.nan), "is not attention"),
        (np.array([[[[1.5, -0.5], [0.5, 0.5]]]]), "values -0.5..1.5"),
    ],
    ids=[
        "feature-map",
        "rows-not-summing-to-1",
        "2-d",
        "none",
        "zeros",
        "mostly-zero",
        "nan",
        "negative",
    ],
)
def test_non_attention_is_refused_as_a_usage_error(value: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        as_attention(value, "k")


def test_rows_are_checked_with_their_dtypes_margin() -> None:
    maps = _softmax(np.random.default_rng(2).normal(size=(1, 2, 6, 6)))
    off = maps * 1.004  # rows summing to 1.004: what 16-bit rounding can give
    assert as_attention(off.astype(np.float16), "k").dtype == np.float32  # float16: fine
    assert as_attention(off, "k", half=True).shape == maps.shape  # bfloat16, as float32
    with pytest.raises(UsageError, match=r"is not attention"):  # float32 this far off
        as_attention(off, "k")
    with pytest.raises(UsageError):  # past the half margin too
        as_attention((maps * 1.02).astype(np.float16), "k")
    assert as_attention(maps * (1 + 5e-4), "k").shape == maps.shape  # float32 rounding
