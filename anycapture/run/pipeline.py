"""The render pipeline: one path for every run (plain, ``--image-list``,
``--resume``, ``--shard``, ``--from-maps``).  A plain run is a job of one shard
with nothing to resume.  The CLI parses its arguments, then calls :func:`run_job`
with a builder of the run (which loads the model only when something is left to
draw) and the events its display shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .job import Job
from .manifest import Manifest
from .plan import Share
from .shards import Shard

if TYPE_CHECKING:
    from .outdir import OutputDir
    from .render_run import RenderRun

__all__ = ["Build", "Outcome", "RunEvents", "run_job"]

PAGES = (("viewer.html", "viewer"), ("index.html", "html"))  # written last, in this order


class RunEvents(Protocol):
    """What a run tells as it goes (the CLI's progress display and its lines)."""

    def stage(self, text: str) -> None: ...

    def images(self, total: int, forward: bool = True) -> None: ...

    def forwarded(self, count: int) -> None: ...

    def drawn(self, path: Path) -> None: ...

    def skipped(self, path: Path, reason: str) -> None: ...


Build = Callable[["OutputDir", list[Path], Share], "RenderRun"]


@dataclass(frozen=True)
class Outcome:
    """What one process did: its counts, and the job's manifest (merged when sharded)."""

    manifest: Manifest
    figures: int  # figures this process wrote
    images: int  # images this process rendered
    finished: int  # images an earlier run had finished (--resume)
    skipped: int  # this process's inputs that could not be read
    shard: Shard | None


def run_job(job: Job, build: Build, events: RunEvents, forward: bool = True) -> Outcome:
    """Render this process's share of ``job`` and write its records; the run is built
    (the model loaded) only when an image is left to draw."""
    with job.open() as job_dir:
        share = job_dir.share()
        todo = job_dir.todo
        kept = len(share.kept.figures) if share.kept else 0
        rendered = 0
        try:
            if todo:
                run = build(job_dir.out_dir, todo, share)
                events.images(len(todo) + len(share.skipped), forward=forward)
                mine = run.run(events.drawn, events.skipped, events.forwarded)
                rendered = run.rendered
            else:
                mine = job_dir.without_run(events.skipped)
            figures, skipped = len(mine.figures) - kept, len(mine.skipped)
            pages = [name for name, asked in PAGES if getattr(job, asked)]
            if pages:
                events.stage(f"writing {' and '.join(pages)}")
            manifest = job_dir.finish(mine)
        except BaseException:
            job_dir.publish_after_failure()  # what an interrupted shard finished is listed
            raise
        finished = len(share.kept.images_done) if share.kept else 0
    return Outcome(manifest, figures, rendered, finished, skipped, job.shard)
