"""Inputs that would exhaust the machine or poison the numbers are refused up front,
in one line naming the fix (a usage error, exit 2), before any model loads."""

from __future__ import annotations

import math

import pytest

from anycapture.errors import UsageError
from anycapture.options import MAX_IMAGE_SIDE, CaptureOptions


def test_an_input_size_past_the_cap_is_refused() -> None:
    assert CaptureOptions(img_size=(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE)).img_size
    with pytest.raises(UsageError, match=r"--img-size 1600,1600 is over 1024 pixels a side"):
        CaptureOptions(img_size=(1600, 1600))


@pytest.mark.parametrize("flag", ["mean", "std"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_mean_or_std_that_is_not_finite_is_refused(flag: str, bad: float) -> None:
    """``--mean nan`` was run and then blamed on the model."""
    with pytest.raises(UsageError, match=rf"--{flag} .* must be finite numbers"):
        CaptureOptions(**{flag: (0.5, bad, 0.5)})
