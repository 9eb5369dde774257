"""``--image-list FILE``: inputs too many for a shell glob, one path per line."""

from __future__ import annotations

from pathlib import Path

from ..images import ImageInputError

__all__ = ["read_image_list"]


def read_image_list(file: Path) -> list[Path]:
    """The image paths listed in ``file``: one per line; blank lines and lines starting
    with ``#`` are ignored; relative paths are relative to the file's folder."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImageInputError(f"--image-list {file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageInputError(f"--image-list {file}: cannot read it ({exc})") from None
    base = file.parent
    paths: list[Path] = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise ImageInputError(
                f"--image-list {file} line {number}: {entry}: no such file "
                f"(relative paths are read from {base})"
            )
        paths.append(path)
    if not paths:
        raise ImageInputError(f"--image-list {file} lists no images (one path per line)")
    return paths
