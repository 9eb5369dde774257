"""``anycapture render``: figures for one or more images."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    CaptureOption,
    CheckpointOption,
    CliError,
    DebugOption,
    DeviceOption,
    ImgSizeOption,
    ModelOption,
    PretrainedOption,
    QuietOption,
    note,
    parse_pair,
    prepare_model,
    reported_errors,
)

FIGURES_HELP = (
    "Comma-separated figure kinds: head (one head's token x token map), heads (every head "
    "and their average), grid (the query patch's attention over the image)."
)


def render(
    model: ModelOption,
    image: Annotated[
        list[str],
        typer.Option(
            "--image",
            "-i",
            help="An image file, a directory of images, or a glob; repeatable.",
            show_default=False,
        ),
    ],
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
    head: Annotated[int, typer.Option("--head", help="Head for the head and grid figures.")] = 0,
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            help="Query patch ROW,COL for the grid figure (default: centre patch).",
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
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 8,
    pretrained: PretrainedOption = True,
    checkpoint: CheckpointOption = None,
    img_size: ImgSizeOption = None,
    capture: CaptureOption = None,
    device: DeviceOption = "cpu",
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Render attention figures for each image: one forward pass per image, model loaded once."""
    with reported_errors(debug):
        from ..images import collect_images
        from ..pipeline import RenderOptions, RenderRun, locked_output_dir, model_info
        from ..render import FIGURE_KINDS, STYLES
        from ..render.colour import UPSAMPLING, colormap_lut

        kinds = tuple(k.strip() for k in figures.split(",") if k.strip())
        unknown = [k for k in kinds if k not in FIGURE_KINDS]
        if unknown or not kinds:
            raise CliError(
                f"--figures {figures!r}: unknown kind {', '.join(unknown) or '(none)'}; "
                f"choose from {', '.join(FIGURE_KINDS)}"
            )
        if style not in STYLES:
            raise CliError(f"--style {style!r}: choose paper or bare")
        if upsample not in UPSAMPLING:
            raise CliError(f"--upsample {upsample!r}: choose nearest, bilinear or bicubic")
        if not 0.0 <= alpha <= 1.0:
            raise CliError(f"--alpha {alpha} must be between 0 and 1")
        if batch_size < 1:
            raise CliError(f"--batch-size {batch_size} must be at least 1")
        try:
            colormap_lut(cmap)  # unknown names fail here, before the model loads
        except ValueError as exc:
            raise CliError(f"--cmap: {exc}") from None
        options = RenderOptions(
            figures=kinds,
            layer=layer,
            head=head,
            query=parse_pair(query, "--query", "ROW,COL"),
            style=style,
            cmap=cmap,
            alpha=alpha,
            upsample=upsample,
            batch_size=batch_size,
        )
        images = collect_images(image)
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
                model=loaded.module,
                model_info=model_info(loaded, recorder),
                recorder=recorder,
                preprocessor=preprocessor,
                out=out,
                options=options,
                device=device,
                title=loaded.name,
            )
            with _progress(len(images), quiet) as advance:
                manifest = run.run(images, on_image=advance)
        note(f"wrote {len(manifest['figures'])} figures for {len(images)} image(s) to {out}", quiet)


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
