"""A job over many images: this process's share (``--shard``), what an earlier run
already finished (``--resume``), and where each image's files go.

Folder names are fixed over the whole job (the sorted list when sharded), with the
folders of finished images reserved first, so every shard, and a resumed run,
names an image's folder the same way and never writes into another image's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..images import safe_stem
from ..render.output import write_bytes_atomic
from .manifest import MANIFEST, FigureEntry, Manifest, MapsEntry
from .outdir import FolderNames, OutputDir, locked_output_dir, remove_listed
from .shards import SHARDS_DIR, Shard, merge_parts, read_part, shard_output_dir

if TYPE_CHECKING:
    from ..options import CaptureOptions, RenderOptions
    from .render_run import RenderRun

__all__ = ["Job", "JobDir", "assign_folders", "finished_images", "options_record"]

# Run options that change no file: how fast, where, and what else is written.
_RUN_FIELDS = ("figures", "layer", "query_pixel", "window", "save_maps", "maps_float16")


def options_record(
    options: RenderOptions, capture: CaptureOptions, model: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything that decides the figures' content, as JSON (the manifest's ``job_options``)."""
    run = {name: getattr(options.run, name) for name in _RUN_FIELDS}
    loading = asdict(capture)
    loading.pop("device")  # the same figures on any device
    record = {"model": model, "figure": asdict(options.figure), "run": run, "capture": loading}
    record.update(extra or {})
    normalised: dict[str, Any] = json.loads(json.dumps(record, default=str))
    return normalised


@dataclass
class Finished:
    """Earlier runs' records of finished images (same options, every file present)."""

    figures: dict[str, list[FigureEntry]] = field(default_factory=dict)
    maps: dict[str, list[MapsEntry]] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    run_figures: list[FigureEntry] = field(default_factory=list)  # aggregates over images

    def __contains__(self, image: object) -> bool:
        return image in self.figures


def finished_images(out: Path, record: dict[str, Any]) -> Finished:
    """Read ``manifest.json`` and every shard part in ``out``: the images they list as
    finished with these options whose files are all there."""
    paths = [out / MANIFEST, *sorted((out / SHARDS_DIR).glob("part-*.json"))]
    found = Finished()
    for manifest in (read_part(p) for p in paths):
        if manifest is None or manifest.job_options != record:
            continue
        done = set(manifest.images_done) - set(found.figures)
        figures: dict[str, list[FigureEntry]] = {image: [] for image in done}
        maps: dict[str, list[MapsEntry]] = {image: [] for image in done}
        for entry in manifest.figures:
            if entry.image in figures:
                figures[entry.image].append(entry)
        for maps_entry in manifest.maps:
            if maps_entry.image in maps:
                maps[maps_entry.image].append(maps_entry)
        for image in done:
            files = [e.path for e in figures[image]] + [m.path for m in maps[image]]
            if all((out / f).is_file() for f in files):
                found.figures[image], found.maps[image] = figures[image], maps[image]
        aggregates = [e for e in manifest.figures if e.image is None]
        if not found.run_figures and all((out / e.path).is_file() for e in aggregates):
            found.run_figures = aggregates
        if done and manifest.model.get("layers"):
            found.model = found.model or manifest.model
        found.notes += [n for n in manifest.notes if n not in found.notes]
    return found


def assign_folders(images: list[Path], finished: Finished) -> dict[str, str]:
    """Each image's folder: finished images keep theirs, the rest are named in order."""
    taken: set[str] = FolderNames()
    folders: dict[str, str] = {}
    for image, entries in finished.figures.items():
        paths = [Path(e.path) for e in entries] + [Path(m.path) for m in finished.maps[image]]
        tops = {p.parts[0] for p in paths if len(p.parts) > 1}
        if len(tops) == 1:
            folders[image] = tops.pop()
            taken.add(folders[image])
    for path in images:
        if str(path) not in folders:
            folders[str(path)] = safe_stem(path, taken)
    return folders


@dataclass
class Job:
    """A render job: every image of it (in order), this process's shard, and --resume."""

    out: Path
    images: list[Path]
    shard: Shard | None = None
    resume: bool = False
    record: dict[str, Any] = field(default_factory=dict)
    html: bool = False
    figure_json: dict[str, Any] = field(default_factory=dict)  # the manifest's "options"

    def __post_init__(self) -> None:
        if self.shard is not None:  # every shard must split the same list the same way
            self.images = sorted(self.images, key=lambda p: p.as_posix())

    @property
    def mine(self) -> list[Path]:
        return self.images if self.shard is None else self.shard.take(self.images)

    @contextmanager
    def open(self) -> Iterator[JobDir]:
        """Lock the output (the shard's lock when sharded) and plan this process's share."""
        opened = locked_output_dir if self.shard is None else _shard_dir(self.shard)
        with opened(self.out) as out_dir:
            finished = finished_images(self.out, self.record) if self.resume else Finished()
            job_dir = JobDir(self, out_dir, finished, assign_folders(self.images, finished))
            out_dir.before_first_write = job_dir.start  # a refused run changes nothing
            yield job_dir


