"""``anycapture render``: figures for one or more images (or from saved maps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..options import Fusion, Scale, Style, Upsample
from ..render.kinds import BUILT_IN
from ..run.jobs import AUTO_JOBS_FROM_IMAGES, MAX_AUTO_JOBS
from . import _jobs
from ._common import (
    MODEL_HELP,
    MODEL_PANEL,
    CaptureOption,
    CheckpointOption,
    ClassOption,
    DebugOption,
    DeviceOption,
    DtypeOption,
    ImgSizeOption,
    MeanOption,
    PretrainedOption,
    QuietOption,
    ResizeOption,
    StdOption,
    capture_options_from,
    complete_model,
    parse_pair,
)
from .progress import RunProgress

IO_PANEL = "Input and output"
FIGURES_PANEL = "Figures"
LOOK_PANEL = "Appearance"
KIND_PANEL = "cls and rollout"
RUN_PANEL = "Running"

FIGURES_HELP = "Comma-separated figure kinds: " + ", ".join(
    f"{name} ({text})" for name, text in BUILT_IN.items()
)


def render(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help=MODEL_HELP + " Not with --from-maps.",  # the command checks it is given
            show_default=False,
            rich_help_panel=MODEL_PANEL,
            autocompletion=complete_model,
        ),
    ] = None,
    image: Annotated[
        list[str] | None,
        typer.Option(
            "--image",
            "-i",
            help="An image file, a directory of images, or a glob; repeatable.",
            show_default=False,
            rich_help_panel=IO_PANEL,
        ),
    ] = None,
    out: Annotated[
        str,  # a string, so that --out '' is told apart from --out .
        typer.Option(
            "--out",
            "-o",
            help="Output directory; manifest.json lists every file.",
            rich_help_panel=IO_PANEL,
        ),
    ] = "anycapture-out",
    figures: Annotated[
        str, typer.Option("--figures", help=FIGURES_HELP, rich_help_panel=FIGURES_PANEL)
    ] = "head,heads,grid",
    layer: Annotated[
        str,
        typer.Option(
            "--layer",
            help="Attention layer index (negative counts from the end) or 'all'.",
            rich_help_panel=FIGURES_PANEL,
        ),
    ] = "-1",
    head: Annotated[
        str,
        typer.Option(
            "--head",
            help="Head for the head, grid and layers figures, or 'mean'.",
            rich_help_panel=FIGURES_PANEL,
        ),
    ] = "0",
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            help="Query patch ROW,COL for grid and layers (default: the centre patch).",
            show_default=False,
            rich_help_panel=FIGURES_PANEL,
        ),
    ] = None,
    query_pixel: Annotated[
        str | None,
        typer.Option(
            "--query-pixel",
            help="Pick the query patch by a pixel X,Y of the original image instead.",
            show_default=False,
            rich_help_panel=FIGURES_PANEL,
        ),
    ] = None,
    window: Annotated[
        int | None,
        typer.Option(
            "--window",
            help="Windowed attention (Swin): which window to draw (default: the middle one).",
            show_default=False,
            rich_help_panel=FIGURES_PANEL,
        ),
    ] = None,
    token: Annotated[
        int,
        typer.Option(
            "--token",
            min=0,
            help="Prefix token for cls and rollout (0 = CLS).",
            rich_help_panel=KIND_PANEL,
        ),
    ] = 0,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            min=0.0,
            max=1.0,
            help="For cls: show only the patches holding this share (0..1] of the attention mass.",
            show_default=False,
            rich_help_panel=KIND_PANEL,
        ),
    ] = None,
    fusion: Annotated[
        Fusion,
        typer.Option("--fusion", help="Rollout head fusion.", rich_help_panel=KIND_PANEL),
    ] = Fusion.MEAN,
    discard_ratio: Annotated[
        float,
        typer.Option(
            "--discard-ratio",
            min=0.0,
            max=1.0,
            help="Rollout: drop this share of the weakest weights.",
            rich_help_panel=KIND_PANEL,
        ),
    ] = 0.0,
    target_class: ClassOption = None,
    style: Annotated[
        Style,
        typer.Option(
            "--style",
            help="paper: annotated figure; bare: the picture alone at the model's input "
            "resolution.",
            rich_help_panel=LOOK_PANEL,
        ),
    ] = Style.PAPER,
    cmap: Annotated[
        str,
        typer.Option("--cmap", help="Any matplotlib colormap name.", rich_help_panel=LOOK_PANEL),
    ] = "viridis",
    alpha: Annotated[
        float,
        typer.Option(
            "--alpha",
            min=0.0,
            max=1.0,
            help="Opacity of the attention overlay.",
            rich_help_panel=LOOK_PANEL,
        ),
    ] = 0.6,
    scale: Annotated[
        Scale,
        typer.Option(
            "--scale",
            help="Sheets (heads, cls, layers): one colour scale for every panel (shared), or "
            "each panel scaled to its own maximum (each), so one outlier cannot wash the "
            "others out.",
            rich_help_panel=LOOK_PANEL,
        ),
    ] = Scale.SHARED,
    upsample: Annotated[
        Upsample,
        typer.Option(
            "--upsample",
            help="How patch weights are resized onto the image.",
            rich_help_panel=LOOK_PANEL,
        ),
    ] = Upsample.BILINEAR,
    save_maps: Annotated[
        bool,
        typer.Option(
            "--save-maps",
            help="Also write each image's raw maps, layout and view to DIR/<image>/maps.npz.",
            rich_help_panel=IO_PANEL,
        ),
    ] = False,
    maps_float16: Annotated[
        bool,
        typer.Option(
            "--maps-float16",
            help="Store --save-maps arrays as float16.",
            rich_help_panel=IO_PANEL,
        ),
    ] = False,
    from_maps: Annotated[
        list[Path] | None,
        typer.Option(
            "--from-maps",
            help="Render from maps.npz files written by --save-maps, without the model; "
            "repeatable.",
            show_default=False,
            rich_help_panel=IO_PANEL,
        ),
    ] = None,
    html_index: Annotated[
        bool,
        typer.Option(
            "--html",
            help="Also write DIR/index.html, an offline page of every figure.",
            rich_help_panel=IO_PANEL,
        ),
    ] = False,
    viewer: Annotated[
        bool,
        typer.Option(
            "--viewer",
            help="Also write DIR/viewer.html, an offline interactive explorer (point at a "
            "patch: its attention, any layer and head); saves the maps as --save-maps does.",
            rich_help_panel=IO_PANEL,
        ),
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, help="Images per forward pass.", rich_help_panel=RUN_PANEL
        ),
    ] = 8,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help="Worker processes drawing figures; 0 draws them in this process. Default: "
            f"one per CPU core (at most {MAX_AUTO_JOBS}) when there are {AUTO_JOBS_FROM_IMAGES} "
            "images or more, else 0. Never more than the CPU cores or the figures to draw. "
            "Output is the same for any value.",
            show_default=False,
            rich_help_panel=RUN_PANEL,
        ),
    ] = None,
    pretrained: PretrainedOption = True,
    checkpoint: CheckpointOption = None,
    img_size: ImgSizeOption = None,
    capture: CaptureOption = None,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = None,
    mean: MeanOption = None,
    std: StdOption = None,
    resize: ResizeOption = None,
    image_list: _jobs.ImageListOption = None,
    shard: _jobs.ShardOption = None,
    resume: _jobs.ResumeOption = False,
    decode_workers: _jobs.DecodeWorkersOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,  # read by the error handler in main()
    more: Annotated[
        list[str] | None,
        typer.Argument(
            help="More images (or, with --from-maps, more maps files): what a shell makes "
            "of an unquoted glob, --image assets/demo/*.png.",
            show_default=False,
            metavar="FILES",
        ),
    ] = None,
) -> None:
    """Render attention figures for each image: the model loads once, images are batched.

    Exit codes: 0 done; 2 bad usage or input (one line says what to fix); 3 finished, but some inputs were skipped (each named on stderr and listed in manifest.json under "skipped"); 1 failure while running; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM); 129 hung up (SIGHUP).
    """  # noqa: E501  (one paragraph: rich rewraps it to the terminal's width)
    from ..options import FigureOptions, RenderOptions, RunOptions
    from ..run.outdir import output_path
    from .steps import Inputs, render_from_maps, render_from_model

    with RunProgress(quiet) as progress:
        progress.stage("checking the options and inputs")
        options = RenderOptions(
            figure=FigureOptions(
                head=_head(head),
                query=parse_pair(query, "--query", "ROW,COL"),
                token=token,
                threshold=threshold,
                fusion=fusion,
                discard_ratio=discard_ratio,
                style=style,
                cmap=cmap,
                alpha=alpha,
                upsample=upsample,
                scale=scale,
                target_class=target_class,
            ),
            run=RunOptions(
                figures=tuple(k.strip() for k in figures.split(",") if k.strip()),
                layer=layer,
                query_pixel=parse_pair(query_pixel, "--query-pixel", "X,Y"),
                window=window,
                batch_size=batch_size,
                jobs=0 if jobs is None else jobs,
                save_maps=save_maps,
                maps_float16=maps_float16,
                html=html_index,
                decode_workers=decode_workers,
                viewer=viewer,
            ),
        )
        if from_maps:  # a shell's expanded glob: --from-maps a.npz b.npz c.npz
            from_maps = [*from_maps, *(Path(p) for p in more or ())]
        elif more:  # --image assets/demo/*.png, expanded by the shell
            image = [*(image or []), *more]
        if from_maps:
            if model or image or image_list or shard or resume:
                raise UsageError(
                    "--from-maps renders saved maps: drop --model, --image, --image-list, "
                    "--shard and --resume"
                )
            render_from_maps(options, from_maps, jobs, output_path(out), quiet, progress)
            return
        if not model:
            raise UsageError(
                "--model is required (or --from-maps FILE.npz); try --model demo, a tiny ViT "
                "that ships with anycapture"
            )
        if not image and image_list is None:
            raise UsageError("--image is required: a file, a directory or a glob")
        capture_choice = capture_options_from(locals())
        inputs = Inputs(image, image_list, shard, resume)
        out_dir = output_path(out)
        render_from_model(model, inputs, options, capture_choice, jobs, out_dir, quiet, progress)


def _head(value: str) -> int | None:
    if value == "mean":
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--head {value!r} must be an integer or 'mean'") from None
