"""The job pipeline driven with a fake maps source: no model, no CLI.  A plain run, a
--resume of it and both shards of a split job give the same records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from anycapture.layout import TokenLayout
from anycapture.options import RenderOptions, RunOptions
from anycapture.run.job import Job
from anycapture.run.maps_file import ImageMaps
from anycapture.run.outdir import OutputDir
from anycapture.run.pipeline import run_job
from anycapture.run.plan import Share
from anycapture.run.render_run import RenderRun
from anycapture.run.shards import Shard

LAYOUT = TokenLayout(1, (2, 3))


@dataclass
class FakeSource:
    """Uniform attention for each "image" path (no file is read), one unreadable."""

    paths: list[Path]
    model_info: dict[str, Any] = field(default_factory=lambda: {"name": "fake"})
    title: str = ""
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    on_batch: Any = None

    def __len__(self) -> int:
        return len(self.paths)

    def images(self) -> Iterator[tuple[ImageMaps, Path]]:
        for path in self.paths:
            if "broken" in path.name:
                self.skipped.append((path, f"{path} is broken"))
                continue
            maps = np.full((2, 7, 7), 1 / 7, np.float32)
            view = Image.new("RGB", (48, 32))
            yield ImageMaps([("blocks.0", maps)], view, LAYOUT, source=str(path)), path

    def locate(self, image: ImageMaps, pixel: tuple[int, int]) -> tuple[float, float]:
        raise NotImplementedError

    def capture(self) -> str | None:
        return "auto"


@dataclass
class Events:
    lines: list[str] = field(default_factory=list)

    def stage(self, text: str) -> None:
        self.lines.append(text)

    def images(self, total: int, forward: bool = True) -> None:
        self.lines.append(f"images {total}")

    def forwarded(self, count: int) -> None:
        pass

    def drawn(self, path: Path) -> None:
        self.lines.append(f"drawn {path.name}")

    def skipped(self, path: Path, reason: str) -> None:
        self.lines.append(f"skipped {reason}")


OPTIONS = RenderOptions(run=RunOptions(figures=("head",), jobs=0))
PATHS = [Path(f"/data/{name}.png") for name in ("a", "b", "broken", "c")]


def _build(out_dir: OutputDir, todo: list[Path], share: Share) -> RenderRun:
    return RenderRun(out_dir, OPTIONS, FakeSource(todo), share)


def _job(out: Path, **extra: Any) -> Job:
    return Job(out, list(PATHS), record={"fake": 1}, **extra)


def _records(out: Path) -> dict[str, Any]:
    import json

    data = json.loads((out / "manifest.json").read_text())
    return {k: data[k] for k in ("figures", "maps", "complete", "skipped", "images_done")}


def test_plain_resume_and_shards_give_the_same_records(tmp_path: Path) -> None:
    events = Events()
    plain = run_job(_job(tmp_path / "plain"), _build, events)
    assert (plain.figures, plain.images, plain.skipped, plain.finished) == (3, 3, 1, 0)
    assert events.lines == [
        "images 4", "drawn a.png", "drawn b.png", "skipped /data/broken.png is broken",
        "drawn c.png",
    ]  # fmt: skip
    expected = _records(tmp_path / "plain")
    assert expected["complete"] and len(expected["figures"]) == 3

    resumed = run_job(_job(tmp_path / "plain", resume=True), _build, Events())
    assert (resumed.figures, resumed.finished, resumed.skipped) == (0, 3, 1)
    assert _records(tmp_path / "plain") == expected

    for k in (0, 1):
        run_job(_job(tmp_path / "split", shard=Shard(k, 2)), _build, Events())
    assert _records(tmp_path / "split") == expected


def test_a_build_that_is_never_needed_is_never_called(tmp_path: Path) -> None:
    run_job(_job(tmp_path / "o"), _build, Events())

    def no_build(*_args: Any) -> RenderRun:
        raise AssertionError("the model was loaded with nothing left to draw")

    paths = [p for p in PATHS if "broken" not in p.name]
    outcome = run_job(
        Job(tmp_path / "o", paths, record={"fake": 1}, resume=True), no_build, Events()
    )
    assert outcome.finished == 3 and outcome.figures == 0


def test_a_share_is_fixed_when_the_run_is_made(tmp_path: Path) -> None:
    share = Share(folders={"/data/a.png": "x"})
    with pytest.raises(AttributeError):
        share.partial = True  # type: ignore[misc]
