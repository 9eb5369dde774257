"""``anycapture render``: figures for one or more images (or from saved maps)."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    MODEL_HELP,
    CaptureOption,
    CheckpointOption,
    CliError,
    DebugOption,
    DeviceOption,
    ImgSizeOption,
    PretrainedOption,
    QuietOption,
    note,
    parse_pair,
    prepare_model,
    reported_errors,
)

MAX_AUTO_JOBS = 8
AUTO_JOBS_FROM_IMAGES = 4  # below this, starting workers costs more than they save

FIGURES_HELP = (
    "Comma-separated figure kinds: head (one head's token x token map), heads (every head "
    "and their average), grid (the query patch's attention over the image), cls (a prefix "
    "token's attention over the image, per head), rollout (attention rollout over all "
    "layers), layers (the query's attention in every layer, one sheet)."
)


def render(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help=MODEL_HELP,  # optional here: --from-maps needs no model
            show_default=False,
        ),
    ] = None,
    image: Annotated[
        list[str] | None,
        typer.Option(
            "--image",
            "-i",
            help="An image file, a directory of images, or a glob; repeatable.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory; manifest.json lists every file.")
    ] = Path("anycapture-out"),
    figures: Annotated[str, typer.Option("--figures", help=FIGURES_HELP)] = "head,heads,grid",
    layer: Annotated[
        str,
        typer.Option(
            "--layer", help="Attention layer index (negative counts from the end) or 'all'."
        ),
    ] = "-1",
    head: Annotated[
        str,
        typer.Option("--head", help="Head for the head, grid and layers figures, or 'mean'."),
    ] = "0",
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            help="Query patch ROW,COL for grid and layers (default: the centre patch).",
            show_default=False,
        ),
    ] = None,
    query_pixel: Annotated[
        str | None,
        typer.Option(
            "--query-pixel",
            help="Pick the query patch by a pixel X,Y of the original image instead.",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        int, typer.Option("--token", help="Prefix token for cls and rollout (0 = CLS).")
    ] = 0,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="For cls: show only the patches holding this share (0..1] of the attention mass.",
            show_default=False,
        ),
    ] = None,
    fusion: Annotated[
        str, typer.Option("--fusion", help="Rollout head fusion: mean, max or min.")
    ] = "mean",
    discard_ratio: Annotated[
        float,
        typer.Option("--discard-ratio", help="Rollout: drop this share of the weakest weights."),
    ] = 0.0,
    window: Annotated[
        int | None,
        typer.Option(
            "--window",
            help="Windowed attention (Swin): which window to draw (default: the middle one).",
            show_default=False,
        ),
    ] = None,
    style: Annotated[
        str,
        typer.Option(
            "--style",
            help="paper: annotated figure; bare: the picture alone at the model's input "
            "resolution.",
        ),
    ] = "paper",
    cmap: Annotated[str, typer.Option("--cmap", help="Any matplotlib colormap name.")] = "viridis",
    alpha: Annotated[
        float, typer.Option("--alpha", help="Opacity of the attention overlay, 0..1.")
    ] = 0.6,
    upsample: Annotated[
        str,
        typer.Option(
            "--upsample",
            help="How patch weights are resized onto the image: nearest, bilinear or bicubic.",
        ),
    ] = "bilinear",
    save_maps: Annotated[
        bool,
        typer.Option(
            "--save-maps",
            help="Also write each image's raw maps, layout and view to DIR/<image>/maps.npz.",
        ),
    ] = False,
    maps_float16: Annotated[
        bool, typer.Option("--maps-float16", help="Store --save-maps arrays as float16.")
    ] = False,
    from_maps: Annotated[
        list[Path] | None,
        typer.Option(
            "--from-maps",
            help="Render from maps.npz files written by --save-maps, without the model; "
            "repeatable.",
            show_default=False,
        ),
    ] = None,
    html_index: Annotated[
        bool,
        typer.Option("--html", help="Also write DIR/index.html, an offline page of every figure."),
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 8,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help="Worker processes drawing figures; 0 draws them in this process. Default: "
            f"one per CPU core (at most {MAX_AUTO_JOBS}) when there are {AUTO_JOBS_FROM_IMAGES} "
            "images or more, else 0. Output is the same for any value.",
            show_default=False,
        ),
    ] = None,
    pretrained: PretrainedOption = True,
    checkpoint: CheckpointOption = None,
    img_size: ImgSizeOption = None,
    capture: CaptureOption = None,
    device: DeviceOption = "cpu",
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Render attention figures for each image: the model is loaded once, images are batched."""
    with reported_errors(debug):
        from ..images import collect_images
        from ..pipeline import RenderRun, locked_output_dir, model_info
        from ..render.html import write_index

        options = _options(locals())
        if from_maps:
            if model or image:
                raise CliError("--from-maps renders saved maps: drop --model and --image")
            missing = [p for p in from_maps if not p.is_file()]
            if missing:
                raise CliError(f"--from-maps {missing[0]}: no such file")
            options = _with_jobs(options, jobs, len(from_maps))
            with locked_output_dir(out):
                run = RenderRun(out=out, options=options, model_info={"source": "saved maps"})
                with _progress(len(from_maps), quiet) as advance:
                    manifest = run.run_saved(from_maps, on_image=advance)
                if html_index:
                    write_index(out, manifest)
            _summary(manifest, len(from_maps), out, quiet)
            return
        if not model:
            raise CliError("--model is required (or --from-maps FILE.npz)")
        if not image:
            raise CliError("--image is required: a file, a directory or a glob")
        images = collect_images(image)
        options = _with_jobs(options, jobs, len(images))
        size = parse_pair(img_size, "--img-size", "H,W")
        with locked_output_dir(out):
            loaded, recorder, preprocessor = prepare_model(
                model,
                pretrained=pretrained,
                checkpoint=checkpoint,
                img_size=size,
                device=device,
                capture=capture,
                quiet=quiet,
            )
            run = RenderRun(
                out=out,
                options=options,
                model_info=model_info(loaded, recorder),
                model=loaded.module,
                recorder=recorder,
                preprocessor=preprocessor,
                device=device,
                title=loaded.name,
            )
            with _progress(len(images), quiet) as advance:
                manifest = run.run(images, on_image=advance)
            if html_index:
                write_index(out, manifest)
        _summary(manifest, len(images), out, quiet)


