"""Splitting one job across processes over one ``--out``: ``--shard K/N``, torchrun, SLURM.

Each shard renders a contiguous block of the sorted input list and writes only
its own files: its images' folders (named over the whole job, so every shard
agrees) and its manifest part ``OUT/.shards/part-K-of-N.json``.  Under the
output directory's lock, a shard merges every part into ``manifest.json`` when
it starts and when it ends; the merge says ``complete: true`` only once every
part is complete, so the last shard to finish writes the complete manifest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import UsageError
from .manifest import MANIFEST, Manifest
from .outdir import LOCK_NAME, SHARDS_DIR, OutputDir, OutputDirError, held_lock
from .previous import is_regular, pending_name, read_record
from .publish import publish

__all__ = ["SHARDS_DIR", "Shard", "local_device", "merge_parts", "shard_output_dir"]

MERGE_WAIT_S = 300.0  # a merge takes milliseconds; waiting longer means a stuck holder
T = TypeVar("T")

# (rank, world size) variables, in the order they are trusted: torchrun (and any
# launcher following torch.distributed's convention), then SLURM's srun.
_RANK_VARIABLES = (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"))
_LOCAL_RANK_VARIABLES = ("LOCAL_RANK", "SLURM_LOCALID")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``index`` from 0, like job-array and rank numbers)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UsageError(
                f"--shard {self.index}/{self.count}: K must be in 0..N-1 and N at least 1"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` (e.g. ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``)."""
        index, slash, count = text.partition("/")
        try:
            if not slash:
                raise ValueError
            return cls(int(index), int(count))
        except ValueError:
            raise UsageError(
                f"--shard {text!r} must be K/N with 0 <= K < N, e.g. 0/4 (K from 0)"
            ) from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Shard | None:
        """The shard a launcher gave this process (torchrun's RANK/WORLD_SIZE, srun's
        SLURM_PROCID/SLURM_NTASKS), or None for a single process."""
        env = os.environ if env is None else env
        for rank_name, size_name in _RANK_VARIABLES:
            if rank_name in env and size_name in env:
                try:
                    shard = cls(int(env[rank_name]), int(env[size_name]))
                except (ValueError, UsageError):
                    raise UsageError(
                        f"{rank_name}={env[rank_name]} {size_name}={env[size_name]} do not "
                        f"name a rank: unset them or pass --shard K/N"
                    ) from None
                return shard if shard.count > 1 else None
        return None

    @property
    def tag(self) -> str:
        return f"{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def take(self, items: Sequence[T]) -> list[T]:
        """This shard's contiguous block; blocks differ in size by one at most."""
        start = len(items) * self.index // self.count
        end = len(items) * (self.index + 1) // self.count
        return list(items[start:end])

    def part(self) -> Path:
        """This shard's manifest part, relative to ``--out``."""
        return Path(SHARDS_DIR) / f"part-{self.tag}.json"


def local_device(device: str, env: Mapping[str, str] | None = None) -> str:
    """``cuda`` becomes ``cuda:LOCAL_RANK`` under a launcher, so each rank has its GPU."""
    env = os.environ if env is None else env
    if device != "cuda":
        return device
    for name in _LOCAL_RANK_VARIABLES:
        if env.get(name, "").isdigit():
            return f"cuda:{env[name]}"
    return device


@contextmanager
def shard_output_dir(out: Path, shard: Shard) -> Iterator[OutputDir]:
    """``out`` for one shard: a lock per shard (two runs of one shard refuse), not the
    directory's lock, which shards take only briefly to merge.  ``.shards`` as a
    symbolic link is refused: a shard's records never go through one."""
    if (out / SHARDS_DIR).is_symlink():
        raise OutputDirError(
            f"--out {out}/{SHARDS_DIR} is a symbolic link; shards keep their records there: "
            f"remove the link (or use another --out)"
        )
    busy = f"--out {out}: shard {shard} is already running there; wait for it"
    with held_lock(out, out / SHARDS_DIR / f"{shard.tag}.lock", 0, busy):
        yield OutputDir(out, pending=pending_name(shard.part()))


def merge_parts(
    out_dir: OutputDir, count: int, html: bool, record: dict[str, Any], viewer: bool = False
) -> Manifest:
    """Merge the ``count`` parts into ``manifest.json`` (and ``index.html``) under the
    directory's lock; complete only when every part is, and was made with ``record``
    (this job's ``job_options``).  Pages an earlier merge wrote stay listed."""
    out = out_dir.path
    busy = (
        f"--out {out} stayed locked by another run for {MERGE_WAIT_S:.0f} s; shards "
        f"cannot merge their manifests while a run without --shard uses the directory"
    )
    with held_lock(out, out / LOCK_NAME, MERGE_WAIT_S, busy):
        notes: list[str] = []
        parts = [read_record(out, Shard(k, count).part(), notes) for k in range(count)]
        merged = combine(parts, record)
        merged.notes += [n for n in notes if n not in merged.notes]
        earlier = read_record(out, Path(MANIFEST))
        if earlier is not None:
            merged.pages = [p for p in earlier.pages if is_regular(out / p)]
        publish(out_dir, merged, Path(MANIFEST), html, viewer)
    return merged


def combine(parts: Sequence[Manifest | None], record: dict[str, Any]) -> Manifest:
    """Parts in shard order (so images keep the sorted order); None for a missing part.
    A part left by a job with other options (other figures, another model) is left
    out, with a note, as if missing: it is not this job's."""
    stale = [k for k, p in enumerate(parts) if p is not None and p.job_options != record]
    parts = [None if k in stale else p for k, p in enumerate(parts)]
    present = [p for p in parts if p is not None]
    model = next((p.model for p in present if p.model.get("layers")), None)
    merged = Manifest(model=dict(model or (present[0].model if present else {})))
    notes: dict[str, None] = {}
    for part in present:
        merged.figures += part.figures
        merged.maps += part.maps
        merged.images_done += part.images_done
        notes.update(dict.fromkeys(part.notes))
        merged.job_options = merged.job_options or part.job_options
        merged.options = merged.options or part.options
        merged.skipped += part.skipped
    for k in stale:
        notes.setdefault(
            f"shard {k}/{len(parts)}'s part was made with other options (an earlier job): "
            f"left out until shard {k} runs with these"
        )
    merged.notes = list(notes)
    merged.job_options = record
    merged.complete = bool(parts) and all(p is not None and p.complete for p in parts)
    return merged
