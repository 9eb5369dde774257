"""Checks that need no model, run before it loads (importing torch alone takes seconds).

The options check themselves when they are built (``options.py``); here: the input
files exist and are images (Pillow reads only their header), the checkpoint and a
model file exist.  The output directory is checked when it is locked, also before
the model loads.  --layer and --query ranges need the model: they are checked as
soon as it has loaded, before any forward pass (``run.selection.check_before_forward``).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..model_files import python_file_without_factory

__all__ = ["check_model_files", "probe_image", "split_readable"]


def probe_image(path: Path) -> str:
    """Why ``path`` is not an image Pillow can open ("" when it is one).

    Reads the header only (milliseconds): a text file named ``.jpg`` fails here; a
    truncated image may pass and is caught when the run reads it.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):  # parses the header only
            pass
    except UnidentifiedImageError:
        return f"{path} is not an image Pillow can read"
    except Image.DecompressionBombError as exc:
        return f"{path} is too large to decode safely ({exc})"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"{path} cannot be read ({exc})"
    return ""


def split_readable(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The images that open, and the others with why.  When none opens, that is a
    usage error (exit 2) naming the first: there is nothing to render."""
    good, bad = [], []
    for path in paths:
        reason = probe_image(path)
        if reason:
            bad.append((path, reason))
        else:
            good.append(path)
    if not good:
        more = f" (and {len(bad) - 1} more input(s) like it)" if len(bad) > 1 else ""
        raise UsageError(f"--image {bad[0][1]}{more}; give image files (JPEG, PNG, ...)")
    return good, bad


def check_model_files(model: str, checkpoint: Path | None) -> None:
    """A --checkpoint or a --model file.py:factory that does not exist."""
    if checkpoint is not None and not checkpoint.is_file():
        raise UsageError(f"checkpoint {checkpoint} does not exist: check the --checkpoint path")
    location, colon, _ = model.rpartition(":")
    if colon and (location.endswith(".py") or "/" in location):
        if not Path(location).is_file():
            raise UsageError(f"model file {location} does not exist (from --model {model})")
    if not colon and model.endswith(".py"):
        raise UsageError(python_file_without_factory(Path(model)))
