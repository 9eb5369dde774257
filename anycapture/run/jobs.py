"""How many worker processes draw figures (``--jobs``) and read images, and how many
cores a process may use: standard library only (torch only inside
:func:`share_torch_threads`), so the CLI can say it in ``--help`` without loading
anything."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = [
    "AUTO_JOBS_FROM_IMAGES",
    "MAX_AUTO_DECODE_WORKERS",
    "MAX_AUTO_JOBS",
    "choose_decode_workers",
    "choose_jobs",
    "cpu_cores",
    "ranks_sharing_cores",
    "share_torch_threads",
]

MAX_AUTO_JOBS = 8
AUTO_JOBS_FROM_IMAGES = 4  # below this, starting workers costs more than they save
MAX_AUTO_DECODE_WORKERS = 4


def cpu_cores() -> int:
    """The cores this process may run on: its share when a launcher started several
    processes on this machine that share its cores (:func:`ranks_sharing_cores`)."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0)) or 1
    else:
        cores = os.cpu_count() or 1
    return max(1, cores // ranks_sharing_cores())


def ranks_sharing_cores(env: Mapping[str, str] | None = None) -> int:
    """How many processes torchrun started on this machine (``LOCAL_WORLD_SIZE``); they
    all see every core, so each takes its share.  (srun binds each task to its own
    CPUs: the affinity mask already says, and 1 is returned.)"""
    env = os.environ if env is None else env
    value = env.get("LOCAL_WORLD_SIZE", "")
    launched = env.get("WORLD_SIZE", "").isdigit()  # torchrun sets both; alone it is stray
    return int(value) if launched and value.isdigit() and int(value) > 0 else 1


def share_torch_threads() -> None:
    """Under torchrun on the CPU: torch's threads for this rank's share of the cores, not
    every core (4 ranks each running a thread per core would oversubscribe 4x)."""
    if ranks_sharing_cores() > 1:
        import torch

        torch.set_num_threads(cpu_cores())


def choose_jobs(requested: int | None, images: int, figures: int | None) -> tuple[int, str]:
    """Worker count: ``requested`` or the default (one per core, at most ``MAX_AUTO_JOBS``,
    from ``AUTO_JOBS_FROM_IMAGES`` images on), never more than the cores nor ``figures``
    (when known); and a note when a requested count was lowered."""
    cores = cpu_cores()
    if requested is None:
        several = images >= AUTO_JOBS_FROM_IMAGES and cores >= 2
        requested = min(cores, MAX_AUTO_JOBS) if several else 0
    limit = min(cores, figures) if figures else cores
    if requested > limit:
        return limit, f"--jobs {requested}: using {limit} (one worker per CPU core and figure)"
    return requested, ""


def choose_decode_workers(
    requested: int | None, images: int, batch_size: int, device: str = "cpu"
) -> tuple[int, str]:
    """DataLoader workers reading images (``--decode-workers``), and a note when a
    requested count was lowered: never more than the cores nor the batches after the
    first.  By default none on the CPU (the forward pass already uses every core: a
    worker made 32 images of vit_small 9% slower on 2 cores) or for a single batch
    (nothing to overlap), else one per four cores, at least one and at most
    ``MAX_AUTO_DECODE_WORKERS``."""
    batches = -(-images // batch_size)
    limit = max(0, min(cpu_cores(), batches - 1))
    if requested is not None:
        if requested > limit:
            why = "one per CPU core and per batch after the first"
            return limit, f"--decode-workers {requested}: using {limit} ({why})"
        return requested, ""
    if limit == 0 or device.split(":")[0] == "cpu":
        return 0, ""
    return max(1, min(MAX_AUTO_DECODE_WORKERS, cpu_cores() // 4, limit)), ""
