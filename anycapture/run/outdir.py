"""The output directory of a run: its lock, file names and atomic writes.

One run at a time per directory (``filelock``: an advisory lock that works on
POSIX and Windows).  The lock file is removed only while it is still held, and a
run that locks a file already removed tries again, so two runs never both hold
"the" lock (deleting it after release let a waiter and a newcomer overlap); every
file appears whole or not at all; image folders never take the
names of the tool's own files, and a symbolic link already inside ``--out`` is
never followed out of it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..images import safe_stem
from ..render.html import THUMBS
from ..render.output import write_bytes_atomic
from .manifest import MANIFEST

__all__ = [
    "LOCK_NAME",
    "SHARDS_DIR",
    "FolderNames",
    "OutputDir",
    "OutputDirError",
    "held_lock",
    "locked_output_dir",
    "output_path",
    "remove_listed",
    "remove_previous_output",
]

LOCK_NAME = ".anycapture.lock"
SHARDS_DIR = ".shards"  # shards' records (part-K-of-N.json) and locks: run/shards.py
INDEX = "index.html"
RESERVED = frozenset({MANIFEST, INDEX, LOCK_NAME, THUMBS})  # an image named
# manifest.json.png gets the folder manifest.json-2, never manifest.json/
_TOP_LEVEL_SUFFIXES = (".png", ".json")  # per-run figures, shard manifests: never a folder
_RESERVED_FOLDED = frozenset(name.casefold() for name in RESERVED)


class FolderNames(set[str]):
    """Folder names already taken: those added, and every name the run's own top-level
    files and folders have or could have (``manifest.json``, ``thumbs``, a per-run
    figure such as ``distance_all_images.png``, a shard's manifest part), so an image
    called ``thumbs.jpg`` or ``distance_all_images.png.jpg`` gets ``thumbs-2``.  Names
    are compared case-folded: ``Cat.jpg`` and ``cat.png`` get ``Cat`` and ``cat-2``."""

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        folded = name.casefold()  # Cat/ and cat/ are one folder on macOS and Windows
        own = folded in _RESERVED_FOLDED or folded.endswith(_TOP_LEVEL_SUFFIXES)
        return own or super().__contains__(folded)

    def add(self, name: str) -> None:
        super().add(name.casefold())


class OutputDirError(UsageError):
    """--out cannot be used; the message says why."""


@dataclass
class OutputDir:
    """Where a run writes: ``path``, one folder per image named from its source."""

    path: Path
    _taken: set[str] = field(default_factory=FolderNames)
    _checked: set[Path] = field(default_factory=set)
    # run just before the first write: a run refused before it writes anything (a
    # --head the model lacks, found on the first image) leaves the previous output be
    before_first_write: Callable[[], object] | None = None

    def folder_for(self, source: Path) -> str:
        """A unique, safe folder name for an image (``cat``, ``cat-2``...)."""
        return safe_stem(source, self._taken)

    def write(self, relative: Path, data: bytes) -> None:
        if self.before_first_write is not None:
            pending, self.before_first_write = self.before_first_write, None
            pending()
        if relative.parent != Path() and relative.parent not in self._checked:
            self._real_folders(relative.parent)
            self._checked.add(relative.parent)
        write_bytes_atomic(self.path / relative, data)  # replaces a link there, never follows

    def _real_folders(self, folder: Path) -> None:
        """Make every folder on the way to ``folder`` a real directory: a symbolic link
        left in --out (to anywhere) is replaced, so no write lands outside --out."""
        current = self.path
        for part in folder.parts:
            current = current / part
            if current.is_symlink():
                current.unlink()  # the link only; what it points at is left alone
            current.mkdir(exist_ok=True)


@contextmanager
def locked_output_dir(out: Path) -> Iterator[OutputDir]:
    """Create ``out`` and hold an exclusive lock on it for the run."""
    busy = f"--out {out} is in use by another anycapture run; wait for it or use another --out"
    with held_lock(out, out / LOCK_NAME, 0, busy):
        yield OutputDir(out)


@contextmanager
def held_lock(out: Path, path: Path, timeout: float, busy: str) -> Iterator[None]:
    """Hold the lock file ``path`` inside ``out`` (creating its folders), waiting up to
    ``timeout`` seconds, else :class:`OutputDirError` ``busy``.  The holder removes the
    file while it still holds it, so no lock file is left behind, and a waiter that
    then gets the removed file tries again (two runs never both hold "the" lock).
    Folders it made and nobody wrote into are removed too: a run refused before it
    wrote anything leaves no empty --out behind."""
    from filelock import FileLock, Timeout

    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} is an existing file; give a directory path")
    made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    lock = FileLock(path, timeout=timeout)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _acquire(lock, path)
    except Timeout:
        raise OutputDirError(busy) from None
    except OSError as exc:
        raise OutputDirError(
            f"cannot write to --out {out}: {exc.strerror}; choose another directory"
        ) from None
    try:
        yield
    finally:
        with suppress(OSError):  # Windows: filelock removes it on release instead
            path.unlink()  # while held: the next holder of this file retries
        lock.release()
        for folder in made:  # deepest first
            with suppress(OSError):
                folder.rmdir()  # only when empty


def remove_previous_output(out: Path, keep: Iterable[Path] = ()) -> list[str]:
    """A run replaces the previous run's output in ``out``: delete every file the old
    ``manifest.json`` lists (figures, maps, the HTML page and its thumbnails) and the
    folders that leaves empty, so the new manifest lists exactly what is on disk.
    The parts an earlier sharded job left are replaced with it.  Files these do not
    list are never touched, nor are this run's inputs
    (``keep``: ``--from-maps out/cat/maps.npz -o out`` reads what it would delete).
    Returns the removed paths.
    """
    import json

    manifest = out / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return []  # no previous run here (or not ours): nothing to replace
    records = [data]  # and an earlier sharded job's parts: their files are ours too
    parts = sorted((out / SHARDS_DIR).glob("part-*.json"))
    for part in parts:
        with suppress(OSError, ValueError):
            records.append(json.loads(part.read_text()))
    listed = [f.get("path") for r in records for f in r.get("figures", [])]
    listed += [m.get("path") for r in records for m in r.get("maps", [])]
    listed += [*data.get("pages", []), "index.html"]
    removed = remove_listed(out, listed, keep)
    for part in parts:
        part.unlink(missing_ok=True)
    with suppress(OSError):
        (out / SHARDS_DIR).rmdir()  # only when empty: no shard of another job holds it
    manifest.unlink()
    return removed


def remove_listed(out: Path, listed: Iterable[object], keep: Iterable[Path] = ()) -> list[str]:
    """Delete the files ``listed`` (paths relative to ``out``) and the folders that
    leaves empty; never a path outside ``out``, never one of ``keep``."""
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
    return removed


def _acquire(lock: Any, path: Path) -> None:
    """Acquire ``lock`` on the file that ``path`` names now (not one a previous run
    removed while a waiter had it open)."""
    for _ in range(1000):
        lock.acquire()
        if _names_the_locked_file(lock, path):
            return
        lock.release()
    raise OSError(errno.EAGAIN, "the lock file keeps being replaced")


def _names_the_locked_file(lock: Any, path: Path) -> bool:
    fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    if fd is None:  # another filelock layout: it checks for removed files itself
        return True
    try:
        held, named = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def output_path(text: str) -> Path:
    """--out as given on the command line; empty means no directory (not the current one)."""
    if not text.strip():
        raise OutputDirError("--out is empty; give a directory path, e.g. --out anycapture-out")
    return Path(text)
