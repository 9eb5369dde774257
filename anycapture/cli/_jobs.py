"""``render``'s options for jobs over many images: ``--shard``, ``--resume``,
``--image-list`` (and ranks given by torchrun or SLURM).  The job itself is
``run/pipeline.py``'s, the same for every run.  Nothing heavy is imported at module
level."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from ..run.jobs import MAX_AUTO_DECODE_WORKERS

if TYPE_CHECKING:
    from ..options import RenderOptions
    from ..run.shards import Shard

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


def refuse_per_run_kinds(options: RenderOptions, shard: Shard | None, resume: bool) -> None:
    """A kind that draws one figure from every image cannot be split or continued."""
    from ..render.kinds import KINDS
    from ..render.registry import Scope

    per_run = [k for k in options.run.figures if KINDS[k].scope is Scope.RUN]
    if per_run and ((shard is not None and shard.count > 1) or resume):
        raise UsageError(
            f"--figures {per_run[0]} draws one figure from every image: it cannot be split "
            f"by --shard or continued by --resume; render it in a separate run"
        )
