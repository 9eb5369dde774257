"""What the explorer page carries per image: quantised maps and a drawing plan per layer.

Maps travel as text, one printable ASCII character per weight: each query row is
scaled by its own maximum and rounded to one of ``LEVELS + 1`` steps (90 characters,
``ALPHABET``: none of ``< > & " '``, so the text sits inside a ``<script>`` element and
inside a notebook's ``<iframe srcdoc>`` as it is).
A weight comes back as ``code / LEVELS * row_max``, at most ``MAX_ERROR`` of its row's
maximum away (half a step); the maximum itself comes back exactly.  numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis import rollout
from ..layout import TokenLayout

__all__ = ["ALPHABET", "LEVELS", "MAX_ERROR", "LayerPlan", "dequantise", "plan_layer", "quantise"]

ALPHABET = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "<>&\"'")
LEVELS = len(ALPHABET) - 1  # codes 0..89
MAX_ERROR = 1.0 / (2 * LEVELS)  # of the row's maximum: 1/178, 0.56 %
_TABLE = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)


def quantise(maps: np.ndarray) -> tuple[str, np.ndarray]:
    """``(..., N)`` weights as one character each, and each row's maximum (float32).

    Negative weights (not attention probabilities) count as 0.
    """
    values = np.clip(np.asarray(maps, dtype=np.float32), 0.0, None)
    scales = values.max(axis=-1, keepdims=True)
    safe = np.where(scales > 0, scales, 1.0)
    codes = np.rint(values / safe * LEVELS).astype(np.uint8)
    return _TABLE[codes].tobytes().decode("ascii"), scales[..., 0].astype("<f4")


def dequantise(text: str, scales: np.ndarray, tokens: int) -> np.ndarray:
    """The page's decoding, in numpy: ``(rows, tokens)`` weights (for tests)."""
    lookup = np.zeros(128, dtype=np.float64)
    lookup[_TABLE] = np.arange(len(ALPHABET))
    codes = lookup[np.frombuffer(text.encode("ascii"), dtype=np.uint8)].reshape(-1, tokens)
    return codes / LEVELS * np.asarray(scales, dtype=np.float64).reshape(-1, 1)


@dataclass(frozen=True)
class LayerPlan:
    """How the page draws one layer.

    ``kind``: ``self`` (every token queries: patch and prefix maps), ``class`` (only
    prefix tokens query, as in CaiT's class attention: prefix maps only), ``window``
    (one window of a windowed layer, drawn over its place in the image) or ``none``
    (not drawn; ``note`` says why).  ``rect`` is where the token grid lies in the
    view, in pixels: (top, left, bottom, right).
    """

    kind: str
    layout: TokenLayout | None
    rect: tuple[float, float, float, float]
    note: str = ""

    def to_json(self, name: str, shape: tuple[int, ...]) -> dict[str, Any]:
        layout = self.layout
        return {
            "name": name,
            "heads": shape[0],
            "q": shape[1],
            "n": shape[2],
            "kind": self.kind,
            "grid": list(layout.grid) if layout else None,
            "prefix": layout.prefix_tokens if layout else 0,
            "prefixNames": list(layout.prefix_names) if layout else [],
            "rect": [round(v, 3) for v in self.rect],
            "note": self.note,
        }


def plan_layer(
    name: str,
    shape: tuple[int, ...],
    layout: TokenLayout,
    view_hw: tuple[int, int],
    window: tuple[int, int] | None = None,
) -> LayerPlan:
    """Decide how layer ``name`` of ``shape`` (heads, Q, N) can be drawn, honestly."""
    whole = (0.0, 0.0, float(view_hw[0]), float(view_hw[1]))
    _, queries, tokens = shape
    if window is not None and window[1] > 1:
        return _plan_window(name, queries, tokens, view_hw, window)
    fitted = layout.for_tokens(tokens)
    note = ""
    if fitted is None:
        try:
            fitted = TokenLayout.infer(tokens, view_hw)
        except ValueError:
            why = f"its {tokens} tokens do not fit the {layout.grid[0]}x{layout.grid[1]} grid"
            return LayerPlan("none", None, whole, f"{name}: not drawn, {why}")
        note = f"token layout guessed from its {tokens} tokens"
    if queries == tokens:
        return LayerPlan("self", fitted, whole, note)
    if 0 < queries <= fitted.prefix_tokens:
        who = ", ".join(fitted.prefix_names[:queries])
        note = f"class attention: only {who} queries ({queries} of {tokens} tokens)"
        note += "; prefix-token maps only"
        return LayerPlan("class", fitted, whole, note)
    why = f"{queries} queries but {tokens} keys: not token self-attention"
    return LayerPlan("none", None, whole, f"{name}: not drawn, {why}")


def _plan_window(
    name: str, queries: int, tokens: int, view_hw: tuple[int, int], window: tuple[int, int]
) -> LayerPlan:
    shown, count = window
    whole = (0.0, 0.0, float(view_hw[0]), float(view_hw[1]))
    side = math.isqrt(tokens)
    places = window_grid(count, view_hw)
    if queries != tokens or side * side != tokens or places is None:
        why = f"window {shown} of {count} ({queries}x{tokens} tokens) has no known place"
        return LayerPlan("none", None, whole, f"{name}: not drawn, {why} in the image")
    rows, cols = places
    row, col = divmod(shown, cols)
    height, width = view_hw[0] / rows, view_hw[1] / cols
    rect = (row * height, col * width, (row + 1) * height, (col + 1) * width)
    note = (
        f"window {shown} of {count} (row {row}, column {col} of {rows}x{cols}); "
        "a shifted-window layer is drawn at its unshifted place"
    )
    return LayerPlan("window", TokenLayout(0, (side, side)), rect, note)


def window_grid(count: int, view_hw: tuple[int, int]) -> tuple[int, int] | None:
    """The windows' rows and columns: ``count`` split as the image's aspect, or None."""
    aspect = view_hw[0] / view_hw[1]
    pairs = [(r, count // r) for r in range(1, count + 1) if count % r == 0]
    rows, cols = min(pairs, key=lambda p: abs(math.log(p[0] / p[1] / aspect)))
    return (rows, cols) if math.isclose(rows / cols, aspect, rel_tol=0.05) else None


def image_rollout(
    layers: list[tuple[str, np.ndarray]], plans: list[LayerPlan], layout: TokenLayout
) -> tuple[np.ndarray, int] | None:
    """Rollout (head mean, no discarding) over the layers whose maps cover every token,
    as the ``rollout`` figure computes it, and how many layers it spans."""
    square = [
        maps
        for (_, maps), plan in zip(layers, plans, strict=True)
        if plan.kind == "self" and maps.shape[-2:] == (layout.num_tokens,) * 2
    ]
    if not square:
        return None
    return rollout(square).astype(np.float32), len(square)
