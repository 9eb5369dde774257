"""One render run: each image's maps (from a model or saved maps) -> figures + manifest.

One batch of maps at a time; each file is written atomically and listed at once
(``interrupts.critical``); an interrupted run lists every file on disk.  Figure kinds
come from the registry: this module knows none by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..attention import AttentionRecorder
from ..errors import UsageError
from ..images import Preprocessor
from ..interrupts import critical, handling_signals
from ..options import RenderOptions
from ..render.kinds import KINDS
from ..render.pool import FigureDrawer, warnings_as_notes
from ..render.registry import Drawn, FigureKind, LayerView, Scope, Uses
from ..render.request import FigureRequest
from .forward import ModelSource, capture_kind, layers_before_forward
from .jobs import choose_decode_workers
from .manifest import FigureEntry, Manifest, MapsEntry, SkippedEntry, WriteThrottle, head_entry
from .maps_file import ImageMaps, MapsSource, SavedMaps
from .outdir import OutputDir, tagged_name
from .plan import Share
from .selection import (
    check_before_forward,
    check_head,
    check_token,
    file_tags,
    layer_layout,
    metadata_grid,
    query_patch,
    select_layers,
)

__all__ = ["MapsSource", "RenderRun"]

OnImage = Callable[[Path], None]
OnSkip = Callable[[Path, str], None]
OnBatch = Callable[[int], None]
NOT_IN_PART = (
    "the aggregate over images is not drawn with --shard or --resume; render it in one run"
)


@dataclass
class RenderRun:
    """Renders figures into ``out`` from a source of maps; see the two constructors.

    What the job decided (folders, which record, kept records: ``share``) is fixed
    when the run is made; nothing outside sets its state (``run/job.py``)."""

    out: OutputDir
    options: RenderOptions
    source: MapsSource
    share: Share = field(default_factory=Share)
    manifest: Manifest = field(init=False)
    notes: dict[str, None] = field(default_factory=dict)  # ordered, unique
    _states: dict[str, Any] = field(default_factory=dict)  # per-run kinds' collected state
    _drawer: FigureDrawer = field(default_factory=FigureDrawer)
    throttle: WriteThrottle = field(default_factory=WriteThrottle)  # manifest rewrites
    rendered: int = 0  # images whose figures were asked for

    def __post_init__(self) -> None:
        self.manifest = Manifest(model=dict(self.source.model_info))
        self.manifest.options = self.options.figure.to_json()
        self.manifest.job_options = self.share.job_options
        self.kinds: list[FigureKind] = [KINDS[name] for name in self.options.run.figures]
        self._images: dict[str, int] = {}  # per-run kind -> images collected
        kept = self.share.kept or Manifest(model={})
        self.manifest.figures, self.manifest.maps = list(kept.figures), list(kept.maps)
        self.manifest.images_done = list(kept.images_done)
        self.notes.update(dict.fromkeys(kept.notes))
        for text in (*self.options.ignored(), *self.share.notes):
            self.notes.setdefault(text)
        if self.share.partial:  # an aggregate would see only part of the job's images
            for aggregate in [k.aggregate for k in self.kinds if k.aggregate is not None]:
                self.notes.setdefault(f"{aggregate.name}: {NOT_IN_PART}")

    @classmethod
    def from_model(
        cls,
        out: OutputDir,
        options: RenderOptions,
        images: list[Path],
        loaded: Any,
        recorder: AttentionRecorder,
        preprocessor: Preprocessor,
        device: str = "cpu",
        dtype: str | None = None,
        share: Share | None = None,
    ) -> RenderRun:
        """A run over ``images`` through ``loaded`` (a :class:`~anycapture.loading.LoadedModel`)."""
        info = {
            "name": loaded.name,
            "source": loaded.source,
            "pretrained": loaded.pretrained,
            "capture": capture_kind(recorder),
            "preprocessing": preprocessor.describe(),
        }
        check_before_forward(
            options.run.layer,
            options.figure.query,
            layers_before_forward(recorder),
            metadata_grid(loaded.module, preprocessor.input_hw),
        )
        decode_workers, lowered = choose_decode_workers(
            options.run.decode_workers, len(images), options.run.batch_size, device
        )
        source = ModelSource(
            images,
            loaded.module,
            recorder,
            preprocessor,
            device,
            options.run.batch_size,
            options.run.window,
            info,
            loaded.name,
            passes=tuple(k for k in map(KINDS.__getitem__, options.run.figures) if k.model_pass),
            figure_options=options.figure,
            dtype=dtype,
            decode_workers=decode_workers,
        )
        run = cls(out, options, source, share or Share())
        if lowered:
            run.notes.setdefault(lowered)
        for text in preprocessor.notes:  # e.g. ImageNet defaults assumed
            run.notes.setdefault(text)
        return run

    @classmethod
    def from_maps(
        cls, out: OutputDir, options: RenderOptions, files: list[Path], share: Share | None = None
    ) -> RenderRun:
        """A run over maps files written by ``--save-maps``; no model."""
        cls.check_saved_maps(options)
        return cls(out, options, SavedMaps(files), share or Share())

    @staticmethod
    def check_saved_maps(options: RenderOptions) -> None:
        """Refuse kinds that need the model itself (``explain``) for a saved-maps run."""
        needs_model = [n for n in options.run.figures if KINDS[n].model_pass is not None]
        if needs_model:
            raise UsageError(
                f"--figures {','.join(needs_model)} needs the model itself (gradients), not "
                "saved maps: run it with --model and --image"
            )

    def run(
        self,
        on_image: OnImage | None = None,
        on_skip: OnSkip | None = None,
        on_batch: OnBatch | None = None,
    ) -> Manifest:
        """Render every image; the manifest is complete once this returns.

        An image that cannot be read is skipped: ``on_skip(path, reason)`` is told
        and the manifest lists it under ``skipped``.  ``on_batch(count)``: images
        through the source (a model's forward pass) so far.
        """
        self.source.on_batch = on_batch
        with handling_signals():
            try:
                self._run(on_image, on_skip)
            except BaseException:  # Ctrl-C, SIGTERM or a failure: list every file on disk
                if self.manifest.figures or self.manifest.maps:
                    self._write_manifest()
                raise
        # a shard's share may be all unreadable: its part lists the skips (exit 3)
        nothing = not self.rendered and not self.manifest.images_done
        if self.manifest.skipped and nothing and not self.share.partial:
            first, more = self.manifest.skipped[0].reason, len(self.manifest.skipped) - 1
            also = f" (and {more} more input(s) that could not be read)" if more else ""
            raise UsageError(f"{first}{also}; nothing to render")
        self.manifest.complete = True
        self._write_manifest()
        return self.manifest

    def _run(self, on_image: OnImage | None, on_skip: OnSkip | None) -> None:
        for path, reason in self.share.skipped:
            self._skip(path, reason, on_skip)
        described = False
        read_failures = self.source.skipped
        seen = 0

        def warned(text: str) -> None:
            self.notes.setdefault(f"warning: {text}")

        with warnings_as_notes(warned), FigureDrawer(self.options.run.jobs, warned) as drawer:
            self._drawer = drawer
            try:
                for image, path in self.source.images():
                    for bad, reason in read_failures[seen:]:
                        self._skip(bad, reason, on_skip)
                    seen = len(read_failures)
                    self.manifest.model = {**image.model, **self.manifest.model}
                    if not described:
                        self._describe(image)
                        described = True
                    stem = self.share.folders.get(image.source)
                    stem = stem or self.out.folder_for(Path(image.source or path))
                    self._render_image(image, stem)
                    self.rendered += 1
                    if on_image is not None:
                        self._drawer.then(lambda path=path: on_image(path))
                for bad, reason in read_failures[seen:]:
                    self._skip(bad, reason, on_skip)
                self._render_run_kinds()
                drawer.finish()
            finally:
                self._drawer = FigureDrawer()

    def _skip(self, path: Path, reason: str, on_skip: OnSkip | None) -> None:
        """Leave an input out, in drawing order (the manifest never depends on --jobs)."""

        def record() -> None:
            self.manifest.skipped.append(SkippedEntry(str(path), reason))
            if on_skip is not None:
                on_skip(path, reason)

        self._drawer.then(record)

    def _describe(self, image: ImageMaps) -> None:
        """The manifest's model entry, from the first image."""
        last = image.layers[-1][1]
        capture = self.source.capture()
        if capture is not None:  # known for sure once a forward pass ran
            self.manifest.model["capture"] = capture
        self.manifest.model.update(
            layers=image.names,
            heads=int(last.shape[0]),
            tokens=image.layout.num_tokens,  # the image's, never a cross layer's keys
            input_size=[image.view.height, image.view.width],
            **image.layout.to_dict(),
        )

    def _request(self, image: ImageMaps) -> dict[str, Any]:
        """The parts of every figure request of this image that do not depend on the layer."""
        figure = self.options.figure
        layout = image.layout
        point = None
        if self.options.run.query_pixel is not None:
            point = self.source.locate(image, self.options.run.query_pixel)
        view_hw = (image.view.height, image.view.width)
        name = Path(image.source).name
        return {
            "view": image.view,
            "head": figure.head,
            "query": query_patch(layout, figure.query, point, view_hw),
            "cmap": figure.cmap,
            "alpha": figure.alpha,
            "upsample": figure.upsample.value,
            "title": f"{self.source.title} · {name}" if self.source.title else name,
            "token": figure.token,
            "threshold": figure.threshold,
            "fusion": figure.fusion.value,
            "discard_ratio": figure.discard_ratio,
            "windows": image.windows,
            "scale": figure.scale.value,
        }

    def _render_image(self, image: ImageMaps, stem: str) -> None:
        """Queue the image's figures; once they are written, rewrite the manifest when due."""
        image.check_drawable(self.options.run.window)
        names = image.names
        layers = select_layers(names, self.options.run.layer)
        by_name = dict(image.layers)
        check_head(self.options.figure.head, [by_name[name] for name in layers])
        if any(Uses.TOKEN in kind.uses for kind in self.kinds):
            check_token(self.options.figure.token, image.layout)
        base = self._request(image)
        if self.options.run.save_maps:
            relative = Path(stem) / "maps.npz"
            float16 = self.options.run.maps_float16
            data = image.to_npz(self.manifest.model, float16)
            with critical():  # written and listed together
                self.out.write(relative, data)
                self.manifest.maps.append(MapsEntry(image.source, relative.as_posix()))
        for kind in self.kinds:
            if kind.scope is Scope.LAYER:
                for layer in layers:
                    self._render_layer(kind, image, (layer, names.index(layer)), base, stem)
                continue
            last = names[-1]
            request = FigureRequest(
                maps=by_name[last],
                layout=image.layout,
                layer=last,
                layer_index=-1,
                all_layers=image.layers,  # only these kinds need them (sent to workers)
                **base,
            )
            if kind.model_pass is not None:
                request = replace(request, extra=image.extras.get(kind.name))
            if kind.scope is Scope.IMAGE:
                self._draw(kind, request, Path(stem), image.source, None)
            for collector in (kind, kind.aggregate):
                if collector is not None and collector.collect is not None:
                    state = self._states.get(collector.name)
                    self._states[collector.name] = collector.collect(state, request)
                    self._images[collector.name] = self._images.get(collector.name, 0) + 1
        for text in self.source.notes:
            self._note(text)
        self._drawer.then(lambda: self.manifest.images_done.append(image.source))
        self._drawer.then(lambda: self._write_manifest(force=False))

    def _render_layer(
        self,
        kind: FigureKind,
        image: ImageMaps,
        at: tuple[str, int],  # the layer's name and index
        base: dict[str, Any],
        stem: str,
    ) -> None:
        layer, index = at
        maps = image.layers[index][1]
        layout = image.layout.for_tokens(maps.shape[-1])
        reason = kind.skip_reason(LayerView(layer, maps, layout, image.windows.get(layer)))
        if reason:
            self._note(reason)
            return
        request = FigureRequest(
            maps=maps,
            layout=layout or layer_layout(image.layout, maps.shape[-1]),
            layer=layer,
            layer_index=index,
            **base,
        )
        window = image.windows.get(layer)
        self._draw(kind, request, Path(stem), image.source, index, window)

    def _render_run_kinds(self) -> None:
        """The per-run kinds' figures, from what they collected over every image;
        aggregates of per-image kinds only when there were several images."""
        drawn = False
        for kind in self.kinds:
            if kind.scope is Scope.RUN and kind.name in self._states:
                self._draw(kind, self._states[kind.name], Path(), None, None)
                drawn = True
            aggregate = kind.aggregate
            collected = self._images.get(aggregate.name, 0) if aggregate else 0
            several = not self.share.partial and collected >= 2
            if aggregate is not None and several:
                self._draw(aggregate, self._states[aggregate.name], Path(), None, None)
                drawn = True
        if drawn:
            self._drawer.then(self._write_manifest)

    def _draw(
        self,
        kind: FigureKind,
        payload: Any,
        folder: Path,
        image: str | None,
        layer: int | None,
        window: tuple[int, int] | None = None,
    ) -> None:
        figure = self.options.figure
        tags = file_tags(kind.uses, figure, self.options.run.window if window else None)
        relative = folder / tagged_name(kind.file_name(payload), tags)
        is_request = isinstance(payload, FigureRequest)
        entry = {
            "image": image,
            "figure": kind.name,
            "layer": layer,
            "layer_name": payload.layer if layer is not None else None,
            "head": head_entry(figure.head) if Uses.HEAD in kind.uses else None,
            "query": list(payload.query) if is_request and Uses.QUERY in kind.uses else None,
            "window": list(window) if window is not None else None,
            "style": figure.style.value,
            "path": relative.as_posix(),
        }

        def deliver(drawn: Drawn | None, problem: str | None) -> None:
            if drawn is None:
                self.notes.setdefault(f"{kind.name}: {problem}")
                return
            values = dict(drawn.values) if drawn.values else None
            with critical():  # written and listed together
                self.out.write(relative, drawn.png)
                self.manifest.figures.append(FigureEntry(**entry, values=values))

        self._drawer.draw(kind.draw_function(figure.style), payload, deliver)

    def _note(self, text: str) -> None:
        """Add a note in drawing order (so notes never depend on --jobs)."""
        self._drawer.then(lambda: self.notes.setdefault(text))

    def _write_manifest(self, force: bool = True) -> None:
        """Rewrite the manifest; between images only when the throttle says so."""
        if not force and not self.throttle.due():
            return
        self.manifest.notes = list(self.notes)
        with critical(), self.throttle.timing():
            self.out.write(self.share.record_name, self.manifest.to_bytes())
