"""A render job over one ``--out``: this process's share (``--shard``), what an
earlier run already finished (``--resume``), and the records it leaves.

A plain run is a job of one shard with nothing to resume: every run, sharded or
not, opens its :class:`Job`, renders its :class:`JobDir`'s share and finishes it
here, so every kind of run replaces old output, keeps finished images and writes
its records the same way.  The run replaces only what the records name
(``run/previous.py``); a job refuses, with one line, to mix with another job's
unfinished shards or with shards split another way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .manifest import MANIFEST, Manifest, SkippedEntry
from .outdir import LOCK_NAME, OutputDir, OutputDirError, held_lock, locked_output_dir
from .plan import Finished, Share, assign_folders, finished_images
from .previous import (
    Earlier,
    part_paths,
    pending_name,
    read_earlier,
    read_pending,
    remove_earlier,
    remove_files,
    shards_folder,
)
from .publish import publish
from .shards import Shard, merge_parts, shard_output_dir

__all__ = ["Job", "JobDir"]

PLAIN_RUN_WAIT_S = 5.0  # shards hold the directory's lock for milliseconds to merge
_PART = re.compile(r"part-(\d+)-of-(\d+)\.json")


@dataclass
class Job:
    """A render job: every input of it (in order), this process's shard, --resume."""

    out: Path
    images: list[Path]
    shard: Shard | None = None
    resume: bool = False
    record: dict[str, Any] | None = None  # the manifest's job_options (None: --from-maps)
    html: bool = False
    viewer: bool = False  # viewer.html over the saved maps (--viewer)
    figure_json: dict[str, Any] = field(default_factory=dict)  # the manifest's "options"
    unreadable: Mapping[str, str] = field(default_factory=dict)  # input -> why, found early
    name_folders: bool = True  # False for saved maps: their images name the folders

    def __post_init__(self) -> None:
        if self.shard is not None and self.shard.count == 1:
            self.shard = None  # one shard of one: the plain run it is
        if self.shard is not None:  # every shard must split the same list the same way
            self.images = sorted(self.images, key=lambda p: p.as_posix())

    @property
    def mine(self) -> list[Path]:
        return self.images if self.shard is None else self.shard.take(self.images)

    @contextmanager
    def open(self) -> Iterator[JobDir]:
        """Lock the output (the shard's lock when sharded), check that this job may
        use it, and plan this process's share."""
        with self._locked() as out_dir:
            earlier = read_earlier(self.out)
            if self.shard is None:
                _refuse_running_shards(self.out)
                _refuse_unfinished_other_job(self.out, earlier, self.record)
            else:
                _refuse_other_split(self.out, self.shard)
                _refuse_during_plain_run(self.out)
            finished = finished_images(self.out, earlier, self.record) if self.resume else None
            finished = finished or Finished()
            readable = [p for p in self.images if str(p) not in self.unreadable]
            folders = assign_folders(readable, finished) if self.name_folders else {}
            job_dir = JobDir(self, out_dir, earlier, finished, folders)
            out_dir.before_first_write = job_dir.start  # a refused run changes nothing
            yield job_dir

    def _locked(self) -> AbstractContextManager[OutputDir]:
        if self.shard is None:
            return locked_output_dir(self.out)
        return shard_output_dir(self.out, self.shard)


