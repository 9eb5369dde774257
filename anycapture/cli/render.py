"""``anycapture render``: figures for one or more images (or from saved maps)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from ..options import Fusion, Style, Upsample
from ..render.kinds import BUILT_IN
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
    note,
    parse_pair,
    prepare_model,
)

if TYPE_CHECKING:
    from ..options import RenderOptions, RunOptions
    from ..run.manifest import Manifest
    from ..run.outdir import OutputDir

MAX_AUTO_JOBS = 8
AUTO_JOBS_FROM_IMAGES = 4  # below this, starting workers costs more than they save

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
            help=MODEL_HELP,  # optional here: --from-maps needs no model
            show_default=False,
            rich_help_panel=MODEL_PANEL,
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
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output directory; manifest.json lists every file.",
            rich_help_panel=IO_PANEL,
        ),
    ] = Path("anycapture-out"),
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
            "images or more, else 0. Output is the same for any value.",
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
    quiet: QuietOption = False,
    debug: DebugOption = False,  # read by the error handler in main()
) -> None:
    """Render attention figures for each image: the model is loaded once, images are batched."""
    from ..options import FigureOptions, RenderOptions, RunOptions

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
        ),
    )
    if from_maps:
        if model or image:
            raise UsageError("--from-maps renders saved maps: drop --model and --image")
        _render_saved(options, from_maps, jobs, out, quiet)
        return
    if not model:
        raise UsageError("--model is required (or --from-maps FILE.npz)")
    if not image:
        raise UsageError("--image is required: a file, a directory or a glob")
    from ..images import collect_images

    images = collect_images(image)
    options = replace(options, run=_with_jobs(options.run, jobs, len(images)))
    capture_choice = capture_options_from(locals())

    def start(out_dir: OutputDir) -> Manifest:
        from ..run.render_run import RenderRun

        loaded, recorder, preprocessor = prepare_model(model, capture_choice, quiet)
        run = RenderRun.from_model(
            out_dir, options, images, loaded, recorder, preprocessor, capture_choice.device
        )
        with _progress(len(images), quiet) as advance:
            return run.run(on_image=advance)

    _in_output_dir(out, options, start, len(images), quiet)


def _render_saved(
    options: RenderOptions, files: list[Path], jobs: int | None, out: Path, quiet: bool
) -> None:
    from ..run.render_run import RenderRun

    missing = [p for p in files if not p.is_file()]
    if missing:
        raise UsageError(f"--from-maps {missing[0]}: no such file")
    RenderRun.check_saved_maps(options)  # before --out is created
    options = replace(options, run=_with_jobs(options.run, jobs, len(files)))

    def start(out_dir: OutputDir) -> Manifest:
        from ..run.render_run import RenderRun

        run = RenderRun.from_maps(out_dir, options, files)
        with _progress(len(files), quiet) as advance:
            return run.run(on_image=advance)

    _in_output_dir(out, options, start, len(files), quiet)


def _in_output_dir(
    out: Path,
    options: RenderOptions,
    start: Callable[[OutputDir], Manifest],
    count: int,
    quiet: bool,
) -> None:
    """Lock ``out``, run, write the HTML index if asked, then report."""
    from ..render.html import write_index
    from ..run.outdir import locked_output_dir

    with locked_output_dir(out) as out_dir:
        manifest = start(out_dir)
        if options.run.html:
            write_index(out, manifest)
    for message in manifest.notes:
        note(f"note: {message}", quiet)
    note(f"wrote {len(manifest.figures)} figures for {count} image(s) to {out}", quiet)


def _head(value: str) -> int | None:
    if value == "mean":
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--head {value!r} must be an integer or 'mean'") from None


def _with_jobs(run: RunOptions, jobs: int | None, images: int) -> RunOptions:
    """--jobs, or the default: workers pay for their start-up only over several images."""
    if jobs is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        several = images >= AUTO_JOBS_FROM_IMAGES and (cores or 1) >= 2
        jobs = min(cores or 1, MAX_AUTO_JOBS) if several else 0
    return replace(run, jobs=jobs)


class _progress:
    """A rich progress bar on a terminal; nothing when quiet or not a TTY."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.total = total

    def __enter__(self) -> Callable[[Path], None]:
        if not self.enabled:
            return lambda _path: None
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.start()
        task = self._bar.add_task("rendering", total=self.total)
        return lambda _path: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.stop()
