"""Computations on attention maps (numpy only): head fusion, prefix-token maps,
attention rollout and mass thresholds.  Bad arguments raise UsageError (a ValueError)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import UsageError
from .layout import TokenLayout

__all__ = ["FUSIONS", "fuse_heads", "mass_mask", "prefix_maps", "rollout"]

FUSIONS = ("mean", "max", "min")


def fuse_heads(maps: np.ndarray, fusion: str = "mean") -> np.ndarray:
    """Combine ``(heads, Q, N)`` into ``(Q, N)`` by mean, max or min over heads."""
    if fusion not in FUSIONS:
        raise UsageError(f"head fusion {fusion!r}: choose mean, max or min")
    return getattr(maps, fusion)(axis=0)


def prefix_maps(maps: np.ndarray, layout: TokenLayout, token: int = 0) -> np.ndarray:
    """Attention from prefix token ``token`` to the patches, per head and averaged.

    Returns ``(heads + 1, rows, cols)``: each head, then the head mean.
    """
    if not 0 <= token < layout.prefix_tokens:
        names = ", ".join(f"{i} ({n})" for i, n in enumerate(layout.prefix_names)) or "none"
        raise UsageError(f"--token {token}: the model's prefix tokens are {names}")
    rows = maps[:, token, :]
    _, grid = layout.split(np.concatenate([rows, rows.mean(axis=0, keepdims=True)]))
    return grid


def rollout(
    layers: Sequence[np.ndarray], fusion: str = "mean", discard_ratio: float = 0.0
) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020) over ``(heads, N, N)`` layers.

    Per layer: fuse the heads; optionally zero the weakest ``discard_ratio`` of the
    entries (never the attention to token 0, as in vit-explain); add the identity
    for the residual connection; renormalise each *row* to sum to 1.  The rollout
    is the product, last layer on the left: ``R = A_L ... A_2 A_1``.
    """
    if not 0.0 <= discard_ratio < 1.0:
        raise UsageError(f"discard ratio {discard_ratio} must be in [0, 1)")
    if not layers:
        raise UsageError("rollout needs at least one layer")
    tokens = layers[0].shape[-1]
    result = np.eye(tokens, dtype=np.float64)
    for maps in layers:
        if maps.shape[-2:] != (tokens, tokens):
            raise UsageError(
                f"rollout needs square maps of {tokens} tokens in every layer, got {maps.shape}"
            )
        fused = fuse_heads(maps.astype(np.float64), fusion)
        if discard_ratio > 0:
            flat = fused.reshape(-1).copy()
            count = int(flat.size * discard_ratio)
            weakest = np.argpartition(flat, count)[:count] if count else np.array([], int)
            weakest = weakest[weakest % tokens != 0]  # keep attention to token 0
            flat[weakest] = 0.0
            fused = flat.reshape(tokens, tokens)
        with_residual = fused + np.eye(tokens)
        with_residual /= with_residual.sum(axis=-1, keepdims=True)
        result = with_residual @ result
    return result


def mass_mask(weights: np.ndarray, mass: float) -> np.ndarray:
    """The smallest set of entries holding ``mass`` (0..1) of the total weight (DINO)."""
    if not 0.0 < mass <= 1.0:
        raise UsageError(f"--threshold {mass} must be in (0, 1]")
    flat = weights.reshape(-1)
    order = np.argsort(flat)[::-1]
    cumulative = np.cumsum(flat[order]) / max(float(flat.sum()), 1e-12)
    keep = np.zeros(flat.shape, dtype=bool)
    keep[order[: int(np.searchsorted(cumulative, mass)) + 1]] = True
    return keep.reshape(weights.shape)
