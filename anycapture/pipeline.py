"""One render run: images in batches -> forward -> maps -> figures + manifest.

Holds one batch of maps at a time; writes every file atomically and rewrites the
manifest after each image, so an interrupted run leaves valid files that the
manifest lists.  ``--from-maps`` feeds saved maps through the same rendering.
"""

from __future__ import annotations

import fcntl
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .attention import AttentionRecorder, layout_of
from .images import Preprocessor, read_image, safe_stem
from .layout import TokenLayout
from .render import FigureRequest
from .render.figures import PER_IMAGE_KINDS
from .render.output import write_bytes_atomic
from .render.pool import FigureDrawer

__all__ = [
    "ImageMaps",
    "OutputDirError",
    "RenderOptions",
    "RenderRun",
    "SelectionError",
    "forward_views",
    "image_slice",
    "load_maps",
    "locked_output_dir",
    "split_image",
]

MANIFEST = "manifest.json"
MAPS_FORMAT = "anycapture-maps/1"


class SelectionError(Exception):
    """--layer, --head, --query or another choice is out of range for this model."""


class OutputDirError(Exception):
    """--out cannot be used; the message says why."""


@dataclass
class RenderOptions:
    figures: tuple[str, ...] = ("head", "heads", "grid")
    layer: str = "-1"  # an index (negative from the end) or "all"
    head: int | None = 0  # None: the mean over heads
    query: tuple[int, int] | None = None  # default: the centre patch
    query_pixel: tuple[int, int] | None = None  # (x, y) in the original image
    style: str = "paper"
    cmap: str = "viridis"
    alpha: float = 0.6
    upsample: str = "bilinear"
    batch_size: int = 8
    token: int = 0
    threshold: float | None = None
    fusion: str = "mean"
    discard_ratio: float = 0.0
    window: int | None = None  # windowed layers: which window (default: the middle one)
    save_maps: bool = False
    maps_float16: bool = False
    jobs: int = 0  # worker processes drawing figures; 0 draws in this process


@dataclass
class ImageMaps:
    """One image's attention: ``(heads, Q, N)`` per layer, the view, the layout."""

    layers: list[tuple[str, np.ndarray]]
    view: Image.Image
    layout: TokenLayout
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)  # layer -> (index, count)
    source: str = ""
    original_size: tuple[int, int] | None = None  # (width, height), when run from an image

    def save(self, path: Path, model: dict[str, Any], float16: bool) -> None:
        dtype = np.float16 if float16 else np.float32
        arrays = {f"layer_{i:03d}": maps.astype(dtype) for i, (_, maps) in enumerate(self.layers)}
        meta = {
            "format": MAPS_FORMAT,
            "model": model,
            "image": self.source,
            "layer_names": [name for name, _ in self.layers],
            "layout": self.layout.to_dict(),
            "windows": {k: list(v) for k, v in self.windows.items()},
        }
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, meta=np.array(json.dumps(meta)), view=np.asarray(self.view), **arrays
        )
        write_bytes_atomic(path, buffer.getvalue())


