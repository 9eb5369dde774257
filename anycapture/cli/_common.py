"""Shared CLI pieces: the app factory, the model options, parsing helpers.

Nothing heavy is imported here, so ``anycapture --help`` stays instant.  Errors are
not handled here: commands raise, and :func:`anycapture.cli.main` maps every
exception to one line on stderr and an exit code (see ``errors.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import UsageError
from ..options import parse_pair

if TYPE_CHECKING:
    from ..attention import AttentionRecorder
    from ..images import Preprocessor
    from ..loading import LoadedModel
    from ..options import CaptureOptions

MODEL_PANEL = "Model"
# options the command checks itself (with a message naming the alternative), marked required
REQUIRED_BY_THE_COMMAND = {"render": ("model",)}

MODEL_HELP = (
    "A timm model name, an alias (vit_tiny, vit_small, vit_base, deit_small, ...), 'demo' "
    "(a tiny ViT trained here), a HuggingFace model (a save_pretrained directory, or "
    "transformers:ORG/NAME from the cache or the hub; needs the transformers extra), or a "
    "Python path 'package.module:factory' or 'path/to/file.py:factory' returning an "
    "nn.Module. A Python path runs that code, as any import does. Two-tower models (CLIP, "
    "SigLIP, open_clip) use their image tower."
)


def complete_model(incomplete: str) -> list[str]:
    """Shell completion for --model: the demo model and the aliases."""
    from ..loading import ALIASES

    return [name for name in ("demo", *ALIASES) if name.startswith(incomplete)]


ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help=MODEL_HELP,
        show_default=False,
        rich_help_panel=MODEL_PANEL,
        autocompletion=complete_model,
    ),
]
PretrainedOption = Annotated[
    bool,
    typer.Option(
        "--pretrained/--no-pretrained",
        help="Use pretrained weights when they can be had (local cache, or the hub within "
        "~2 s); otherwise fall back to random weights with a warning. HF_HUB_OFFLINE=1 means "
        "cache only.",
        rich_help_panel=MODEL_PANEL,
    ),
]
CheckpointOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        help="A .pth/.pt/.safetensors state dict to load (read safely: never unpickles "
        "arbitrary objects).",
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
ImgSizeOption = Annotated[
    str | None,
    typer.Option(
        "--img-size",
        help="Model input size H,W (for models that accept other sizes).",
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
CaptureOption = Annotated[
    str | None,
    typer.Option(
        "--capture",
        help="Capture this function's local instead of finding attention automatically: "
        "MODULE:CLASS.METHOD:VARIABLE (the suggestions anycapture prints are ready to paste).",
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
ClassOption = Annotated[
    str | None,
    typer.Option(
        "--class",
        help="explain: a class index or label name, or topK (top3); default: the prediction.",
        show_default=False,
        rich_help_panel="Figures",
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="Torch device to run the model on (cpu, cuda, cuda:1).",
        rich_help_panel=MODEL_PANEL,
    ),
]
PREPROCESS_PANEL = "Preprocessing (default: the model's own)"
MeanOption = Annotated[
    str | None,
    typer.Option(
        "--mean",
        help="Normalisation mean R,G,B, for models without their own preprocessing "
        "(otherwise ImageNet's is assumed, with a note).",
        show_default=False,
        rich_help_panel=PREPROCESS_PANEL,
    ),
]
StdOption = Annotated[
    str | None,
    typer.Option(
        "--std",
        help="Normalisation standard deviation R,G,B (see --mean).",
        show_default=False,
        rich_help_panel=PREPROCESS_PANEL,
    ),
]
ResizeOption = Annotated[
    str | None,
    typer.Option(
        "--resize",
        help="crop: resize the shorter side, then centre-crop to the input size; squash: "
        "resize to exactly the input size (the whole image, aspect not kept).",
        show_default=False,
        rich_help_panel=PREPROCESS_PANEL,
    ),
]
DtypeOption = Annotated[
    str | None,
    typer.Option(
        "--dtype",
        help="Cast the model to float32, float16 or bfloat16 (default: as loaded); the "
        "input follows the model's dtype; float16 and bfloat16 run under torch.autocast "
        "(what it keeps in float32 stays float32); maps are stored as float32.",
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing but errors (no progress, no notes).")
]
DebugOption = Annotated[
    bool,
    typer.Option(
        "--debug", help="Show full tracebacks on errors (also: environment ANYCAPTURE_DEBUG=1)."
    ),
]


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (an escape sequence, a newline
    or a carriage return in a file name) and undecodable bytes shown as escapes, so a
    file name can neither break the one-line promise nor drive the terminal."""
    return "".join(
        char
        if char.isprintable() or char == " "
        else char.encode("unicode_escape", "backslashreplace").decode("ascii")
        for char in text
    )


