"""Per-head statistics of attention maps (numpy only): mean attention distance (the
ViT paper's Fig. 7) in model-input pixels, and attention entropy in nats.

Both use the same distribution: for each patch query, its weights over the patch
keys, prefix keys (CLS, distillation, registers) left out and the rest renormalised
to sum to 1.  A query that gives the patches no weight at all is left out; a head
where every query does so has no value (``nan``, ``None`` in JSON).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .layout import TokenLayout

__all__ = [
    "STATISTICS",
    "aggregate",
    "as_json",
    "attention_distance",
    "attention_entropy",
    "patch_distribution",
    "per_layer",
]


def patch_distribution(
    maps: np.ndarray, layout: TokenLayout
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(heads, P, P)`` patch-to-patch weights renormalised over the patch keys, and a
    ``(heads, P)`` mask of the queries that gave the patches any weight; None for a
    layer without patch queries over the layout's tokens (class attention, windows)."""
    if maps.ndim != 3 or maps.shape[-2] != maps.shape[-1] or maps.shape[-1] != layout.num_tokens:
        return None
    prefix = layout.prefix_tokens
    weights = maps[:, prefix:, prefix:].astype(np.float64)
    mass = weights.sum(axis=-1, keepdims=True)
    valid = mass[..., 0] > 0
    return weights / np.where(mass > 0, mass, 1.0), valid


def patch_centres(layout: TokenLayout, input_hw: tuple[int, int] | None = None) -> np.ndarray:
    """``(P, 2)``: each patch's centre (y, x) in model-input pixels, row-major."""
    if layout.patch_size is not None:
        size_y, size_x = (float(s) for s in layout.patch_size)
    elif input_hw is not None:
        size_y, size_x = input_hw[0] / layout.grid[0], input_hw[1] / layout.grid[1]
    else:
        raise ValueError("distance in pixels needs the patch size or the model's input size")
    rows, cols = np.mgrid[0 : layout.grid[0], 0 : layout.grid[1]]
    return np.stack([(rows.ravel() + 0.5) * size_y, (cols.ravel() + 0.5) * size_x], axis=1)


def _mean_over_valid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    count = valid.sum(axis=-1)
    total = np.where(valid, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def attention_distance(
    maps: np.ndarray, layout: TokenLayout, input_hw: tuple[int, int] | None = None
) -> np.ndarray | None:
    """``(heads,)`` mean attention distance in pixels of one layer's ``(heads, N, N)``."""
    distribution = patch_distribution(maps, layout)
    if distribution is None:
        return None
    weights, valid = distribution
    centres = patch_centres(layout, input_hw)
    distances = np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=-1)
    return _mean_over_valid((weights * distances).sum(axis=-1), valid)


def attention_entropy(
    maps: np.ndarray, layout: TokenLayout, input_hw: tuple[int, int] | None = None
) -> np.ndarray | None:
    """``(heads,)`` mean entropy (nats) of one layer's ``(heads, N, N)``."""
    distribution = patch_distribution(maps, layout)
    if distribution is None:
        return None
    weights, valid = distribution
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(weights > 0, -weights * np.log(weights), 0.0)
    return _mean_over_valid(terms.sum(axis=-1), valid)


STATISTICS = {"distance": attention_distance, "entropy": attention_entropy}


def per_layer(
    kind: str,
    layers: Sequence[tuple[str, np.ndarray]],
    layout: TokenLayout,
    input_hw: tuple[int, int] | None = None,
) -> list[np.ndarray | None]:
    """One ``(heads,)`` array per layer (None where the statistic does not apply)."""
    compute = STATISTICS[kind]
    results = []
    for _, maps in layers:
        layer_layout = layout.for_tokens(maps.shape[-1])
        results.append(None if layer_layout is None else compute(maps, layer_layout, input_hw))
    return results


def aggregate(
    per_image: Sequence[Sequence[np.ndarray | None]],
) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
    """Across images, per layer and head: the mean and the standard deviation
    (population, ``ddof=0``), ignoring images where a head has no value."""
    if not per_image:
        return [], []
    means: list[np.ndarray | None] = []
    spreads: list[np.ndarray | None] = []
    for layer in range(len(per_image[0])):
        values = [image[layer] for image in per_image if image[layer] is not None]
        if not values or len({v.shape for v in values}) != 1:
            means.append(None)
            spreads.append(None)
            continue
        stacked = np.stack(values)
        present = ~np.isnan(stacked)
        count = present.sum(axis=0)
        filled = np.where(present, stacked, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, filled.sum(axis=0) / np.maximum(count, 1), np.nan)
            square = np.where(present, (stacked - mean) ** 2, 0.0).sum(axis=0)
            spread = np.where(count > 0, np.sqrt(square / np.maximum(count, 1)), np.nan)
        means.append(mean)
        spreads.append(spread)
    return means, spreads


def as_json(
    values: Sequence[np.ndarray | None], digits: int = 4
) -> list[list[float | None] | None]:
    """For the manifest: a list per layer of per-head values (``None`` where there is
    none), rounded so the file stays readable and identical across runs."""
    return [
        None
        if layer is None
        else [None if np.isnan(v) else round(float(v), digits) for v in layer.tolist()]
        for layer in values
    ]