def load_maps(path: Path) -> tuple[ImageMaps, dict[str, Any]]:
    """Read what ``--save-maps`` wrote."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != MAPS_FORMAT:
                raise ValueError(f"unknown format {meta.get('format')!r}")
            names = meta["layer_names"]
            layers = [(n, data[f"layer_{i:03d}"].astype(np.float32)) for i, n in enumerate(names)]
            view = Image.fromarray(data["view"])
    except (OSError, KeyError, ValueError) as exc:
        raise SelectionError(
            f"--from-maps {path}: not a maps file written by --save-maps ({exc})"
        ) from None
    layout_data = meta["layout"]
    layout = TokenLayout(
        layout_data["prefix_tokens"],
        tuple(layout_data["grid"]),
        tuple(layout_data["prefix_names"]),
        tuple(layout_data["patch_size"]) if layout_data.get("patch_size") else None,
    )
    windows = {k: (v[0], v[1]) for k, v in meta.get("windows", {}).items()}
    return ImageMaps(layers, view, layout, windows, meta.get("image", str(path))), meta["model"]


@contextmanager
def locked_output_dir(out: Path) -> Iterator[Path]:
    """Create ``out`` and hold an exclusive lock on it for the run."""
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} is an existing file; give a directory path")
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(out / ".anycapture.lock", "a+")  # held for the run
    except OSError as exc:
        raise OutputDirError(
            f"cannot write to --out {out}: {exc.strerror}; choose another directory"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise OutputDirError(
            f"--out {out} is in use by another anycapture run; wait for it or use another --out"
        ) from None
    try:
        yield out
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
        (out / ".anycapture.lock").unlink(missing_ok=True)


@dataclass
class RenderRun:
    """Renders figures into ``out``, from a model (``run``) or saved maps (``run_saved``)."""

    out: Path
    options: RenderOptions
    model_info: dict[str, Any]
    model: Any = None
    recorder: AttentionRecorder | None = None
    preprocessor: Preprocessor | None = None
    device: str = "cpu"
    title: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, None] = field(default_factory=dict)  # ordered, unique
    layers: list[str] | None = None  # the layers drawn, chosen from the first image
    _layout: TokenLayout | None = None
    _drawer: FigureDrawer = field(default_factory=FigureDrawer)

    # -- entry points ----------------------------------------------------------------
    def run(self, images: list[Path], on_image: Callable[[Path], None] | None = None) -> dict:
        self._start()
        taken: set[str] = set()
        stems = [safe_stem(p, taken) for p in images]
        size = max(1, self.options.batch_size)
        with self._drawing():
            for start in range(0, len(images), size):
                paths = images[start : start + size]
                for i, image_maps in enumerate(self._forward(paths)):
                    self._render_image(image_maps, stems[start + i], paths[i], on_image)
        return self._finish()

    def run_saved(self, files: list[Path], on_image: Callable[[Path], None] | None = None) -> dict:
        self._start()
        taken: set[str] = set()
        with self._drawing():
            for path in files:
                image_maps, model = load_maps(path)
                self.manifest["model"] = {**model, **self.manifest["model"]}
                stem = safe_stem(Path(image_maps.source or path), taken)
                self._render_image(image_maps, stem, path, on_image)
        return self._finish()

    @contextmanager
    def _drawing(self) -> Iterator[None]:
        """Figures drawn by ``options.jobs`` workers; all delivered before it ends."""
        with FigureDrawer(self.options.jobs) as drawer:
            self._drawer = drawer
            try:
                yield
                drawer.finish()
            finally:
                self._drawer = FigureDrawer()

    def _start(self) -> None:
        self.manifest = {
            "model": dict(self.model_info),
            "figures": [],
            "maps": [],
            "complete": False,
        }

    def _finish(self) -> dict:
        self.manifest["complete"] = True
        self._write_manifest()
        return self.manifest

    # -- model side ---------------------------------------------------------------------
    def _forward(self, paths: list[Path]) -> list[ImageMaps]:
        assert self.preprocessor is not None and self.recorder is not None
        originals = [read_image(p) for p in paths]
        views = [self.preprocessor.view(image) for image in originals]
        maps = forward_views(self.model, self.recorder, self.preprocessor, views, self.device)
        if self._layout is None:
            last = next(reversed(maps.values()))
            self._layout = layout_of(self.model, self.preprocessor.input_hw, last.shape[-1])
        per_image = []
        for i, (path, original, view) in enumerate(zip(paths, originals, views, strict=True)):
            layers, windows = split_image(maps, i, len(paths), self.options.window)
            per_image.append(
                ImageMaps(layers, view, self._layout, windows, str(path), original.size)
            )
        return per_image

    # -- rendering -----------------------------------------------------------------------
    def _check(self, image: ImageMaps) -> None:
        """Once: the layer, head and token choices against what the model produced."""
        names = [name for name, _ in image.layers]
        self.layers = _select_layers(names, self.options.layer)
        heads = min(maps.shape[0] for name, maps in image.layers if name in self.layers)
        head = self.options.head
        if head is not None and not 0 <= head < heads:
            raise SelectionError(
                f"--head {head} is out of range: the layers have {heads} heads (0..{heads - 1})"
            )
        prefix = image.layout.prefix_tokens
        if "cls" in self.options.figures and not 0 <= self.options.token < max(prefix, 1):
            raise SelectionError(
                f"--token {self.options.token} is out of range: the model has {prefix} prefix "
                f"token(s) ({', '.join(image.layout.prefix_names) or 'none'})"
            )
        last = image.layers[-1][1]
        self.manifest["model"].update(
            layers=names,
            heads=int(last.shape[0]),
            tokens=int(last.shape[-1]),
            input_size=[image.view.height, image.view.width],
            **image.layout.to_dict(),
        )

    def _query(self, image: ImageMaps) -> tuple[int, int]:
        layout = image.layout
        if self.options.query_pixel is not None:
            if self.preprocessor is None or image.original_size is None:
                raise SelectionError(
                    "--query-pixel needs the model run; with --from-maps use --query"
                )
            try:
                x, y = self.preprocessor.locate(image.original_size, self.options.query_pixel)
            except ValueError as exc:
                raise SelectionError(str(exc)) from None
            height, width = image.view.height, image.view.width
            query = (
                min(int(y * layout.grid[0] / height), layout.grid[0] - 1),
                min(int(x * layout.grid[1] / width), layout.grid[1] - 1),
            )
        else:
            query = self.options.query or layout.centre()
        try:
            layout.token_of(*query)
        except IndexError as exc:
            raise SelectionError(f"--query: {exc}") from None
        return query

    def _render_image(
        self,
        image: ImageMaps,
        stem: str,
        source: Path,
        on_image: Callable[[Path], None] | None = None,
    ) -> None:
        """Queue the image's figures; once they are written, rewrite the manifest."""
        if self.layers is None:
            self._check(image)
        query = self._query(image)
        options = self.options
        by_name = dict(image.layers)
        names = [name for name, _ in image.layers]
        title = (
            f"{self.title} · {Path(image.source).name}" if self.title else Path(image.source).name
        )
        base = {
            "view": image.view,
            "head": options.head,
            "query": query,
            "cmap": options.cmap,
            "alpha": options.alpha,
            "upsample": options.upsample,
            "title": title,
            "token": options.token,
            "threshold": options.threshold,
            "fusion": options.fusion,
            "discard_ratio": options.discard_ratio,
        }
        if options.save_maps:
            relative = Path(stem) / "maps.npz"
            image.save(self.out / relative, self.manifest["model"], options.maps_float16)
            self.manifest["maps"].append({"image": image.source, "path": relative.as_posix()})
        for kind in options.figures:
            if kind in PER_IMAGE_KINDS:
                last = names[-1]
                request = FigureRequest(
                    maps=by_name[last],
                    layout=image.layout,
                    layer=last,
                    layer_index=-1,
                    all_layers=image.layers,  # only these kinds need them (sent to workers)
                    **base,
                )
                self._write(kind, request, stem, image, None)
                continue
            for layer in self.layers:
                maps = by_name[layer]
                layout = image.layout.for_tokens(maps.shape[-1])
                reason = self._skip_reason(kind, layer, maps, layout, image)
                if reason:
                    self._note(reason)
                    continue
                request = FigureRequest(
                    maps=maps,
                    layout=layout or TokenLayout.infer(maps.shape[-1]),
                    layer=layer,
                    layer_index=names.index(layer),
                    **base,
                )
                self._write(kind, request, stem, image, names.index(layer))
        self._drawer.then(self._write_manifest)
        if on_image is not None:
            self._drawer.then(lambda: on_image(source))

    def _note(self, text: str) -> None:
        """Add a note in drawing order (so notes never depend on --jobs)."""
        self._drawer.then(lambda: self.notes.setdefault(text))

    def _skip_reason(
        self, kind: str, layer: str, maps: np.ndarray, layout: TokenLayout | None, image: ImageMaps
    ) -> str:
        window = image.windows.get(layer)
        if kind in ("head", "heads"):
            return ""
        if window is not None and window[1] > 1:
            return (
                f"{layer} uses windowed attention ({maps.shape[-1]} tokens per window, "
                f"{window[1]} windows): a {kind} figure needs image-wide attention, so only "
                f"head and heads are drawn there (window {window[0]}; pick with --window)"
            )
        if layout is None:
            return (
                f"{layer}: {maps.shape[-1]} tokens do not fit the model's token layout; "
                f"{kind} skipped"
            )
        if kind == "grid" and maps.shape[-2] != maps.shape[-1]:
            return f"{layer} is class attention (only prefix tokens query): grid skipped, see cls"
        if kind == "cls" and not layout.prefix_tokens:
            return f"{layer} has no prefix token (patches only): cls skipped"
        return ""

    def _write(
        self, kind: str, request: FigureRequest, stem: str, image: ImageMaps, layer: int | None
    ) -> None:
        options = self.options
        relative = Path(stem) / _figure_name(kind, layer, options, request.query)
        entry = {
            "image": image.source,
            "figure": kind,
            "layer": layer,
            "layer_name": request.layer if layer is not None else None,
            "head": None if kind in ("heads", "cls", "rollout") else _head_text(options.head),
            "query": list(request.query) if kind in ("grid", "layers") else None,
            "window": list(image.windows[request.layer])
            if layer is not None and request.layer in image.windows
            else None,
            "style": options.style,
            "path": relative.as_posix(),
        }

        def deliver(png: bytes | None, problem: str | None) -> None:
            if png is None:
                self.notes.setdefault(f"{kind}: {problem}")
                return
            write_bytes_atomic(self.out / relative, png)
            self.manifest["figures"].append(entry)

        self._drawer.draw(kind, options.style, request, deliver)

    def _write_manifest(self) -> None:
        self.manifest["notes"] = list(self.notes)
        data = json.dumps(self.manifest, indent=2).encode()
        write_bytes_atomic(self.out / MANIFEST, data + b"\n")


