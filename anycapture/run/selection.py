"""Checking the layer, head, token and query choices against one image's maps.

Every image is checked on its own: maps from different models (``--from-maps``)
can have different layers, heads and layouts in one run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    import numpy as np
    from PIL import Image

    from ..layout import TokenLayout
    from ..options import FigureOptions

__all__ = [
    "SelectionError",
    "check_before_forward",
    "check_head",
    "check_token",
    "file_tags",
    "layer_layout",
    "metadata_grid",
    "query_patch",
    "select_layers",
    "view_point",
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
    """The query patch: from a point (x, y) of the view, ``query``, or the centre.

    ``point`` is a position in the view's continuous coordinates (pixel i covers
    ``[i, i + 1)``), as :func:`view_point` gives for an original pixel's centre.
    """
    if point is not None:
        x, y = point
        height, width = view_hw
        query = (
            min(max(int(y * layout.grid[0] / height), 0), layout.grid[0] - 1),
            min(max(int(x * layout.grid[1] / width), 0), layout.grid[1] - 1),
        )
    elif query is None:
        query = layout.centre()
    try:
        layout.token_of(*query)
    except IndexError as exc:
        raise SelectionError(f"--query: {exc}") from None
    return query


def check_before_forward(
    layer: int | str,
    query: tuple[int, int] | None,
    layers: int | None,
    grid: tuple[int, int] | None,
) -> None:
    """--layer and --query against what the loaded model says, before any forward pass.

    ``layers`` is the number of attention layers found (None when it cannot be told
    before a forward pass), ``grid`` the patch grid from the model's metadata (None
    when it has none).  The exact checks still run on every image's maps.
    """
    if layers and isinstance(layer, int) and not -layers <= layer < layers:
        raise SelectionError(
            f"--layer {layer} is out of range: the model has {layers} attention layers "
            f"(0..{layers - 1}, or -1 for the last)"
        )
    if grid is not None and query is not None:
        rows, cols = grid
        if not (0 <= query[0] < rows and 0 <= query[1] < cols):
            raise SelectionError(
                f"--query: query patch ({query[0]}, {query[1]}) is outside the {rows}x{cols} "
                f"patch grid; use ROW in 0..{rows - 1} and COL in 0..{cols - 1}"
            )


def file_tags(uses: Collection[str], figure: FigureOptions, window: int | None) -> str:
    """What a figure's file name adds for the options that change what it shows.

    Nothing at the defaults, so names from earlier versions stay valid: ``_t0.6``
    (``--threshold``), ``_each`` (``--scale each``), ``_w3`` (``--window 3`` on a
    windowed layer).  Head, query, token, fusion and discard ratio are already in
    the kinds' own names; appearance (``--style``, ``--cmap``, ``--alpha``,
    ``--upsample``) changes how a figure looks, not what it shows.
    """
    tags = ""
    if "threshold" in uses and figure.threshold is not None:
        tags += f"_t{figure.threshold:g}"
    if "scale" in uses and figure.scale.value != "shared":
        tags += f"_{figure.scale.value}"
    if window is not None:
        tags += f"_w{window}"
    return tags


def view_point(
    view: Callable[[Image.Image], Image.Image],
    size: tuple[int, int],
    pixel: tuple[int, int],
    full: tuple[int, int] | None = None,
) -> tuple[float, float]:
    """Where pixel (x, y) of an original image of ``size`` (w, h) lands in the model's
    view, in the view's continuous coordinates (the pixel's corner, a hair inside it
    so that float rounding never moves it back over a patch edge).  ``full`` is the
    size in the file when the image was decoded reduced to ``size``: ``pixel`` counts
    the file's pixels.

    The view (resize, crop) is affine per axis: two step edges near the middle are
    run through ``view`` and located exactly by summing the result (resampling keeps
    a step's area), which fixes scale and offset.  Then pixel X of the original lands
    in patch ``floor(X / patch width in original pixels)``, with no rounding on the way.
    """
    from PIL import Image

    width, height = full or size
    x, y = pixel
    if not (0 <= x < width and 0 <= y < height):
        raise SelectionError(
            f"--query-pixel {x},{y} is outside the {width}x{height} image "
            f"(X in 0..{width - 1}, Y in 0..{height - 1})"
        )
    scale = (size[0] / width, size[1] / height)  # file pixels -> decoded pixels
    width, height = size
    shown = view(Image.new("RGB", size)).size  # (w, h) of the view
    exact = _keeps_floats(view, size)
    point = []
    for axis, length, at in ((0, width, x), (1, height, y)):
        near, far = _edges(length)
        v_near, v_far = (_step_position(view, size, axis, e, exact) for e in (near, far))
        corner = (at + INSIDE) * scale[axis]
        position = v_near + (v_far - v_near) / (far - near) * (corner - near)
        if not 0.0 <= position < shown[axis]:
            raise SelectionError(
                f"--query-pixel {x},{y} falls outside the model's centre crop of this image"
            )
        point.append(position)
    return point[0], point[1]


INSIDE = 1e-3  # of a pixel


def _edges(length: int) -> tuple[int, int]:
    """Two step positions near the middle (inside any centre crop), apart enough."""
    gap = max(1, round(length * 0.05))
    return max(1, length // 2 - gap), min(length - 1, length // 2 + gap)


def _step_position(
    view: Callable[[Image.Image], Image.Image],
    size: tuple[int, int],
    axis: int,
    edge: int,
    exact: bool,
) -> float:
    """The view coordinate of a step edge at ``edge`` (white before it, black after)."""
    import numpy as np
    from PIL import Image

    box = (0, 0, edge, size[1]) if axis == 0 else (0, 0, size[0], edge)
    if exact:  # float pixels: no 8-bit rounding at the edge
        step = Image.new("F", size, 0.0)
        step.paste(1.0, box)
        seen = np.asarray(view(step), dtype=np.float64)
    else:  # a view that wants RGB (an image processor): 8-bit, about 0.01 view pixel
        step = Image.new("RGB", size)
        step.paste((255, 255, 255), box)
        seen = np.asarray(view(step).convert("L"), dtype=np.float64) / 255.0
    return float(seen.sum(axis=1 - axis).mean())


def _keeps_floats(view: Callable[[Image.Image], Image.Image], size: tuple[int, int]) -> bool:
    """Whether ``view`` passes a float image through unchanged in value (timm's resize
    and crop do; an image processor may not)."""
    import numpy as np
    from PIL import Image

    try:
        seen = view(Image.new("F", size, 1.0))
    except Exception:  # any refusal means: use 8-bit steps
        return False
    values = np.asarray(seen, dtype=np.float64)
    return seen.mode == "F" and bool(np.allclose(values, 1.0, atol=1e-4))


def metadata_grid(model: Any, input_hw: tuple[int, int]) -> tuple[int, int] | None:
    """The patch grid a timm-style model declares (``patch_embed.grid_size``), if any."""
    patch_embed = getattr(model, "patch_embed", None)
    grid = getattr(patch_embed, "grid_size", None)
    patch = getattr(patch_embed, "patch_size", None)
    if getattr(model, "dynamic_img_size", False) and patch is not None:
        size = (patch, patch) if isinstance(patch, int) else tuple(patch)
        return input_hw[0] // int(size[0]), input_hw[1] // int(size[1])
    if isinstance(grid, (tuple, list)) and len(grid) == 2:
        return int(grid[0]), int(grid[1])
    return None
