"""What a job decides before it renders: what an earlier run already finished
(``--resume``), where each image's files go, and what the render run is given
(:class:`Share`).

Folder names are fixed over the whole job (the sorted list when sharded), with the
folders of finished images reserved first, so every shard, and a resumed run,
names an image's folder the same way and never writes into another image's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..images import safe_stem
from .manifest import MANIFEST, FigureEntry, Manifest, MapsEntry
from .outdir import FolderNames
from .previous import Earlier, is_regular

if TYPE_CHECKING:
    from ..options import CaptureOptions, RenderOptions

__all__ = ["Finished", "Share", "assign_folders", "finished_images", "options_record"]

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


def finished_images(out: Path, earlier: Earlier, record: dict[str, Any] | None) -> Finished:
    """The images that ``manifest.json`` and the shard parts (``earlier``, checked)
    list as finished with these options, whose files are all there."""
    found = Finished()
    for manifest in earlier.records():
        if record is None or manifest.job_options != record:
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
            if all(is_regular(out / f) for f in files):
                found.figures[image], found.maps[image] = figures[image], maps[image]
        aggregates = [e for e in manifest.figures if e.image is None]
        if not found.run_figures and all(is_regular(out / e.path) for e in aggregates):
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


@dataclass(frozen=True)
class Share:
    """What a job gives its render run, fixed before it starts: where each image's
    files go, which record it writes, what an earlier run finished."""

    folders: Mapping[str, str] = field(default_factory=dict)  # image -> folder
    record_name: Path = Path(MANIFEST)  # a shard writes its part
    partial: bool = False  # only part of the job's images: no aggregates over images
    kept: Manifest | None = None  # finished images' records, kept as they are
    job_options: dict[str, Any] | None = None  # the manifest's "job_options"
    skipped: tuple[tuple[Path, str], ...] = ()  # inputs found unreadable before the run
    notes: tuple[str, ...] = ()  # e.g. forged entries of an earlier manifest, ignored
