"""The steps of ``render`` after its options are parsed, in the order that fails fast.

1. what needs no model: model and checkpoint files, the images (header only);
2. the job (``run/pipeline.py``, one path for plain, ``--image-list``, ``--resume``
   and ``--shard`` runs): the output directory is locked; the model loads only when
   an image is left to draw (the progress display says which weights it got);
   --layer and --query are checked against it before any forward pass;
3. the report: unreadable images are skipped, each with one line, and the command
   ends with exit 3 (``EXIT_SKIPPED``) when any of this process's were.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..errors import UsageError
from ..run.jobs import AUTO_JOBS_FROM_IMAGES, MAX_AUTO_JOBS, choose_jobs
from ._common import note, prepare_model
from .checks import check_model_files, split_readable
from .errors import EXIT_SKIPPED
from .progress import RunProgress

if TYPE_CHECKING:
    from ..options import CaptureOptions, RenderOptions, RunOptions
    from ..run.job import Job
    from ..run.outdir import OutputDir
    from ..run.pipeline import Build, Outcome
    from ..run.plan import Share
    from ..run.render_run import RenderRun

__all__ = ["AUTO_JOBS_FROM_IMAGES", "MAX_AUTO_JOBS", "render_from_maps", "render_from_model"]


@dataclass
class Inputs:
    """What ``render`` was asked to run over."""

    specs: list[str] | None
    image_list: Path | None = None
    shard: str | None = None
    resume: bool = False


def render_from_model(
    model: str,
    inputs: Inputs,
    options: RenderOptions,
    capture: CaptureOptions,
    jobs: int | None,
    out: Path,
    quiet: bool,
    progress: RunProgress,
) -> None:
    from ..run.inputs import leave_out_outputs
    from ..run.job import Job
    from ..run.plan import options_record
    from ..run.shards import Shard, local_device
    from ._jobs import gather_images, refuse_per_run_kinds

    check_model_files(model, capture.checkpoint)
    images, inside = leave_out_outputs(gather_images(inputs.specs, inputs.image_list), out)
    if inside:
        note(f"note: {inside}", quiet)
    shard = Shard.parse(inputs.shard) if inputs.shard else Shard.from_env()
    refuse_per_run_kinds(options, shard, inputs.resume)
    _readable, unreadable = split_readable(images)
    capture = replace(capture, device=local_device(capture.device))
    if capture.device == "cpu":
        from ..run.jobs import share_torch_threads

        share_torch_threads()

    def build(out_dir: OutputDir, todo: list[Path], share: Share) -> RenderRun:
        from ..run.render_run import RenderRun

        progress.stage(f"loading the model {model} (torch, timm, weights)")
        loaded, recorder, preprocessor = prepare_model(model, capture, quiet, progress.say)
        weights = "pretrained" if loaded.pretrained else "random (not meaningful)"
        progress.stage(f"{loaded.name} loaded, {weights} weights; first forward pass")
        run_options = replace(options, run=_with_jobs(options.run, jobs, len(todo), quiet))
        return RenderRun.from_model(
            out_dir, run_options, todo, loaded, recorder, preprocessor, capture.device,
            capture.dtype, share,
        )  # fmt: skip

    job = Job(
        out, images, shard, inputs.resume, options_record(options, capture, model),
        options.run.html, options.run.viewer, options.figure.to_json(),
        {str(p): why for p, why in unreadable},
    )  # fmt: skip
    _run(job, build, quiet, progress, forward=True)


def render_from_maps(
    options: RenderOptions,
    files: list[Path],
    jobs: int | None,
    out: Path,
    quiet: bool,
    progress: RunProgress,
) -> None:
    from ..run.job import Job
    from ..run.render_run import RenderRun

    for path in files:  # all checked before the run replaces anything in --out
        if path.is_dir():
            raise UsageError(f"--from-maps {path} is a folder: give its maps.npz files")
        if not path.is_file():
            raise UsageError(f"--from-maps {path}: no such file")
        if not zipfile.is_zipfile(path):
            raise UsageError(
                f"--from-maps {path} is not a maps file (an .npz written by --save-maps); "
                "images are rendered with --model and --image"
            )
    RenderRun.check_saved_maps(options)  # before --out is created
    options = replace(options, run=_with_jobs(options.run, jobs, len(files), quiet))

    def build(out_dir: OutputDir, todo: list[Path], share: Share) -> RenderRun:
        return RenderRun.from_maps(out_dir, options, todo, share)

    figure_json = options.figure.to_json()  # the images the maps came from name the folders
    job = Job(
        out, files, html=options.run.html, viewer=options.run.viewer, figure_json=figure_json,
        name_folders=False,
    )  # fmt: skip
    _run(job, build, quiet, progress, forward=False)


def _run(job: Job, build: Build, quiet: bool, progress: RunProgress, forward: bool) -> None:
    from ..run.pipeline import run_job

    events = Events(progress, quiet)
    outcome = run_job(job, build, events, forward=forward)
    events.flush()
    _report(outcome, job.out, quiet)


@dataclass
class Events:
    """The run's events on the terminal: the progress display, and one line per
    skipped input, held back until an image renders (if none does, the one error
    says it all)."""

    progress: RunProgress
    quiet: bool
    rendered: bool = False
    waiting: list[str] = field(default_factory=list)

    def stage(self, text: str) -> None:
        self.progress.stage(text)

    def images(self, total: int, forward: bool = True) -> None:
        self.progress.images(total, forward=forward)

    def forwarded(self, count: int) -> None:
        self.progress.forwarded(count)

    def drawn(self, path: Path) -> None:
        self.rendered = True
        self.progress.drawn(path)

    def skipped(self, path: Path, reason: str) -> None:
        self.progress.drawn(path)
        self.waiting.append(f"skipped: {reason}")
        if self.rendered:
            self.flush()

    def flush(self) -> None:
        for line in self.waiting:
            note(line, self.quiet, self.progress.say)
        self.waiting.clear()


def _report(outcome: Outcome, out: Path, quiet: bool) -> None:
    for message in outcome.manifest.notes:
        note(f"note: {message}", quiet)
    where = f" (shard {outcome.shard})" if outcome.shard is not None else ""
    finished = f", {outcome.finished} already finished" if outcome.finished else ""
    done = f"wrote {_count(outcome.figures, 'figure')} for {_count(outcome.images, 'image')}"
    done += f"{where} to {out}"
    done += finished
    from ..render.html import INDEX
    from ..viewer.page import VIEWER_FILE

    pages = [page for page in (INDEX, VIEWER_FILE) if page in outcome.manifest.pages]
    if pages:  # the pages to open, where a terminal can click them
        done += "; open " + " or ".join(str(out / page) for page in pages)
    if outcome.shard is not None and not outcome.manifest.complete:
        note(f"{out}/manifest.json is complete once every shard has finished", quiet)
    if not outcome.skipped:
        note(done, quiet)
        return
    skipped = _count(outcome.skipped, "input")
    note(f'{done}; skipped {skipped}, listed in manifest.json under "skipped"', quiet)
    raise typer.Exit(EXIT_SKIPPED)


def _count(number: int, noun: str) -> str:
    """``1 figure``, ``3 figures``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _with_jobs(run: RunOptions, jobs: int | None, images: int, quiet: bool = True) -> RunOptions:
    """--jobs, or the default; never more workers than cores or figures (run/jobs.py)."""
    figures = None if run.all_layers else images * len(run.figures)  # unknown: per layer
    chosen, capped = choose_jobs(jobs, images, figures)
    if capped:
        note(f"note: {capped}", quiet)
    return replace(run, jobs=chosen)