@dataclass
class JobDir:
    """One process's share of a job, in its locked output directory."""

    job: Job
    out_dir: OutputDir
    earlier: Earlier
    finished: Finished
    folders: dict[str, str]
    started: bool = False

    @property
    def todo(self) -> list[Path]:
        """This share's readable images not finished yet: what the run renders."""
        left = [p for p in self.job.mine if str(p) not in self.finished]
        return [p for p in left if str(p) not in self.job.unreadable]

    @property
    def record_name(self) -> Path:
        return Path(MANIFEST) if self.job.shard is None else self.job.shard.part()

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

    def share(self) -> Share:
        """What the render run of this share is given."""
        kept = self.kept()
        unreadable = self.job.unreadable
        skipped = tuple((p, unreadable[str(p)]) for p in self.job.mine if str(p) in unreadable)
        return Share(
            folders=dict(self.folders),
            record_name=self.record_name,
            partial=self.job.shard is not None or bool(kept.images_done),
            kept=kept,
            job_options=self.job.record,
            skipped=skipped,
            notes=tuple(self.earlier.notes),
        )

    def start(self) -> None:
        """Before this share writes anything: replace the earlier output it owns (a
        shard: its own part's), then a shard publishes its (incomplete) part, so
        manifest.json is never an earlier run's complete one while this job runs."""
        if self.started:
            return
        self.started = True
        keep = set(self.kept().files())
        if self.job.shard is None:  # then an incomplete manifest, never the earlier one
            remove_earlier(self.job.out, self.earlier, keep, self.job.images)
            self.out_dir.write_record(self.record_name, self.kept().to_bytes())
            return
        old = self.earlier.parts.get(self.record_name)
        listed = read_pending(self.job.out, pending_name(self.record_name))
        if old is not None and old.job_options != self.job.record:
            listed += old.files()  # another job's: this shard's to replace
        listed += self._unsharded_files()
        remove_files(self.job.out, [f for f in listed if f not in keep], self.job.images)
        self.out_dir.write_record(self.record_name, self.kept().to_bytes())
        merge_parts(*self._merge_args())

    def _unsharded_files(self) -> list[str]:
        """Files manifest.json lists and no part does: a run without --shard wrote
        them, and the merge would leave them unlisted, so they are replaced (its
        pages are not: the merge keeps listing them)."""
        manifest = self.earlier.manifest
        if manifest is None:
            return []
        in_parts = {f for part in self.earlier.parts.values() for f in part.files()}
        own = [f.path for f in manifest.figures] + [m.path for m in manifest.maps]
        return [f for f in own if f not in in_parts]

    def without_run(self, on_skip: Callable[[Path, str], None]) -> Manifest:
        """The share's records when nothing is left to draw: the kept ones, and the
        unreadable inputs, each told to ``on_skip``."""
        manifest = self.kept()
        manifest.notes += [n for n in self.earlier.notes if n not in manifest.notes]
        for path, reason in self.share().skipped:
            manifest.skipped.append(SkippedEntry(str(path), reason))
            on_skip(path, reason)
        return manifest

    def _merge_args(self) -> tuple[OutputDir, int, bool, Any, bool]:
        assert self.job.shard is not None
        job = self.job
        return self.out_dir, job.shard.count, job.html, job.record, job.viewer

    def publish_after_failure(self) -> None:
        """After a failure: merge what this shard's part lists (best effort); nothing
        when it failed before writing anything (a refused run leaves the output be)."""
        if self.job.shard is not None and self.started:
            try:
                merge_parts(*self._merge_args())
            except Exception:  # the original error is what matters
                pass

    def finish(self, manifest: Manifest) -> Manifest:
        """Write this share's final records (in image order), the HTML page when
        asked, and, when sharded, merge the parts."""
        self.start()  # nothing was left to draw: nothing was written yet
        manifest.complete = True
        order = {str(p): i for i, p in enumerate(self.job.images)}
        last = len(order)
        manifest.figures.sort(key=lambda f: order.get(f.image or "", last))
        manifest.maps.sort(key=lambda m: order.get(m.image, last))
        manifest.images_done.sort(key=lambda image: order.get(image, last))
        if self.job.shard is None:
            return publish(self.out_dir, manifest, self.record_name, self.job.html, self.job.viewer)
        self.out_dir.write_record(self.record_name, manifest.to_bytes())
        return merge_parts(*self._merge_args())


def _refuse_running_shards(out: Path) -> None:
    """A run without --shard while a shard runs on ``out`` would have its complete
    manifest replaced by the shard's merge: refused."""
    folder = shards_folder(out)
    for lock in sorted(folder.glob("*.lock")) if folder is not None else ():
        busy = (
            f"--out {out}: shard {lock.stem.replace('-of-', '/')} of a sharded job is "
            f"running there; wait for it to finish, or use another --out"
        )
        with held_lock(out, lock, 0, busy):
            pass


def _refuse_unfinished_other_job(out: Path, earlier: Earlier, record: Any) -> None:
    manifest = earlier.manifest
    if manifest is None or manifest.complete or not earlier.parts:
        return
    if manifest.job_options is None or manifest.job_options == record:
        return  # this job's own shards: this run finishes the job
    count = len(earlier.parts)
    raise OutputDirError(
        f"--out {out} holds an unfinished sharded job with other options ({count} part(s) "
        f"written); finish it with its --shard runs, or remove {out}/.shards to replace it"
    )


def _refuse_other_split(out: Path, shard: Shard) -> None:
    counts = {int(m[2]) for p in part_paths(out) if (m := _PART.fullmatch(p.name))}
    other = sorted(counts - {shard.count})
    if other:
        raise OutputDirError(
            f"--shard {shard}: --out {out} holds the parts of a job split in {other[0]} "
            f"(.shards/part-K-of-{other[0]}.json); use --shard K/{other[0]}, or a run "
            f"without --shard to replace that job"
        )


def _refuse_during_plain_run(out: Path) -> None:
    """A shard while a run without --shard holds ``out``: that run's complete manifest
    would be replaced by this shard's merge.  (Shards merging hold the lock for
    milliseconds: they are waited for.)"""
    busy = f"--out {out} is in use by a run without --shard; wait for it, or use another --out"
    with held_lock(out, out / LOCK_NAME, PLAIN_RUN_WAIT_S, busy):
        pass
