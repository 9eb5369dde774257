"""Mean attention distance and entropy against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anycapture.head_stats import (
    aggregate,
    as_json,
    attention_distance,
    attention_entropy,
    per_layer,
)
from anycapture.layout import TokenLayout

LAYOUT = TokenLayout(1, (3, 5), ("cls",), (16, 16))


def uniform_maps(prefix_weight: float) -> np.ndarray:
    """One head: every query gives ``prefix_weight`` to CLS and the rest evenly to patches."""
    tokens = LAYOUT.num_tokens
    maps = np.full((1, tokens, tokens), (1 - prefix_weight) / LAYOUT.num_patches)
    maps[:, :, 0] = prefix_weight
    return maps


def test_uniform_attention_by_hand() -> None:
    centres = [(16 * r + 8, 16 * c + 8) for r in range(3) for c in range(5)]
    pairs = [math.dist(a, b) for a in centres for b in centres]
    expected = sum(pairs) / len(pairs)  # each query: the mean distance to all 15 patches
    for prefix_weight in (0.0, 0.7):  # renormalised over the patches: same values
        maps = uniform_maps(prefix_weight)
        assert attention_distance(maps, LAYOUT)[0] == pytest.approx(expected)
        assert attention_entropy(maps, LAYOUT)[0] == pytest.approx(math.log(15))


def test_distance_in_input_pixels_of_non_square_patches() -> None:
    layout = TokenLayout(0, (2, 2), (), (10, 30))
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 1] = maps[0, 1, 0] = 1.0  # along a row: 30 px
    maps[0, 2, 0] = maps[0, 3, 1] = 1.0  # along a column: 10 px
    assert attention_distance(maps, layout)[0] == pytest.approx(20.0)
    assert attention_entropy(maps, layout)[0] == pytest.approx(0.0)
    # without the patch size, the input size gives it
    bare = TokenLayout(0, (2, 2))
    assert attention_distance(maps, bare, input_hw=(20, 60))[0] == pytest.approx(20.0)


def test_queries_attending_only_to_prefix_tokens_are_left_out() -> None:
    maps = np.zeros((2, LAYOUT.num_tokens, LAYOUT.num_tokens))
    maps[:, :, 0] = 1.0  # everyone on CLS ...
    maps[0, 1:, 0] = 0.0
    maps[0, 1:, 1] = 1.0  # ... except head 0's patch queries, on patch (0, 0)
    maps[0, 1, :] = 0.0
    maps[0, 1, 0] = 1.0  # and patch (0, 0) itself on CLS: left out
    distance = attention_distance(maps, LAYOUT)
    centres = [(16 * r + 8, 16 * c + 8) for r in range(3) for c in range(5)]
    expected = sum(math.dist(centres[0], p) for p in centres[1:]) / 14
    assert distance[0] == pytest.approx(expected)
    assert np.isnan(distance[1])  # no query gave the patches any weight
    assert as_json([distance]) == [[round(expected, 4), None]]


def test_layers_without_patch_queries_have_no_value() -> None:
    class_attention = np.full((2, 1, LAYOUT.num_tokens), 1 / LAYOUT.num_tokens)
    patches_only = np.full((1, 15, 15), 1 / 15)  # a layer before CLS joins (as in CaiT)
    values = per_layer("entropy", [("a", class_attention), ("b", patches_only)], LAYOUT)
    assert values[0] is None
    assert values[1] == pytest.approx([math.log(15)])


def test_aggregate_mean_and_spread_across_images() -> None:
    first = [np.array([1.0, 2.0]), None]
    second = [np.array([3.0, np.nan]), None]
    third = [np.array([5.0, 4.0]), None]
    mean, spread = aggregate([first, second, third])
    np.testing.assert_allclose(mean[0], [3.0, 3.0])
    np.testing.assert_allclose(spread[0], [np.std([1, 3, 5]), 1.0])
    assert mean[1] is None and spread[1] is None