def _options(args: dict[str, Any]) -> Any:
    """Check the rendering choices before anything loads; build RenderOptions."""
    from ..analysis import FUSIONS
    from ..pipeline import RenderOptions
    from ..render import FIGURE_KINDS, STYLES
    from ..render.colour import UPSAMPLING, colormap_lut

    kinds = tuple(k.strip() for k in args["figures"].split(",") if k.strip())
    unknown = [k for k in kinds if k not in FIGURE_KINDS]
    if unknown or not kinds:
        raise CliError(
            f"--figures {args['figures']!r}: unknown kind {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(FIGURE_KINDS)}"
        )
    checks = [
        (args["style"] in STYLES, f"--style {args['style']!r}: choose paper or bare"),
        (
            args["upsample"] in UPSAMPLING,
            f"--upsample {args['upsample']!r}: choose nearest, bilinear or bicubic",
        ),
        (0.0 <= args["alpha"] <= 1.0, f"--alpha {args['alpha']} must be between 0 and 1"),
        (args["batch_size"] >= 1, f"--batch-size {args['batch_size']} must be at least 1"),
        (
            args["jobs"] is None or args["jobs"] >= 0,
            f"--jobs {args['jobs']} must be 0 (draw in this process) or more",
        ),
        (args["fusion"] in FUSIONS, f"--fusion {args['fusion']!r}: choose mean, max or min"),
        (
            0.0 <= args["discard_ratio"] < 1.0,
            f"--discard-ratio {args['discard_ratio']} must be in [0, 1)",
        ),
        (
            args["threshold"] is None or 0.0 < args["threshold"] <= 1.0,
            f"--threshold {args['threshold']} must be in (0, 1]",
        ),
        (args["token"] >= 0, f"--token {args['token']} must be 0 or more"),
        (
            args["query"] is None or args["query_pixel"] is None,
            "give --query or --query-pixel, not both",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise CliError(message)
    if args["head"] == "mean":
        head = None
    else:
        try:
            head = int(args["head"])
        except ValueError:
            raise CliError(f"--head {args['head']!r} must be an integer or 'mean'") from None
    try:
        colormap_lut(args["cmap"])  # unknown names fail here, before the model loads
    except ValueError as exc:
        raise CliError(f"--cmap: {exc}") from None
    return RenderOptions(
        figures=kinds,
        layer=args["layer"],
        head=head,
        query=parse_pair(args["query"], "--query", "ROW,COL"),
        query_pixel=parse_pair(args["query_pixel"], "--query-pixel", "X,Y"),
        style=args["style"],
        cmap=args["cmap"],
        alpha=args["alpha"],
        upsample=args["upsample"],
        batch_size=args["batch_size"],
        token=args["token"],
        threshold=args["threshold"],
        fusion=args["fusion"],
        discard_ratio=args["discard_ratio"],
        window=args["window"],
        save_maps=args["save_maps"],
        maps_float16=args["maps_float16"],
    )


def _with_jobs(options: Any, jobs: int | None, images: int) -> Any:
    """--jobs, or the default: workers pay for their start-up only over several images."""
    if jobs is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        several = images >= AUTO_JOBS_FROM_IMAGES and (cores or 1) >= 2
        jobs = min(cores or 1, MAX_AUTO_JOBS) if several else 0
    return replace(options, jobs=jobs)


def _summary(manifest: dict[str, Any], count: int, out: Path, quiet: bool) -> None:
    for message in manifest.get("notes", []):
        note(f"note: {message}", quiet)
    note(f"wrote {len(manifest['figures'])} figures for {count} image(s) to {out}", quiet)


class _progress:
    """A rich progress bar on a terminal; nothing when quiet or not a TTY."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.total = total

    def __enter__(self):  # type: ignore[no-untyped-def]
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