def note(message: str, quiet: bool, say: Callable[[str], None] | None = None) -> None:
    """One line on stderr (through ``say`` while a progress display is live)."""
    if quiet:
        return
    message = printable(message)
    if say is None:
        print(f"anycapture: {message}", file=sys.stderr)
    else:
        say(f"anycapture: {message}")


def parse_floats(value: str | None, option: str) -> tuple[float, ...] | None:
    """'R,G,B' -> (R, G, B) for --mean and --std."""
    if value is None:
        return None
    try:
        return tuple(float(part) for part in value.split(","))
    except ValueError:
        raise UsageError(
            f"{option} {value!r} must be three numbers R,G,B, e.g. 0.5,0.5,0.5"
        ) from None


def polish_help(command: Any) -> Any:
    """Help as a user reads it: flags show no value placeholder (typer prints ``<bool>``
    after them), and an option whose presence the command checks itself (``render
    --model``, optional only with ``--from-maps``) is marked required."""
    for sub in getattr(command, "commands", {}).values():
        polish_help(sub)
    made = command.get_help_option

    def help_option(ctx: Any) -> Any:  # click makes --help on first use
        option = made(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        if param.name in REQUIRED_BY_THE_COMMAND.get(command.name or "", ()):
            param.required = True  # shown as required; the command itself says what is missing
            param.value_is_missing = lambda _value: False
    return command


def create_app(
    name: str, help_text: str, commands: list[tuple[str, Callable[..., None]]]
) -> typer.Typer:
    app = typer.Typer(
        name=name,
        help=help_text,
        no_args_is_help=True,
        add_completion=True,
        rich_markup_mode="rich",
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    for command_name, function in commands:
        app.command(command_name)(function)
    return app


def prepare_model(
    model: str,
    capture: CaptureOptions,
    quiet: bool,
    say: Callable[[str], None] | None = None,
) -> tuple[LoadedModel, AttentionRecorder, Preprocessor]:
    """Load the model and find what to capture (``run/model.py``), saying its warnings."""
    from ..run.model import prepare_model as prepare

    loaded, recorder, preprocessor = prepare(model, capture)
    for message in loaded.notes:
        note(f"warning: {message}", quiet, say)
    return loaded, recorder, preprocessor  # preprocessor.notes: said once the run worked


CAPTURE_ARGS = (
    "pretrained",
    "checkpoint",
    "img_size",
    "capture",
    "device",
    "mean",
    "std",
    "resize",
    "dtype",
)


def capture_options_from(arguments: dict[str, Any]) -> CaptureOptions:
    """:func:`capture_options` from a command's arguments (its ``locals()``), so each
    command lists the model options once, in its signature."""
    return capture_options(**{name: arguments[name] for name in CAPTURE_ARGS if name in arguments})


def capture_options(
    *,
    pretrained: bool,
    checkpoint: Path | None,
    img_size: str | None,
    capture: str | None,
    device: str,
    mean: str | None = None,
    std: str | None = None,
    resize: str | None = None,
    dtype: str | None = None,
) -> CaptureOptions:
    from ..options import CaptureOptions

    return CaptureOptions(
        pretrained=pretrained,
        checkpoint=checkpoint,
        img_size=parse_pair(img_size, "--img-size", "H,W"),
        capture=capture,
        device=device,
        mean=parse_floats(mean, "--mean"),
        std=parse_floats(std, "--std"),
        resize=resize,
        dtype=dtype,
    )
