"""Map arithmetic (numpy only): rollout against a hand computation, masks, layouts."""

from __future__ import annotations

import numpy as np
import pytest

from anycapture.analysis import fuse_heads, mass_mask, prefix_maps, rollout
from anycapture.layout import TokenLayout

A1 = np.array([[[0.5, 0.5], [0.2, 0.8]]])
A2 = np.array([[[1.0, 0.0], [0.5, 0.5]]])


def test_rollout_matches_hand_computation() -> None:
    # (A + I) row-normalised: A1' = [[.75, .25], [.1, .9]], A2' = [[1, 0], [.25, .75]]
    # R = A2' @ A1' = [[.75, .25], [.2625, .7375]]
    expected = np.array([[0.75, 0.25], [0.2625, 0.7375]])
    np.testing.assert_allclose(rollout([A1, A2]), expected)
    np.testing.assert_allclose(rollout([A1, A2]).sum(axis=1), 1.0)  # rows, not columns


def test_rollout_fusion_and_discard() -> None:
    two_heads = np.concatenate([A1, A2])  # heads of one layer
    np.testing.assert_allclose(fuse_heads(two_heads, "max"), [[1.0, 0.5], [0.5, 0.8]])
    np.testing.assert_allclose(fuse_heads(two_heads, "min"), [[0.5, 0.0], [0.2, 0.5]])
    # discard half of the 4 entries, but never attention to token 0 (column 0)
    fused = np.array([[[0.1, 0.9], [0.3, 0.7]]])
    # weakest two: 0.1 (column 0, kept) and 0.3 (column 0, kept): nothing dropped
    np.testing.assert_allclose(rollout([fused], discard_ratio=0.5), rollout([fused]))
    fused = np.array([[[0.9, 0.1], [0.7, 0.3]]])
    # weakest two: 0.1 at (0,1) and 0.3 at (1,1): both dropped -> A = [[.9, 0], [.7, 0]]
    dropped = rollout([fused], discard_ratio=0.5)
    expected = np.array([[1.9, 0.0], [0.7, 1.0]])
    np.testing.assert_allclose(dropped, expected / expected.sum(axis=1, keepdims=True))
    with pytest.raises(ValueError, match="square maps"):
        rollout([A1, np.ones((1, 3, 3))])
    with pytest.raises(ValueError, match="head fusion"):
        rollout([A1], fusion="median")


def test_mass_mask_keeps_smallest_set() -> None:
    weights = np.array([[0.5, 0.1], [0.3, 0.1]])
    assert mass_mask(weights, 0.5).tolist() == [[True, False], [False, False]]
    assert mass_mask(weights, 0.8).tolist() == [[True, False], [True, False]]
    assert mass_mask(weights, 1.0).all()


def test_prefix_maps_per_head_and_mean() -> None:
    layout = TokenLayout(2, (1, 3))
    maps = np.zeros((2, 5, 5))
    maps[0, 1, 2:] = [1, 0, 0]  # head 0: the dist token looks at patch 0
    maps[1, 1, 2:] = [0, 0, 1]  # head 1: at patch 2
    grids = prefix_maps(maps, layout, token=1)
    assert grids.shape == (3, 1, 3)
    np.testing.assert_allclose(grids[2], [[0.5, 0, 0.5]])
    with pytest.raises(ValueError, match=r"0 \(cls\), 1 \(dist\)"):
        prefix_maps(maps, layout, token=2)


def test_layout_infer_and_for_tokens() -> None:
    assert TokenLayout.infer(197) == TokenLayout(1, (14, 14))
    assert TokenLayout.infer(49) == TokenLayout(0, (7, 7))
    assert TokenLayout.infer(1 + 3 * 5, (48, 80)) == TokenLayout(1, (3, 5))
    layout = TokenLayout(1, (14, 14))
    assert layout.for_tokens(197) is layout
    assert layout.for_tokens(196) == TokenLayout(0, (14, 14))
    assert layout.for_tokens(49) is None
    assert TokenLayout(5, (2, 2)).prefix_names == ("cls", "reg0", "reg1", "reg2", "reg3")
