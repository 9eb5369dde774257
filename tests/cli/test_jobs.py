"""--jobs: figures drawn in worker processes are the same files, in the same manifest."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageOps

from .conftest import CAT, KNOWN, read_manifest

pytestmark = pytest.mark.slow


def _images(folder: Path) -> Path:
    folder.mkdir()
    with Image.open(CAT) as cat:
        cat = cat.convert("RGB")
        variants = [cat, ImageOps.mirror(cat), ImageOps.flip(cat), cat.rotate(90, expand=True)]
        for i, image in enumerate(variants):
            image.save(folder / f"img{i}.png")
    return folder


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def test_workers_write_the_same_files_and_manifest(cli, tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs")
    outs = {}
    for jobs in ("0", "2"):
        out = tmp_path / f"out{jobs}"
        result = cli(
            "render",
            "-m",
            f"{KNOWN}:build",
            "-i",
            str(images),
            "-o",
            str(out),
            "--figures",
            "head,heads,grid,cls,rollout,layers",
            "--layer",
            "all",
            "--jobs",
            jobs,
            "-q",
        )
        assert result.exit_code == 0, result.stderr
        outs[jobs] = out
    files = _files(outs["0"])
    assert len(files) == 4 * (2 * 4 + 2)  # 4 images x (2 layers x 4 kinds + rollout + layers)
    assert _files(outs["2"]) == files
    assert read_manifest(outs["2"]) == read_manifest(outs["0"])


def test_negative_jobs_is_a_usage_error(cli, tmp_path: Path) -> None:
    result = cli(
        "render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(tmp_path / "o"), "-j", "-1"
    )
    assert result.exit_code == 2
    assert "--jobs -1 must be 0" in result.stderr
    assert not (tmp_path / "o").exists()


def test_random_init_is_the_same_every_run_and_leaves_the_rng_alone() -> None:
    import torch

    from anycapture.loading import load_model

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = load_model("vit_tiny", pretrained=False).module.state_dict()
    assert torch.equal(torch.rand(3), expected_next)  # the caller's random state untouched
    second = load_model("vit_tiny", pretrained=False).module.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize(
    ("cores", "images", "expected"),
    [(2, 3, 0), (2, 4, 2), (1, 64, 0), (16, 64, 8)],
)
def test_default_jobs(
    monkeypatch: pytest.MonkeyPatch, cores: int, images: int, expected: int
) -> None:
    import os

    from anycapture.cli.steps import _with_jobs
    from anycapture.options import RunOptions

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)), raising=False)
    assert _with_jobs(RunOptions(), None, images).jobs == expected
    assert _with_jobs(RunOptions(), 1, images).jobs == 1  # an explicit --jobs wins...
    # ...up to one worker per core and per figure (3 kinds per image here)
    assert _with_jobs(RunOptions(), 40, images).jobs == min(cores, 3 * images)


@pytest.mark.parametrize(
    ("local_world", "cores", "share"), [("", 16, 16), ("4", 16, 4), ("3", 2, 1)]
)
def test_torchrun_ranks_on_one_machine_share_its_cores(
    monkeypatch: pytest.MonkeyPatch, local_world: str, cores: int, share: int
) -> None:
    """torchrun's LOCAL_WORLD_SIZE ranks each see every core: each takes its share, for
    drawing workers and for torch's threads (4 ranks x 16 threads on 16 cores: 4x over)."""
    import os

    import torch

    from anycapture.cli.steps import _with_jobs
    from anycapture.options import RunOptions
    from anycapture.run.jobs import cpu_cores, share_torch_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", local_world)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert cpu_cores() == cores  # without torchrun's WORLD_SIZE: a stray variable
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert cpu_cores() == share
    assert _with_jobs(RunOptions(), None, 64).jobs == (min(share, 8) if share >= 2 else 0)
    before = torch.get_num_threads()
    try:
        share_torch_threads()
        assert torch.get_num_threads() == (share if local_world else before)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("cores", "images", "figures", "layer", "expected"),
    [(2, 10, ("head",), -1, 2), (16, 1, ("head",), -1, 1), (16, 2, ("head", "grid"), -1, 4),
     (16, 1, ("head",), "all", 16), (1, 10, ("head",), -1, 1)],
)  # fmt: skip
def test_jobs_cap(
    monkeypatch: pytest.MonkeyPatch,
    cores: int,
    images: int,
    figures: tuple[str, ...],
    layer: int | str,
    expected: int,
) -> None:
    import os

    from anycapture.cli.steps import _with_jobs
    from anycapture.options import RunOptions

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)), raising=False)
    run = RunOptions(figures=figures, layer=layer)
    assert _with_jobs(run, 40, images).jobs == expected


def test_jobs_40_on_10_images_starts_at_most_a_worker_per_core(cli, tmp_path: Path) -> None:
    """The run itself: the note says so, and no more worker processes start."""
    import psutil

    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(10):
        (images / f"i{i}.jpg").write_bytes(CAT.read_bytes())
    seen: set[int] = set()
    from anycapture.render import pool

    original = pool.FigureDrawer.draw

    def draw(self, *args):  # type: ignore[no-untyped-def]
        original(self, *args)
        children = psutil.Process().children()
        seen.update(c.pid for c in children if "spawn_main" in " ".join(c.cmdline()))

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(pool.FigureDrawer, "draw", draw)
    try:
        result = cli(
            "render",
            "-m",
            f"{KNOWN}:build",
            "-i",
            str(images),
            "-o",
            str(tmp_path / "o"),
            "--jobs",
            "40",
        )
    finally:
        monkeypatch.undo()
    assert result.exit_code == 0, result.stderr
    from anycapture.run.jobs import cpu_cores

    assert f"--jobs 40: using {cpu_cores()}" in result.stderr
    assert 1 <= len(seen) <= cpu_cores()
