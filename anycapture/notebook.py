"""The notebook API: one call for a model's maps on an image, figures as matplotlib objects.

>>> result = attention_maps("vit_small", "cat.jpg")          # doctest: +SKIP
>>> result.layout, list(result.layers)[:2]                    # doctest: +SKIP
>>> figure("grid", result, layer=-1, head=0)                  # doctest: +SKIP

Imports torch and timm when called, not when imported.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from .layout import TokenLayout

_FORWARD_LOCK = threading.Lock()  # see attention_maps

__all__ = ["AttentionResult", "attention_maps", "figure"]


@dataclass(repr=False)
class AttentionResult:
    """One image's attention: ``layers`` maps each layer name to ``(heads, Q, N)``.

    ``layout`` says where the N tokens sit, ``view`` is the model's input view of the
    image, ``windows`` names the window shown for windowed layers.  In Jupyter the
    result shows as the interactive explorer; :meth:`viewer` writes it to a file.
    """

    layers: dict[str, np.ndarray]
    layout: TokenLayout
    view: Image.Image
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    model: str = ""
    # False: random weights (the maps mean nothing); None: a module you built
    pretrained: bool | None = None
    image: str = ""  # the image's file name, when it came from a file

    def __repr__(self) -> str:
        """One line: the arrays are millions of numbers (use ``result.layers``)."""
        shapes = {tuple(m.shape) for m in self.layers.values()}
        shape = " ".join(f"{s}" for s in sorted(shapes)) if len(shapes) <= 3 else "mixed"
        prefix = f"{self.layout.prefix_tokens} prefix + " if self.layout.prefix_tokens else ""
        weights = {True: "", False: ", random weights", None: ""}[self.pretrained]
        return (
            f"<AttentionResult {self.model or 'model'} on {self.image or 'an image'}: "
            f"{len(self.layers)} layers of {shape}, tokens {prefix}"
            f"{self.layout.grid[0]}x{self.layout.grid[1]} patches, view "
            f"{self.view.width}x{self.view.height}{weights}>"
        )

    def _repr_html_(self) -> str:
        """The explorer inline (in an iframe, apart from the notebook's page)."""
        from .viewer import build_page, iframe_html, record_from_result

        return iframe_html(build_page([record_from_result(self)], title=self._title()))

    def viewer(self, path: str | Path, **options: Any) -> Path:
        """Write the explorer as one offline HTML file (``options``: ``cmap``,
        ``alpha``, ``upsample``); returns its path."""
        from .viewer import record_from_result, write_viewer

        path = Path(path)
        write_viewer(path, [record_from_result(self)], title=self._title(), **options)
        return path

    def _title(self) -> str:
        return f"{self.model or 'model'}: {self.image or 'image'}"

    def __getitem__(self, layer: int | str) -> np.ndarray:
        """A layer's maps by name or index (negative from the end)."""
        if isinstance(layer, int):
            return list(self.layers.values())[layer]
        return self.layers[layer]


F = TypeVar("F", bound=Callable[..., Any])


def _parameter_words(function: F) -> F:
    """The notebook's errors in its own words: a check written for the CLI says
    ``img_size=...``, not ``--img-size``."""
    from functools import wraps

    @wraps(function)
    def speaking(*args: Any, **kwargs: Any) -> Any:
        from .errors import UsageError

        try:
            return function(*args, **kwargs)
        except UsageError as exc:
            exc.args = (as_parameters(str(exc)),)
            raise

    return speaking  # type: ignore[return-value]


@_parameter_words
def attention_maps(
    model: Any,
    image: str | Path | Image.Image,
    *,
    img_size: tuple[int, int] | None = None,
    capture: str | None = None,
    device: str = "cpu",
    pretrained: bool = True,
    window: int | None = None,
    mean: tuple[float, float, float] | None = None,
    std: tuple[float, float, float] | None = None,
    resize: str | None = None,
    dtype: str | None = None,
) -> AttentionResult:
    """Run ``model`` on ``image`` once and return every attention layer's maps.

    ``model`` is an ``nn.Module`` or anything ``anycapture render --model`` takes; a
    two-tower module (CLIP) is run through its image tower.  The image is prepared by
    the model's own preprocessing (``mean``, ``std``, ``resize`` override it).  A
    module passed in is run in eval mode and left in the mode each of its submodules
    had.
    """
    from .attention import AttentionRecorder, layout_of
    from .images import Preprocessor, read_image
    from .loading import image_tower, load_model
    from .options import CaptureOptions
    from .run.forward import forward_views, split_image

    options = CaptureOptions(
        pretrained=pretrained,
        img_size=img_size,
        capture=capture,
        device=device,
        mean=mean,
        std=std,
        resize=resize,
        dtype=dtype,
    )
    name = model if isinstance(model, str) else type(model).__name__
    processor = None
    weights: bool | None = None
    if isinstance(model, str):
        loaded = load_model(
            model, pretrained=pretrained, img_size=options.img_size, device=device, dtype=dtype
        )
        model, processor, weights = loaded.module, loaded.image_processor, loaded.pretrained
        _warn_random_weights(loaded.notes)
    else:
        model, _ = image_tower(model)
    original = image if isinstance(image, Image.Image) else read_image(Path(image))
    preprocessor = Preprocessor.for_model(
        model, options.img_size, mean=mean, std=std, resize=resize, image_processor=processor
    )
    view = preprocessor.view(original.convert("RGB"))
    # One forward at a time: a recorder records every call of the functions it
    # captures, whichever thread makes it, so two calls at once (threads on one model,
    # or on two models of one class) would each get the other's layers.
    with _FORWARD_LOCK:
        recorder = AttentionRecorder(model, options.capture)
        modes = [(module, module.training) for module in model.modules()]
        model.eval()
        try:
            batch_maps = forward_views(model, recorder, preprocessor, [view], device)
        finally:
            for module, training in modes:  # the caller's modes, as they were
                module.training = training
    layers, windows = split_image(batch_maps, 0, 1, window)
    layout = layout_of(model, preprocessor.input_hw, batch_maps)
    label = Path(image).name if isinstance(image, str | Path) else ""
    return AttentionResult(dict(layers), layout, view, windows, name, weights, label)


def _warn_random_weights(notes: list[str]) -> None:
    """The loader's notes (no pretrained weights offline...) as warnings, as the CLI
    prints them; in a notebook the model name reads ``"demo"`` for ``--model demo``."""
    import warnings

    for note in notes:
        text = note.replace("--model demo", 'attention_maps("demo", ...)')
        text = text.replace(
            "pass --checkpoint", "load your weights into the module and pass the module"
        )
        warnings.warn(as_parameters(text), UserWarning, stacklevel=3)


def as_parameters(message: str) -> str:
    """A message written for the CLI, in the notebook API's words: ``--alpha 5`` reads
    ``alpha=5``, ``--img-size`` reads ``img_size``."""

    def parameter(match: re.Match[str]) -> str:
        name = match.group(1).replace("-", "_")
        value = match.group(2)
        return f"{name}={value}" if value else name

    return _FLAG.sub(parameter, message)


_FLAG = re.compile(r"--([a-z][a-z0-9-]*)(?: ([^\s,;:()]+(?:,[^\s,;:()]+)*))?")


@_parameter_words
def figure(
    kind: str,
    result: AttentionResult,
    *,
    layer: int | str = -1,
    title: str = "",
    **options: Any,
) -> Any:
    """A matplotlib Figure of ``kind`` (head, heads, grid, cls, rollout, layers, or any
    registered kind).

    ``options`` are :class:`~anycapture.options.FigureOptions` fields (``head``,
    ``query``, ``token``, ``threshold``, ``fusion``, ``discard_ratio``, ``cmap``,
    ``alpha``, ``upsample``, ``scale``), checked as the CLI checks them: a bad value raises
    :class:`~anycapture.errors.UsageError`.
    """
    from .errors import UsageError
    from .options import FigureOptions, parse_pair
    from .render.kinds import KINDS
    from .render.request import FigureRequest
    from .run.selection import check_head, check_token, layer_layout, query_patch

    # kinds that need the model itself (explain) refuse with their own hint when drawn
    drawable = [n for n in KINDS.names() if KINDS[n].notebook and not KINDS[n].model_pass]
    if kind not in KINDS or KINDS[kind].notebook is None:
        why = "is drawn only by `anycapture render`" if kind in KINDS else "is unknown"
        raise UsageError(f"figure kind {kind!r} {why}; figure() draws {', '.join(drawable)}")
    names = list(result.layers)
    try:
        name = names[layer] if isinstance(layer, int) else names[names.index(layer)]
    except (IndexError, ValueError):
        count = len(names)
        raise UsageError(
            f"layer={layer!r} is not a layer of the result: give an index in 0..{count - 1} "
            f"(or -{count}..-1 from the end) or a name: {', '.join(names)}"
        ) from None
    maps = result.layers[name]
    if options.get("head") == "mean":  # as the CLI's --head mean
        options["head"] = None
    if isinstance(options.get("query"), str):  # "ROW,COL", as the CLI's --query
        options["query"] = parse_pair(options["query"], "--query", "ROW,COL")
    chosen = FigureOptions.from_kwargs(**options)
    layout = layer_layout(result.layout, maps.shape[-1])
    check_head(chosen.head, [maps])
    check_token(chosen.token, layout)
    request = FigureRequest(
        maps=maps,
        layout=layout,
        view=result.view,
        layer=name,
        layer_index=names.index(name),
        head=chosen.head,
        query=query_patch(layout, chosen.query),
        cmap=chosen.cmap,
        alpha=chosen.alpha,
        upsample=chosen.upsample.value,
        title=title,
        all_layers=tuple(result.layers.items()),
        token=chosen.token,
        threshold=chosen.threshold,
        fusion=chosen.fusion.value,
        discard_ratio=chosen.discard_ratio,
        windows=result.windows,
        scale=chosen.scale.value,
    )
    return KINDS[kind].notebook(request)  # type: ignore[misc]
