"""``render`` over many images: ``--shard``, ``--resume``, ``--image-list`` (and ranks
given by torchrun or SLURM).  Nothing heavy is imported at module level."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from ..run.jobs import MAX_AUTO_DECODE_WORKERS
from ._common import note, prepare_model

if TYPE_CHECKING:
    from ..options import CaptureOptions, RenderOptions
    from ..run.manifest import Manifest
    from ..run.plan import JobDir
    from .progress import RunProgress

RUN_PANEL = "Running"

ShardOption = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="Render shard K of N (K from 0) of the sorted inputs; shards may run at once "
        "against one --out, and the last to finish writes the complete manifest. Default: "
        "RANK/WORLD_SIZE (torchrun) or SLURM_PROCID/SLURM_NTASKS when set.",
        show_default=False,
        rich_help_panel=RUN_PANEL,
    ),
]
ResumeOption = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Skip images whose figures (same options) --out already lists as finished; "
        "their files are left untouched.",
        rich_help_panel=RUN_PANEL,
    ),
]
ImageListOption = Annotated[
    Path | None,
    typer.Option(
        "--image-list",
        help="A text file of image paths, one per line (# comments and blank lines "
        "ignored; relative paths are relative to the file).",
        show_default=False,
        rich_help_panel="Input and output",
    ),
]

DecodeWorkersOption = Annotated[
    int | None,
    typer.Option(
        "--decode-workers",
        min=0,
        help="Processes reading and resizing the next images while the model runs (a "
        "torch DataLoader); 0 reads them in this process. Default: none for a single "
        f"batch, else one per four CPU cores (1 to {MAX_AUTO_DECODE_WORKERS}).",
        show_default=False,
        rich_help_panel=RUN_PANEL,
    ),
]

Start = Callable[["JobDir"], "Manifest"]


def gather_images(specs: list[str] | None, image_list: Path | None) -> list[Path]:
    """``--image`` arguments, then ``--image-list``'s paths, without repeats."""
    from ..images import collect_images
    from ..run.inputs import read_image_list

    if not specs and image_list is None:
        raise UsageError("--image is required: a file, a directory or a glob (or --image-list)")
    found = collect_images(specs) if specs else []
    if image_list is not None:
        found += read_image_list(image_list)
    return list(dict.fromkeys(found))


def local_device(device: str) -> str:
    """``--device cuda`` under torchrun/srun: this rank's GPU (``cuda:LOCAL_RANK``)."""
    from ..run.shards import local_device as for_rank

    return for_rank(device)


def is_job(image_list: Path | None, shard: str | None, resume: bool) -> bool:
    """Whether ``render`` runs as a planned job (else the plain single run of steps.py)."""
    from ..run.shards import Shard

    return image_list is not None or shard is not None or resume or Shard.from_env() is not None


def render_job(
    model: str,
    specs: list[str] | None,
    image_list: Path | None,
    options: RenderOptions,
    capture: CaptureOptions,
    jobs: int | None,
    out: Path,
    quiet: bool,
    shard: str | None,
    resume: bool,
    progress: RunProgress,
) -> None:
    """``render`` with --image-list, --shard (or a launcher's rank) or --resume."""
    from dataclasses import replace

    from .checks import check_model_files
    from .steps import _with_jobs

    check_model_files(model, capture.checkpoint)
    images = gather_images(specs, image_list)
    capture = replace(capture, device=local_device(capture.device))
    if capture.device == "cpu":
        from ..run.jobs import share_torch_threads

        share_torch_threads()

    def start(job_dir: JobDir) -> Manifest:
        from ..run.render_run import RenderRun

        todo = job_dir.todo
        run_options = replace(options, run=_with_jobs(options.run, jobs, len(todo)))
        progress.stage(f"loading the model {model} (torch, timm, weights)")
        loaded, recorder, preprocessor = prepare_model(model, capture, quiet, progress.say)
        run = RenderRun.from_model(
            job_dir.out_dir, run_options, todo, loaded, recorder, preprocessor, capture.device,
            capture.dtype,
        )  # fmt: skip
        job_dir.prepare(run)
        progress.images(len(todo))
        return run.run(on_image=progress.drawn)

    manifest = run_job(
        out=out, options=options, capture=capture, model=model, images=images,
        shard_text=shard, resume=resume, start=start, quiet=quiet,
    )  # fmt: skip
    if manifest.skipped:
        from .errors import EXIT_SKIPPED

        note(
            f'skipped {len(manifest.skipped)} input(s), listed in manifest.json under "skipped"',
            quiet,
        )
        raise typer.Exit(EXIT_SKIPPED)


def run_job(
    *,
    out: Path,
    options: RenderOptions,
    capture: CaptureOptions,
    model: str,
    images: list[Path],
    shard_text: str | None,
    resume: bool,
    start: Start,
    quiet: bool,
) -> Manifest:
    """Plan this process's share of the job, render what is left, write the records."""
    from ..render.kinds import KINDS
    from ..render.registry import Scope
    from ..run.plan import Job, options_record
    from ..run.shards import Shard

    shard = Shard.parse(shard_text) if shard_text else Shard.from_env()
    per_run = [k for k in options.run.figures if KINDS[k].scope is Scope.RUN]
    if per_run and (shard is not None or resume):
        raise UsageError(
            f"--figures {per_run[0]} draws one figure from every image: it cannot be split "
            f"by --shard or continued by --resume; render it in a separate run"
        )
    record = options_record(options, capture, model)
    job = Job(out, images, shard, resume, record, options.run.html, options.figure.to_json())
    with job.open() as job_dir:
        todo, kept = len(job_dir.todo), len(job_dir.kept().figures)
        try:
            manifest = job_dir.finish(start(job_dir) if todo else None)
        except BaseException:
            job_dir.publish()  # what an interrupted shard finished is listed all the same
            raise
        if options.run.html and shard is None:
            from ..render.html import write_index

            write_index(out, manifest)
    for message in manifest.notes:
        note(f"note: {message}", quiet)
    mine = len(job.mine)
    mine_names = {str(p) for p in job.mine}
    where = f" (shard {shard})" if shard is not None else ""
    skipped = f", {mine - todo} already finished" if resume else ""
    drawn = len([f for f in manifest.figures if f.image is None or f.image in mine_names])
    note(f"wrote {drawn - kept} figures for {todo} image(s){where} to {out}{skipped}", quiet)
    if shard is not None and not manifest.complete:
        note(f"{out}/manifest.json is complete once every shard has finished", quiet)
    return manifest
