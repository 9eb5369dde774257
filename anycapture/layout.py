"""Token layout of a vision transformer: prefix tokens first, then the patch grid.

Follows timm's conventions: ``model.num_prefix_tokens`` tokens (CLS, distillation,
registers) come first, then ``patch_embed.grid_size`` = (rows, cols) patches in
row-major order.  numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["TokenLayout", "layer_role"]


@dataclass(frozen=True)
class TokenLayout:
    """Where each token of an attention map sits.

    Attributes:
        prefix_tokens: how many non-patch tokens come first.
        grid: patch rows and columns.
        prefix_names: a short label per prefix token (``cls``, ``dist``, ``reg0``...).
        patch_size: input pixels per patch (rows, cols), when known.
    """

    prefix_tokens: int
    grid: tuple[int, int]
    prefix_names: tuple[str, ...] = ()
    patch_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.prefix_tokens < 0 or min(self.grid) < 1:
            raise ValueError(f"invalid token layout {self.prefix_tokens} + {self.grid}")
        if not self.prefix_names:
            object.__setattr__(self, "prefix_names", default_prefix_names(self.prefix_tokens))

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def num_tokens(self) -> int:
        return self.prefix_tokens + self.num_patches

    def centre(self) -> tuple[int, int]:
        """The centre patch (row, col), the default query."""
        return self.grid[0] // 2, self.grid[1] // 2

    def token_of(self, row: int, col: int) -> int:
        """Index of the token of patch (row, col)."""
        rows, cols = self.grid
        if not (0 <= row < rows and 0 <= col < cols):
            raise IndexError(
                f"query patch ({row}, {col}) is outside the {rows}x{cols} patch grid; "
                f"use ROW in 0..{rows - 1} and COL in 0..{cols - 1}"
            )
        return self.prefix_tokens + row * cols + col

    def split(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split one row of a map (length N) into prefix weights and a (rows, cols) grid."""
        if weights.shape[-1] != self.num_tokens:
            raise ValueError(
                f"map has {weights.shape[-1]} tokens but the layout expects "
                f"{self.prefix_tokens} prefix + {self.grid[0]}x{self.grid[1]} = {self.num_tokens}"
            )
        prefix = weights[..., : self.prefix_tokens]
        grid = weights[..., self.prefix_tokens :].reshape(*weights.shape[:-1], *self.grid)
        return prefix, grid

    def for_tokens(self, count: int) -> TokenLayout | None:
        """This layout for a layer of ``count`` tokens: itself, the patches alone
        (layers before a class token joins, as in CaiT), or None (e.g. a window)."""
        if count == self.num_tokens:
            return self
        if count == self.num_patches:
            return TokenLayout(0, self.grid, (), self.patch_size)
        return None

    def to_dict(self) -> dict[str, object]:
        return {
            "prefix_tokens": self.prefix_tokens,
            "prefix_names": list(self.prefix_names),
            "grid": list(self.grid),
            "patch_size": list(self.patch_size) if self.patch_size else None,
        }

    @classmethod
    def infer(cls, num_tokens: int, image_shape: tuple[int, int] | None = None) -> TokenLayout:
        """Guess a layout from the token count alone (for models without metadata).

        Picks the fewest prefix tokens (0-8) leaving a grid whose aspect matches
        ``image_shape`` (rows, cols), or a square one.
        """
        aspect = image_shape[0] / image_shape[1] if image_shape else 1.0
        for prefix in (1, 0, 2, 3, 4, 5, 6, 7, 8):
            patches = num_tokens - prefix
            if patches < 1:
                continue
            rows = round(math.sqrt(patches * aspect))
            if rows >= 1 and patches % rows == 0:
                cols = patches // rows
                if math.isclose(rows / cols, aspect, rel_tol=0.05):
                    return cls(prefix, (rows, cols))
        raise ValueError(
            f"cannot tell the token layout of {num_tokens} tokens: give the model a "
            "`num_prefix_tokens` and `patch_embed.grid_size`, as timm models have"
        )


def default_prefix_names(count: int) -> tuple[str, ...]:
    if count == 0:
        return ()
    if count == 1:
        return ("cls",)
    if count == 2:
        return ("cls", "dist")
    return ("cls", *(f"reg{i}" for i in range(count - 1)))


def layer_role(layout: TokenLayout, queries: int, keys: int) -> str:
    """What a layer of ``queries`` x ``keys`` is, against the image's ``layout``:

    * ``self``: the image's tokens (or its patches alone) attend to each other;
    * ``class``: only prefix tokens query the image's tokens (CaiT's class attention);
    * ``image-keys``: other queries (object queries, text tokens, fewer pooled
      queries) over the image's tokens;
    * ``image-queries``: the image's tokens query keys that are not its tokens
      (cross-attention to text, or keys pooled by spatial reduction);
    * ``other``: neither side is the image's tokens (a window, another tower).
    """
    keys_fit = layout.for_tokens(keys) is not None
    queries_fit = layout.for_tokens(queries) is not None
    if keys_fit and queries == keys:
        return "self"
    if keys_fit and queries <= max(layout.prefix_tokens, 1) < keys:
        return "class"
    if keys_fit:
        return "image-keys"
    if queries_fit:
        return "image-queries"
    return "self" if queries == keys else "other"
