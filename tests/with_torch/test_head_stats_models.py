"""Distance and entropy of a captured model whose attention is known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")

from PIL import Image

import anycapture
from anycapture.head_stats import per_layer
from tests.models.known import offset


def test_offset_model_statistics_by_hand() -> None:
    result = anycapture.attention_maps(offset(), Image.new("RGB", (80, 48), "gray"))
    layers = list(result.layers.items())
    distance = per_layer("distance", layers, result.layout)
    entropy = per_layer("entropy", layers, result.layout)
    # head 0: one column right, wrapping: 4 of 5 columns 16 px away, the last 64 px
    # head 1: half on itself (0 px), half one row down: 16, 16, then 32 px (wrapping)
    expected_distance = [(4 * 16 + 64) / 5, 0.5 * (16 + 16 + 32) / 3]
    expected_entropy = [0.0, math.log(2)]  # CLS weight renormalised away in head 0
    assert len(distance) == 2
    for layer in range(2):
        np.testing.assert_allclose(distance[layer], expected_distance, rtol=1e-6)
        np.testing.assert_allclose(entropy[layer], expected_entropy, atol=1e-6)


def test_notebook_figures_of_the_statistics() -> None:
    from anycapture.errors import UsageError

    result = anycapture.attention_maps(offset(), Image.new("RGB", (80, 48), "gray"))
    figure = anycapture.figure("entropy", result, title="offset")
    axis = figure.axes[0]
    assert axis.get_ylabel() == "attention entropy (nats)"
    assert [round(y, 4) for y in axis.lines[0].get_ydata()] == [round(math.log(2) / 2, 4)] * 2
    with pytest.raises(UsageError, match=r"anycapture\.explain\.explain\(model"):
        anycapture.figure("explain", result)


def test_windowed_layers_have_no_statistics() -> None:
    """Swin: a window's 49 tokens are not the image's patch grid, so only the last
    stage (one window over the whole image) gets values."""
    timm = pytest.importorskip("timm")

    model = timm.create_model(
        "swin_tiny_patch4_window7_224", pretrained=False, depths=(1, 1, 1, 1)
    ).eval()
    result = anycapture.attention_maps(model, Image.new("RGB", (224, 224), "gray"))
    figure = anycapture.figure("distance", result)
    assert list(figure.axes[0].lines[0].get_xdata()) == [3]  # the head-mean line
    (mean,) = figure.axes[0].lines[0].get_ydata()
    assert 0 < mean < 224
