"""Checking the layer, head, token and query choices against one image's maps.

Every image is checked on its own: maps from different models (``--from-maps``)
can have different layers, heads and layouts in one run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from ..layout import TokenLayout

__all__ = [
    "SelectionError",
    "check_head",
    "check_token",
    "layer_layout",
    "query_patch",
    "select_layers",
]


class SelectionError(UsageError):
    """--layer, --head, --query or another choice is out of range for this model."""


def select_layers(names: list[str], layer: int | str) -> list[str]:
    """The layers drawn: every one (``"all"``) or one by index (negative from the end)."""
    if layer == "all":
        return names
    assert isinstance(layer, int)  # RunOptions made it one
    if not -len(names) <= layer < len(names):
        raise SelectionError(
            f"--layer {layer} is out of range: the model has {len(names)} attention layers "
            f"(0..{len(names) - 1}, or -1 for the last)"
        )
    return [names[layer]]


def check_head(head: int | None, maps: list[np.ndarray]) -> None:
    """``head`` must exist in every drawn layer."""
    heads = min(m.shape[0] for m in maps)
    if head is not None and not 0 <= head < heads:
        raise SelectionError(
            f"--head {head} is out of range: the layers have {heads} heads (0..{heads - 1})"
        )


def check_token(token: int, layout: TokenLayout) -> None:
    """``token`` must be one of the prefix tokens (0 when the model has none)."""
    prefix = layout.prefix_tokens
    if not 0 <= token < max(prefix, 1):
        raise SelectionError(
            f"--token {token} is out of range: the model has {prefix} prefix "
            f"token(s) ({', '.join(layout.prefix_names) or 'none'})"
        )


def layer_layout(layout: TokenLayout, tokens: int) -> TokenLayout:
    """The layout of a layer with ``tokens`` tokens: the model's, or one guessed from
    the count (layers before a class token joins, windows)."""
    from ..layout import TokenLayout

    fitted = layout.for_tokens(tokens)
    if fitted is not None:
        return fitted
    try:
        return TokenLayout.infer(tokens)
    except ValueError as exc:  # the message names the fix
        raise SelectionError(str(exc)) from None


def query_patch(
    layout: TokenLayout,
    query: tuple[int, int] | None,
    point: tuple[float, float] | None = None,
    view_hw: tuple[int, int] = (1, 1),
) -> tuple[int, int]:
    """The query patch: from a point (x, y) of the view, ``query``, or the centre."""
    if point is not None:
        x, y = point
        height, width = view_hw
        query = (
            min(int(y * layout.grid[0] / height), layout.grid[0] - 1),
            min(int(x * layout.grid[1] / width), layout.grid[1] - 1),
        )
    elif query is None:
        query = layout.centre()
    try:
        layout.token_of(*query)
    except IndexError as exc:
        raise SelectionError(f"--query: {exc}") from None
    return query