def _shard_dir(shard: Shard) -> Any:
    return lambda out: shard_output_dir(out, shard)


@dataclass
class JobDir:
    """One process's share of a job, in its locked output directory."""

    job: Job
    out_dir: OutputDir
    finished: Finished
    folders: dict[str, str]
    started: bool = False

    @property
    def todo(self) -> list[Path]:
        return [p for p in self.job.mine if str(p) not in self.finished]

    def kept(self) -> Manifest:
        """This process's finished images' records, ready to be extended."""
        mine = [str(p) for p in self.job.mine if str(p) in self.finished]
        manifest = Manifest(model=dict(self.finished.model), job_options=self.job.record)
        manifest.options = dict(self.job.figure_json)
        for image in mine:
            manifest.figures += self.finished.figures[image]
            manifest.maps += self.finished.maps[image]
        manifest.images_done = mine
        manifest.notes = list(self.finished.notes) if mine else []
        if not self.todo and self.job.shard is None:  # a finished run keeps its aggregates
            manifest.figures += self.finished.run_figures
        return manifest

    def start(self) -> None:
        """Before this share writes anything: a shard replaces its own part from a job
        with other options and publishes its (incomplete) part, so manifest.json is then
        never an earlier run's complete one while this job runs."""
        if self.started:
            return
        self.started = True
        if self.job.shard is not None:
            self._replace_other_jobs_part()
            self._write(self.job.shard.part(), self.kept())
            merge_parts(self.job.out, self.job.shard.count, self.job.html, self.job.record)

    def _replace_other_jobs_part(self) -> None:
        """This shard's part from a job with other options (other figures, another
        model): its files are this shard's to replace, as a plain run replaces a run's."""
        old = read_part(self.job.out / self.job.shard.part()) if self.job.shard else None
        if old is not None and old.job_options != self.job.record:
            listed = [f.path for f in old.figures] + [m.path for m in old.maps]
            remove_listed(self.job.out, listed, keep=self.job.images)

    def prepare(self, run: RenderRun) -> None:
        """Point ``run`` at this share: folders, its manifest (part), the kept records."""
        kept = self.kept()
        run.folders = self.folders
        run.partial = self.job.shard is not None or self.job.resume
        if self.job.shard is not None:
            run.manifest_name = self.job.shard.part()
        run.manifest.figures += kept.figures
        run.manifest.maps += kept.maps
        run.manifest.images_done += kept.images_done
        run.manifest.job_options = self.job.record
        run.notes.update(dict.fromkeys(kept.notes))
        if run.partial:  # an aggregate would see only part of the job's images
            for kind in run.kinds:
                if kind.aggregate is not None:
                    run.notes.setdefault(
                        f"{kind.aggregate.name}: the aggregate over images is not drawn with "
                        f"--shard or --resume; render it in one run"
                    )

    def publish(self) -> None:
        """After a failure: merge what this shard's part lists (best effort); nothing
        when it failed before writing anything (a refused run leaves the output be)."""
        if self.job.shard is not None and self.started:
            try:
                merge_parts(self.job.out, self.job.shard.count, self.job.html, self.job.record)
            except Exception:  # the original error is what matters
                pass

    def finish(self, manifest: Manifest | None) -> Manifest:
        """Write this share's final records (in image order) and, when sharded, merge."""
        self.start()  # nothing was left to draw: nothing was written yet
        manifest = self.kept() if manifest is None else manifest
        manifest.complete = True
        order = {str(p): i for i, p in enumerate(self.job.images)}
        last = len(order)
        manifest.figures.sort(key=lambda f: order.get(f.image or "", last))
        manifest.maps.sort(key=lambda m: order.get(m.image, last))
        manifest.images_done.sort(key=lambda image: order.get(image, last))
        if self.job.shard is None:
            self._write(Path(MANIFEST), manifest)
            return manifest
        self._write(self.job.shard.part(), manifest)
        return merge_parts(self.job.out, self.job.shard.count, self.job.html, self.job.record)

    def _write(self, relative: Path, manifest: Manifest) -> None:
        write_bytes_atomic(self.job.out / relative, manifest.to_bytes())
