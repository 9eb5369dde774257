"""Finding and reading input images, and the model's view of them.

Every Pillow mode becomes RGB (grayscale, RGBA over white, palette, 16-bit,
CMYK); very large JPEGs are decoded at reduced size so memory stays bounded.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .decode import open_reduced
from .errors import UsageError
from .preprocess import Preprocessor

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageInputError",
    "Preprocessor",
    "collect_images",
    "read_image",
    "safe_stem",
]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)


class ImageInputError(UsageError):
    """An --image argument names nothing usable; the message says what to do."""


def collect_images(specs: list[str]) -> list[Path]:
    """Files, directories (their images, sorted) and globs, in the order given."""
    found: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if glob.has_magic(spec):
            matches = sorted(_glob(spec))
            images = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            if not images:
                raise ImageInputError(f"--image {spec}: the pattern matches no image files")
            found += images
        elif path.is_dir():
            images = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not images:
                suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
                raise ImageInputError(f"--image {spec}: the directory has no images ({suffixes})")
            found += images
        elif path.is_file():
            found.append(path)
        else:
            raise ImageInputError(f"--image {spec}: no such file or directory")
    return _once_each(found)


def _glob(spec: str) -> list[Path]:
    """The files ``spec`` matches.  ``**`` is expanded by pathlib, which does not follow
    symlinked directories there: ``glob.glob`` does, so a ``self -> .`` link matched an
    image 41 times and two such links never finished."""
    if "**" not in spec:
        return [Path(p) for p in glob.glob(spec)]
    parts = Path(spec).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:first]) if first else Path()
    pattern = Path(*parts[first:])
    # hidden files and folders only where the pattern names them, as glob.glob does
    hidden = any(part.startswith(".") for part in pattern.parts)
    return [
        path
        for path in root.glob(str(pattern))
        if hidden or not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]


def _once_each(paths: list[Path]) -> list[Path]:
    """Each file once, in order, however many names (links) reach it."""
    seen: set[str] = set()
    kept = []
    for path in paths:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            kept.append(path)
    return kept


def read_image(path: Path) -> Image.Image:
    """Open any Pillow-readable image as RGB, reduced if larger than ``MAX_SIDE``."""
    try:
        rgb = open_reduced(path)  # upright (EXIF), reduced while decoding: decode.py
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ImageInputError(f"{path}: no such image file") from None
    except UnidentifiedImageError:
        raise ImageInputError(f"{path} is not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"{path} is truncated or corrupt ({exc})") from None
    except Image.DecompressionBombError as exc:
        raise ImageInputError(f"{path} is too large to decode safely ({exc})") from None
    return rgb


def safe_stem(path: Path, taken: set[str]) -> str:
    """A file-name-safe, unique stem for outputs (never a path: nothing escapes --out)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._") or "image"
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}", n + 1
    taken.add(candidate)
    return candidate
