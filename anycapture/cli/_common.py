"""Shared CLI pieces: the app factory, common options, and clean error exits.

Bad input: one line on stderr naming the problem and the fix, exit 2; a failure
while running: exit 1; tracebacks only with --debug.  Nothing heavy is imported
here, so ``anycapture --help`` stays instant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

import typer

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

T = TypeVar("T")

MODEL_HELP = (
    "A timm model name, an alias (vit_tiny, vit_small, vit_base, deit_small, ...), 'demo' "
    "(a tiny ViT trained here), or a Python path 'package.module:factory' or "
    "'path/to/file.py:factory' returning an nn.Module. A Python path runs that code, as any "
    "import does."
)
ModelOption = Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP, show_default=False)]
PretrainedOption = Annotated[
    bool,
    typer.Option(
        "--pretrained/--no-pretrained",
        help="Use pretrained weights when they can be had (local cache, or the hub within "
        "~2 s); otherwise fall back to random weights with a warning. HF_HUB_OFFLINE=1 means "
        "cache only.",
    ),
]
CheckpointOption = Annotated[
    str | None,
    typer.Option(
        "--checkpoint",
        help="A .pth/.pt/.safetensors state dict to load (read safely: never unpickles "
        "arbitrary objects).",
        show_default=False,
    ),
]
ImgSizeOption = Annotated[
    str | None,
    typer.Option(
        "--img-size",
        help="Model input size H,W (for models that accept other sizes).",
        show_default=False,
    ),
]
CaptureOption = Annotated[
    str | None,
    typer.Option(
        "--capture",
        help="Capture this function's local instead of finding attention automatically: "
        "'package.module:Class.method:variable'.",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="Torch device to run the model on (cpu, cuda, cuda:1).")
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing but errors (no progress, no notes).")
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")]


class CliError(Exception):
    """A problem to report in one line, with the exit code to use."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``message`` as one error line on stderr and return the Exit to raise."""
    print(f"anycapture: error: {message}", file=sys.stderr)
    return typer.Exit(code)


def note(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"anycapture: {message}", file=sys.stderr)


@contextmanager
def reported_errors(debug: bool) -> Iterator[None]:
    """Turn known exceptions into one-line errors with the right exit code."""
    from ..attention import NoAttentionError
    from ..images import ImageInputError
    from ..loading import ModelLoadError
    from ..pipeline import OutputDirError, SelectionError

    usage_errors = (
        CliError,
        ModelLoadError,
        ImageInputError,
        SelectionError,
        OutputDirError,
        ValueError,
    )
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        raise fail(
            "interrupted; finished files are valid and listed in manifest.json", EXIT_INTERRUPTED
        ) from None
    except usage_errors as exc:
        if debug:
            raise
        code = exc.code if isinstance(exc, CliError) else EXIT_USAGE
        raise fail(str(exc), code) from None
    except NoAttentionError as exc:
        if debug:
            raise
        raise fail(str(exc), EXIT_FAILURE) from None
    except Exception as exc:
        if debug:
            raise
        raise fail(
            f"{type(exc).__name__}: {exc} (run with --debug for the traceback)", EXIT_FAILURE
        ) from None


def parse_pair(value: str | None, option: str, names: str) -> tuple[int, int] | None:
    """'A,B' -> (A, B) for --query and --img-size."""
    if value is None:
        return None
    parts = value.replace("x", ",").split(",")
    try:
        first, second = (int(p) for p in parts)
    except ValueError:
        raise CliError(f"{option} {value!r} must be two integers {names}, e.g. 7,7") from None
    return first, second


def create_app(
    name: str, help_text: str, commands: list[tuple[str, Callable[..., None]]]
) -> typer.Typer:
    app = typer.Typer(
        name=name,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    for command_name, function in commands:
        app.command(command_name)(function)
    return app


def prepare_model(
    model: str,
    *,
    pretrained: bool,
    checkpoint: str | None,
    img_size: tuple[int, int] | None,
    device: str,
    capture: str | None,
    quiet: bool,
) -> tuple[object, object, object]:
    """Load the model and find what to capture: (LoadedModel, AttentionRecorder, Preprocessor)."""
    import warnings
    from pathlib import Path

    from ..attention import AttentionRecorder
    from ..images import Preprocessor
    from ..loading import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # library chatter; our own notes say what matters
        loaded = load_model(
            model,
            pretrained=pretrained,
            checkpoint=Path(checkpoint) if checkpoint else None,
            img_size=img_size,
            device=device,
        )
    for message in loaded.notes:
        note(f"warning: {message}", quiet)
    recorder = AttentionRecorder(loaded.module, capture)
    preprocessor = Preprocessor.for_model(loaded.module, img_size)
    return loaded, recorder, preprocessor
