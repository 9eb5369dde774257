"""One render run: images in batches -> forward -> maps -> figures + manifest.

Holds one batch of maps at a time; writes every file atomically and rewrites the
manifest after each image, so an interrupted run leaves valid files that the
manifest lists.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .attention import AttentionRecorder, layout_of
from .images import Preprocessor, read_image, safe_stem
from .layout import TokenLayout
from .render import FigureRequest, render_figure
from .render.output import write_bytes_atomic

__all__ = ["OutputDirError", "RenderOptions", "RenderRun", "SelectionError", "locked_output_dir"]

MANIFEST = "manifest.json"


class SelectionError(Exception):
    """--layer, --head or --query is out of range for this model."""


class OutputDirError(Exception):
    """--out cannot be used; the message says why."""


@dataclass
class RenderOptions:
    figures: tuple[str, ...] = ("head", "heads", "grid")
    layer: str = "-1"  # an index (negative from the end) or "all"
    head: int = 0
    query: tuple[int, int] | None = None  # default: the centre patch
    style: str = "paper"
    cmap: str = "viridis"
    alpha: float = 0.6
    upsample: str = "bilinear"
    batch_size: int = 8


@contextmanager
def locked_output_dir(out: Path) -> Iterator[Path]:
    """Create ``out`` and hold an exclusive lock on it for the run."""
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} is an existing file; give a directory path")
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(out / ".anycapture.lock", "a+")
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
    """Renders figures for a loaded model into ``out``."""

    model: Any
    model_info: dict[str, Any]
    recorder: AttentionRecorder
    preprocessor: Preprocessor
    out: Path
    options: RenderOptions
    device: str = "cpu"
    title: str = ""
    layout: TokenLayout | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    def run(
        self, images: list[Path], on_image: Callable[[Path], None] | None = None
    ) -> dict[str, Any]:
        self.manifest = {"model": dict(self.model_info), "figures": [], "complete": False}
        taken: set[str] = set()
        stems = [safe_stem(p, taken) for p in images]
        size = max(1, self.options.batch_size)
        for start in range(0, len(images), size):
            paths = images[start : start + size]
            views, maps = self._forward([read_image(p) for p in paths])
            for i, path in enumerate(paths):
                image_maps = {name: layer_maps[i] for name, layer_maps in maps.items()}
                self._render_image(path, stems[start + i], views[i], image_maps)
                self._write_manifest()
                if on_image is not None:
                    on_image(path)
        self.manifest["complete"] = True
        self._write_manifest()
        return self.manifest

    def _forward(self, images: list[Any]) -> tuple[list[Any], dict[str, np.ndarray]]:
        import torch

        views = [self.preprocessor.view(image) for image in images]
        batch = self.preprocessor.tensor(views).to(self.device)
        with torch.inference_mode(), self.recorder.recording():
            self.model(batch)
        maps = self.recorder.take()
        if self.layout is None:
            self._describe(maps)
        return views, maps

    def _describe(self, maps: dict[str, np.ndarray]) -> None:
        """First batch: the token layout, and checks of --layer/--head/--query."""
        names = list(maps)
        last = maps[names[-1]]
        self.layout = layout_of(self.model, self.preprocessor.input_hw, last.shape[-1])
        self.layers = _select_layers(names, self.options.layer)
        heads = {maps[n].shape[1] for n in self.layers}
        if not 0 <= self.options.head < min(heads):
            raise SelectionError(
                f"--head {self.options.head} is out of range: the layers have {min(heads)} heads "
                f"(0..{min(heads) - 1})"
            )
        query = self.options.query or self.layout.centre()
        try:
            self.layout.token_of(*query)
        except IndexError as exc:
            raise SelectionError(f"--query: {exc}") from None
        self.query = query
        self.manifest["model"].update(
            layers=names,
            heads=int(last.shape[1]),
            tokens=int(last.shape[-1]),
            input_size=list(self.preprocessor.input_hw),
            **self.layout.to_dict(),
        )

    def _render_image(self, path: Path, stem: str, view: Any, maps: dict[str, np.ndarray]) -> None:
        assert self.layout is not None
        names = list(maps)
        for layer in self.layers:
            index = names.index(layer)
            request = FigureRequest(
                maps=maps[layer],
                layout=self.layout,
                view=view,
                layer=layer,
                layer_index=index,
                head=self.options.head,
                query=self.query,
                cmap=self.options.cmap,
                alpha=self.options.alpha,
                upsample=self.options.upsample,
                title=f"{self.title} · {path.name}" if self.title else path.name,
            )
            for kind in self.options.figures:
                if kind == "grid" and maps[layer].shape[-1] != self.layout.num_tokens:
                    continue  # windowed layers (Swin): no image-wide query map
                relative = Path(stem) / _figure_name(kind, index, self.options.head, self.query)
                write_bytes_atomic(
                    self.out / relative, render_figure(kind, self.options.style, request)
                )
                self.manifest["figures"].append(
                    {
                        "image": str(path),
                        "figure": kind,
                        "layer": index,
                        "layer_name": layer,
                        "head": None if kind == "heads" else self.options.head,
                        "query": list(self.query) if kind == "grid" else None,
                        "style": self.options.style,
                        "path": relative.as_posix(),
                    }
                )

    def _write_manifest(self) -> None:
        data = json.dumps(self.manifest, indent=2).encode()
        write_bytes_atomic(self.out / MANIFEST, data + b"\n")


def _figure_name(kind: str, layer: int, head: int, query: tuple[int, int]) -> str:
    if kind == "heads":
        return f"heads_L{layer:02d}.png"
    if kind == "head":
        return f"head_L{layer:02d}_H{head}.png"
    return f"{kind}_L{layer:02d}_H{head}_q{query[0]}-{query[1]}.png"


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
