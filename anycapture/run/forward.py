"""The model side of a run: batches of images -> one forward pass -> each image's maps."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..attention import AttentionRecorder, layout_of
from ..errors import AnycaptureError, UsageError
from ..images import ImageInputError, Preprocessor
from ..layout import TokenLayout
from ..render.registry import FigureKind, ModelBatch
from .decode import decoded_batches
from .maps_file import ImageMaps
from .selection import SelectionError, view_point

__all__ = [
    "AUTOCAST_DTYPES",
    "ModelSource",
    "autocast",
    "capture_kind",
    "forward_views",
    "image_slice",
    "layers_before_forward",
    "split_image",
]


def forward_views(
    model: Any,
    recorder: AttentionRecorder,
    preprocessor: Preprocessor,
    views: list[Any],
    device: str,
    dtype: str | None = None,
) -> dict[str, np.ndarray]:
    """One forward pass over the views with capture on: ``{layer: (B', H, Q, N)}``.

    On a GPU the batch goes through page-locked memory with a non-blocking copy;
    ``dtype`` float16 or bfloat16 runs the model under ``torch.autocast``."""
    import torch

    batch = preprocessor.tensor(views)
    if device.startswith("cuda"):  # page-locked: the copy need not block
        batch = batch.pin_memory()
    batch = batch.to(device, non_blocking=True)
    with torch.inference_mode(), autocast(device, dtype), recorder.recording():
        try:
            model(batch)
        except (RuntimeError, AssertionError) as exc:
            hint = _input_size_hint(exc, tuple(batch.shape[-2:]))
            if hint is None:
                exc.add_note(f"{INPUT_NOTE}{tuple(batch.shape)}")
                raise
            raise hint from exc
        except Exception as exc:  # the one error line names the input it failed on
            exc.add_note(f"{INPUT_NOTE}{tuple(batch.shape)}")
            raise
        except SystemExit as exc:  # exit 1 with a line, not the model's own exit code
            raise AnycaptureError(
                f"the model's forward called sys.exit({exc.code!r}) on its "
                f"{tuple(batch.shape)} input; a model must raise, not exit"
            ) from None
    return recorder.take()


AUTOCAST_DTYPES = ("float16", "bfloat16")
INPUT_NOTE = "the model's input: "  # added to an error the forward pass raised


def autocast(device: str, dtype: str | None) -> Any:
    """``torch.autocast`` in ``dtype`` on ``device``'s type; nothing for float32 or None.

    Ops autocast keeps in float32 (softmax and layer norm on CUDA) then run in
    float32 although the model is cast (loading.py), so maps keep their precision."""
    import contextlib

    import torch

    if dtype not in AUTOCAST_DTYPES:
        return contextlib.nullcontext()
    kind = torch.device(device).type
    try:
        return torch.autocast(device_type=kind, dtype=getattr(torch, dtype))
    except (RuntimeError, ValueError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(
            f"--dtype {dtype}: autocast is not available on {kind} ({detail}); "
            "use another --dtype or --device"
        ) from None


_SIZE_WORDS = re.compile(r"\b(size|shape|match|height|width)", re.IGNORECASE)


def _input_size_hint(exc: BaseException, hw: tuple[int, int]) -> UsageError | None:
    """A model that refuses the input's size is a usage error with the fix, not a crash."""
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if not _SIZE_WORDS.search(detail):
        return None
    return UsageError(
        f"the model failed on its {hw[0]}x{hw[1]} input ({detail}); if it expects another "
        "input size, pass --img-size H,W (the notebook API: img_size=(H, W))"
    )


def split_image(
    maps: dict[str, np.ndarray], index: int, batch: int, window: int | None = None
) -> tuple[list[tuple[str, np.ndarray]], dict[str, tuple[int, int]]]:
    """Image ``index``'s maps of every layer, and the window shown of windowed layers."""
    layers, windows = [], {}
    for name, layer_maps in maps.items():
        image_maps, chosen = image_slice(name, layer_maps, index, batch, window)
        layers.append((name, image_maps))
        if chosen is not None:
            windows[name] = chosen
    return layers, windows


def image_slice(
    name: str, maps: np.ndarray, index: int, batch: int, window: int | None = None
) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Image ``index``'s ``(heads, Q, N)`` of a batch; windowed layers (Swin), whose
    first axis is batch x windows, give one window: ``window`` or the middle one."""
    if maps.shape[0] == batch:
        return maps[index], None
    if maps.shape[0] % batch:
        raise SelectionError(
            f"{name}: {maps.shape[0]} maps for {batch} images; cannot tell them apart"
        )
    count = maps.shape[0] // batch
    chosen = count // 2 if window is None else window
    if not 0 <= chosen < count:
        raise SelectionError(f"--window {chosen} is out of range: {name} has {count} windows")
    return maps.reshape(batch, count, *maps.shape[1:])[index, chosen], (chosen, count)


@dataclass
class ModelSource:
    """Images run through a model in batches of ``batch_size``, as a run's source."""

    images_in: list[Path]
    model: Any
    recorder: AttentionRecorder
    preprocessor: Preprocessor
    device: str = "cpu"
    batch_size: int = 8
    window: int | None = None
    model_info: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    passes: tuple[FigureKind, ...] = ()  # kinds that need the model itself (explain)
    figure_options: Any = None  # what those kinds are given (FigureOptions)
    notes: list[str] = field(default_factory=list)  # from the model passes, for the run
    dtype: str | None = None  # --dtype: float16/bfloat16 run under autocast
    decode_workers: int = 0  # DataLoader workers reading images (0: this process)
    _layout: TokenLayout | None = None
    # images that could not be read, with why: the run skips them and goes on
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    on_batch: Callable[[int], None] | None = None  # images through the model so far

    def __len__(self) -> int:
        return len(self.images_in)

    def images(self) -> Iterator[tuple[ImageMaps, Path]]:
        for batch, decoded in decoded_batches(
            self.images_in, self.preprocessor, self.batch_size, self.decode_workers
        ):
            readable: dict[Path, tuple[Any, Any]] = {}
            for path, item in zip(batch, decoded, strict=True):
                if isinstance(item, ImageInputError):  # skipped, the run goes on
                    self.skipped.append((path, str(item)))
                else:
                    readable[path] = item
            paths = list(readable)
            maps = self._forward(paths, list(readable.values())) if paths else []
            if self.on_batch is not None:
                self.on_batch(len(batch))
            yield from zip(maps, paths, strict=True)

    def _forward(self, paths: list[Path], decoded: list[tuple[Any, Any]]) -> list[ImageMaps]:
        sizes = [size for size, _ in decoded]
        views = [view for _, view in decoded]
        maps = forward_views(
            self.model, self.recorder, self.preprocessor, views, self.device, self.dtype
        )
        if self._layout is None:
            self._layout = layout_of(self.model, self.preprocessor.input_hw, maps)
        extras = self._model_passes(views, self._layout)
        per_image = []
        for i, (path, size, view) in enumerate(zip(paths, sizes, views, strict=True)):
            layers, windows = split_image(maps, i, len(paths), self.window)
            image = ImageMaps(layers, view, self._layout, windows, str(path), size.full)
            image.decoded_size = size.decoded
            image.extras = {name: values[i] for name, values in extras.items()}
            per_image.append(image)
        return per_image

    def _model_passes(self, views: list[Any], layout: TokenLayout) -> dict[str, list[Any]]:
        """Each model-pass kind's values for this batch, one per image."""
        if not self.passes:
            return {}
        inputs = self.preprocessor.tensor(views).to(self.device)
        batch = ModelBatch(
            self.model, inputs, self.recorder.sites, layout, self.figure_options, self.notes
        )
        with autocast(self.device, self.dtype):
            return {kind.name: kind.model_pass(batch) for kind in self.passes if kind.model_pass}

    def capture(self) -> str | None:
        return capture_kind(self.recorder)

    def locate(self, image: ImageMaps, pixel: tuple[int, int]) -> tuple[float, float]:
        """A pixel (x, y) of the original image -> the same point in the model's view."""
        assert image.original_size is not None  # every image of this source has one
        decoded = image.decoded_size or image.original_size
        return view_point(self.preprocessor.view, decoded, pixel, full=image.original_size)


def capture_kind(recorder: AttentionRecorder) -> str:
    """The manifest's ``capture``: auto (also --capture), get_local, sdpa or softmax."""
    known = {"get_local": "get_local", "sdpa": "sdpa", "softmax": "softmax"}
    return known.get(recorder.kind, "auto")


def layers_before_forward(recorder: AttentionRecorder) -> int | None:
    """How many attention layers a forward pass will give, when the sites found tell
    (None when SDPA or softmax maps may join them, or @get_local names them per call)."""
    beside = getattr(recorder, "_fallback", None) or getattr(recorder, "_softmax", None)
    if recorder.kind not in ("auto", "capture") or beside:
        return None
    return len(recorder.sites)