def forward_views(
    model: Any,
    recorder: AttentionRecorder,
    preprocessor: Preprocessor,
    views: list[Any],
    device: str,
) -> dict[str, np.ndarray]:
    """One forward pass over the views with capture on: ``{layer: (B', H, Q, N)}``."""
    import torch

    with torch.inference_mode(), recorder.recording():
        model(preprocessor.tensor(views).to(device))
    return recorder.take()


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


def _head_text(head: int | None) -> int | str:
    return "mean" if head is None else head


def _figure_name(
    kind: str, layer: int | None, options: RenderOptions, query: tuple[int, int]
) -> str:
    head = "Hmean" if options.head is None else f"H{options.head}"
    q = f"q{query[0]}-{query[1]}"
    if kind == "heads":
        return f"heads_L{layer:02d}.png"
    if kind == "head":
        return f"head_L{layer:02d}_{head}.png"
    if kind == "grid":
        return f"grid_L{layer:02d}_{head}_{q}.png"
    if kind == "cls":
        return f"cls_L{layer:02d}_T{options.token}.png"
    if kind == "rollout":
        return f"rollout_T{options.token}_{options.fusion}_d{options.discard_ratio:g}.png"
    return f"layers_{head}_{q}.png"


def _select_layers(names: list[str], spec: str) -> list[str]:
    if spec == "all":
        return names
    try:
        index = int(spec)
    except ValueError:
        raise SelectionError(f"--layer {spec!r} must be an integer or 'all'") from None
    if not -len(names) <= index < len(names):
        raise SelectionError(
            f"--layer {index} is out of range: the model has {len(names)} attention layers "
            f"(0..{len(names) - 1}, or -1 for the last)"
        )
    return [names[index]]


def model_info(loaded: Any, recorder: AttentionRecorder) -> dict[str, Any]:
    return {
        "name": loaded.name,
        "source": loaded.source,
        "pretrained": loaded.pretrained,
        "capture": "get_local" if recorder.seed_style else "auto",
    }
