"""The inputs of a run: ``--image-list FILE`` (inputs too many for a shell glob, one
path per line), and never the files a run wrote into ``--out``."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..images import ImageInputError
from ..render.html import THUMBS
from .manifest import MANIFEST

__all__ = ["leave_out_outputs", "read_image_list"]

MAX_LIST_BYTES = 256 << 20  # 256 MB: millions of paths
MAX_PATH_BYTES = 4096  # PATH_MAX on Linux


def read_image_list(file: Path) -> list[Path]:
    """The image paths listed in ``file``: one per line; blank lines and lines starting
    with ``#`` are ignored; relative paths are relative to the file's folder."""
    text = _read_bounded(file)
    base = file.parent
    paths: list[Path] = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if len(entry.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
            raise ImageInputError(
                f"--image-list {file} line {number}: {len(entry)} characters, longer than "
                f"any path ({MAX_PATH_BYTES} bytes); one image path per line"
            )
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            what = "a folder, not an image file" if path.is_dir() else "no such file"
            where = "" if Path(entry).is_absolute() else f" (relative paths are read from {base})"
            raise ImageInputError(f"--image-list {file} line {number}: {entry}: {what}{where}")
        paths.append(path)
    if not paths:
        raise ImageInputError(f"--image-list {file} lists no images (one path per line)")
    return paths


def _read_bounded(file: Path) -> str:
    """The list's text, at most :data:`MAX_LIST_BYTES`, from a regular file or a pipe
    (the shell's ``--image-list <(find ...)``); a device, socket or folder is refused
    (``/dev/zero`` was read until the kernel killed the run at 22.6 GB)."""
    import stat

    try:
        info = file.stat()
    except FileNotFoundError:
        raise ImageInputError(f"--image-list {file}: no such file") from None
    except OSError as exc:
        raise ImageInputError(f"--image-list {file}: cannot read it ({exc})") from None
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
        raise ImageInputError(f"--image-list {file} is not a regular file: give a text file")
    if info.st_size > MAX_LIST_BYTES:
        raise ImageInputError(
            f"--image-list {file} is {info.st_size / 2**20:.0f} MB, over the "
            f"{MAX_LIST_BYTES >> 20} MB a list of paths may be; split it, or use --shard"
        )
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_LIST_BYTES + 1)
        if len(data) > MAX_LIST_BYTES:  # a pipe that does not end
            raise ImageInputError(
                f"--image-list {file}: over {MAX_LIST_BYTES >> 20} MB; split it, or use --shard"
            )
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageInputError(f"--image-list {file}: cannot read it ({exc})") from None


def leave_out_outputs(images: list[Path], out: Path) -> tuple[list[Path], str]:
    """``images`` without the files an earlier run wrote into ``out`` (``--out`` equal
    to the input folder, a ``**`` glob over it): outputs never become inputs.  Also
    a note saying how many were left out ("" when none)."""
    from .previous import read_earlier

    if not out.is_dir():
        return images, ""
    earlier = read_earlier(out)
    root = os.path.abspath(out)
    written = {os.path.join(root, *PurePosixPath(f).parts) for f in earlier.files()}
    written |= {os.path.join(root, f) for f in (MANIFEST,)}
    kept = [p for p in images if os.path.abspath(p) not in written and not _in_thumbs(p, root)]
    if len(kept) == len(images):
        return images, ""
    if not kept:
        raise ImageInputError(
            f"--image: every input is a file an earlier run wrote into --out {out}; "
            f"give the original images"
        )
    count = len(images) - len(kept)
    return kept, f"{count} input(s) left out: files an earlier run wrote into --out {out}"


def _in_thumbs(path: Path, root: str) -> bool:
    """A file under ``out/thumbs`` (the HTML page's pictures)."""
    return os.path.abspath(path).startswith(os.path.join(root, THUMBS) + os.sep)
