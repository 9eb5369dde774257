"""The output directory of a run: its lock, file names and atomic writes.

One run at a time per directory (``filelock``: an advisory lock that works on
POSIX and Windows); every file appears whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..images import safe_stem
from ..render.output import write_bytes_atomic

__all__ = [
    "LOCK_NAME",
    "OutputDir",
    "OutputDirError",
    "locked_output_dir",
    "remove_previous_output",
]

LOCK_NAME = ".anycapture.lock"


class OutputDirError(UsageError):
    """--out cannot be used; the message says why."""


@dataclass
class OutputDir:
    """Where a run writes: ``path``, one folder per image named from its source."""

    path: Path
    _taken: set[str] = field(default_factory=set)

    def folder_for(self, source: Path) -> str:
        """A unique, safe folder name for an image (``cat``, ``cat-2``...)."""
        return safe_stem(source, self._taken)

    def write(self, relative: Path, data: bytes) -> None:
        write_bytes_atomic(self.path / relative, data)


@contextmanager
def locked_output_dir(out: Path) -> Iterator[OutputDir]:
    """Create ``out`` and hold an exclusive lock on it for the run."""
    from filelock import FileLock, Timeout

    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} is an existing file; give a directory path")
    lock = FileLock(out / LOCK_NAME, timeout=0)
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:
        raise OutputDirError(
            f"--out {out} is in use by another anycapture run; wait for it or use another --out"
        ) from None
    except OSError as exc:
        raise OutputDirError(
            f"cannot write to --out {out}: {exc.strerror}; choose another directory"
        ) from None
    try:
        yield OutputDir(out)
    finally:
        lock.release()
        (out / LOCK_NAME).unlink(missing_ok=True)


def remove_previous_output(out: Path, keep: Iterable[Path] = ()) -> list[str]:
    """A run replaces the previous run's output in ``out``: delete every file the old
    ``manifest.json`` lists (figures, maps, the HTML page and its thumbnails) and the
    folders that leaves empty, so the new manifest lists exactly what is on disk.
    Files the manifest does not list are never touched, nor are this run's inputs
    (``keep``: ``--from-maps out/cat/maps.npz -o out`` reads what it would delete).
    Returns the removed paths.
    """
    import json

    manifest = out / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return []  # no previous run here (or not ours): nothing to replace
    listed = [f.get("path") for f in data.get("figures", [])]
    listed += [m.get("path") for m in data.get("maps", [])]
    listed += [*data.get("pages", []), "index.html"]
    root = out.resolve()
    inputs = {path.resolve() for path in keep}
    removed = []
    for relative in dict.fromkeys(p for p in listed if isinstance(p, str) and p):
        target = (out / relative).resolve()
        if root not in target.parents or not target.is_file() or target in inputs:
            continue  # never follow a path out of --out, never delete an input
        target.unlink()
        removed.append(relative)
        for folder in target.parents:
            if folder == root or any(folder.iterdir()):
                break
            folder.rmdir()
    manifest.unlink()
    return removed
