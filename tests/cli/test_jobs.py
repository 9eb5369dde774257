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
    assert _with_jobs(RunOptions(), 3, images).jobs == 3  # an explicit --jobs always wins
