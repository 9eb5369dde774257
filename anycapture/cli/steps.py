"""The steps of ``render`` after its options are parsed, in the order that fails fast.

1. what needs no model: model and checkpoint files, the images (header only), the
   output directory (created and locked);
2. the model loads (the progress display says which weights it got);
3. --layer and --query against the loaded model, before any forward pass;
4. the run: unreadable images are skipped, each with one line, and the command
   ends with exit 3 (``EXIT_SKIPPED``) when any was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
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
    from ..run.manifest import Manifest
    from ..run.outdir import OutputDir
    from ..run.render_run import RenderRun

__all__ = ["AUTO_JOBS_FROM_IMAGES", "MAX_AUTO_JOBS", "render_from_maps", "render_from_model"]


def render_from_model(
    model: str,
    specs: list[str],
    options: RenderOptions,
    capture: CaptureOptions,
    jobs: int | None,
    out: Path,
    quiet: bool,
    progress: RunProgress,
) -> None:
    from ..images import collect_images

    check_model_files(model, capture.checkpoint)
    images, unreadable = split_readable(collect_images(specs))
    options = replace(options, run=_with_jobs(options.run, jobs, len(images), quiet))

    def start(out_dir: OutputDir) -> RenderRun:
        from ..run.plan import options_record
        from ..run.render_run import RenderRun

        progress.stage(f"loading the model {model} (torch, timm, weights)")
        loaded, recorder, preprocessor = prepare_model(model, capture, quiet, progress.say)
        weights = "pretrained" if loaded.pretrained else "random (not meaningful)"
        progress.stage(f"{loaded.name} loaded, {weights} weights; first forward pass")
        run = RenderRun.from_model(
            out_dir, options, images, loaded, recorder, preprocessor, capture.device,
            capture.dtype,
        )  # fmt: skip
        run.skipped = list(unreadable)
        run.manifest.job_options = options_record(options, capture, model)  # for --resume
        return run

    _in_output_dir(out, options, start, len(images) + len(unreadable), quiet, progress)


def render_from_maps(
    options: RenderOptions,
    files: list[Path],
    jobs: int | None,
    out: Path,
    quiet: bool,
    progress: RunProgress,
) -> None:
    from ..run.render_run import RenderRun

    missing = [p for p in files if not p.is_file()]
    if missing:
        raise UsageError(f"--from-maps {missing[0]}: no such file")
    RenderRun.check_saved_maps(options)  # before --out is created
    options = replace(options, run=_with_jobs(options.run, jobs, len(files), quiet))

    def start(out_dir: OutputDir) -> RenderRun:
        return RenderRun.from_maps(out_dir, options, files)

    _in_output_dir(out, options, start, len(files), quiet, progress, forward=False)


def _in_output_dir(
    out: Path,
    options: RenderOptions,
    start: Callable[[OutputDir], RenderRun],
    count: int,
    quiet: bool,
    progress: RunProgress,
    forward: bool = True,
) -> None:
    """Lock ``out``, run, write the HTML index if asked, then report."""
    from ..render.html import write_index
    from ..run.outdir import locked_output_dir

    with locked_output_dir(out) as out_dir:
        run = start(out_dir)
        progress.images(count, forward=forward)
        if hasattr(run.source, "on_batch"):
            run.source.on_batch = progress.forwarded

        waiting: list[str] = []  # until an image renders: if none does, one error says it

        def skipped(path: Path, reason: str) -> None:
            progress.drawn(path)
            waiting.append(f"skipped: {reason}")
            if run.rendered:
                for line in waiting:
                    note(line, quiet, progress.say)
                waiting.clear()

        manifest = run.run(on_image=progress.drawn, on_skip=skipped)
        for line in waiting:
            note(line, quiet, progress.say)
        if options.run.html:
            progress.stage("writing index.html")
            run.add_pages(write_index(out, manifest))
    _report(manifest, count, out, quiet)


def _report(manifest: Manifest, count: int, out: Path, quiet: bool) -> None:
    for message in manifest.notes:
        note(f"note: {message}", quiet)
    skipped = len(manifest.skipped)
    done = f"wrote {len(manifest.figures)} figures for {count - skipped} image(s) to {out}"
    if not skipped:
        note(done, quiet)
        return
    note(f'{done}; skipped {skipped} input(s), listed in manifest.json under "skipped"', quiet)
    raise typer.Exit(EXIT_SKIPPED)


def _with_jobs(run: RunOptions, jobs: int | None, images: int, quiet: bool = True) -> RunOptions:
    """--jobs, or the default; never more workers than cores or figures (run/jobs.py)."""
    figures = None if run.all_layers else images * len(run.figures)  # unknown: per layer
    chosen, capped = choose_jobs(jobs, images, figures)
    if capped:
        note(f"note: {capped}", quiet)
    return replace(run, jobs=chosen)
