"""Dataset scale: --shard (several processes at once on one --out), ranks from the
environment, --resume and --image-list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from anycapture.run.shards import Shard, local_device

from .conftest import CAT, KNOWN, REPO, read_manifest

FIGURES = ("--figures", "head,grid,rollout", "--layer", "all", "--jobs", "0", "-q")


def _images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(CAT) as cat:
        cat = cat.convert("RGB").resize((160, 96))
    paths = []
    for i in range(count):
        image = ImageOps.mirror(cat) if i % 2 else cat
        path = folder / f"img{i}.png"
        image.rotate(i * 7).save(path)
        paths.append(path)
    return paths


def _stats(out: Path) -> dict[str, tuple[int, int]]:
    """Every figure file's (inode, mtime in ns): a rewrite changes one of them."""
    return {
        p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in out.rglob("*.png")
    }


def _render(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m anycapture render ...`` in its own process."""
    command = [sys.executable, "-m", "anycapture", "render", "-m", f"{KNOWN}:build", *args]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.Popen(command, cwd=REPO, env=full_env, text=True, stderr=subprocess.PIPE)


def _listed(manifest: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in manifest["figures"]:
        key = f"{entry['image']}|{entry['figure']}|{entry['layer']}"
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.slow
def test_shards_at_once_write_one_complete_manifest(tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs", 7)
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    base = ("-i", str(tmp_path / "imgs"), *FIGURES, "--html")
    assert _render(*base, "-o", str(single)).wait() == 0

    # shard 0 first, alone: its part is complete, the merged manifest is not
    first = _render(*base, "-o", str(sharded), "--shard", "0/3")
    assert first.wait() == 0, first.stderr.read()  # type: ignore[union-attr]
    partial = read_manifest(sharded)
    assert partial["complete"] is False
    assert partial["images_done"] == [str(p) for p in images[:2]]
    shard0_files = _stats(sharded)
    assert shard0_files and all(p.split("/")[0] in ("img0", "img1") for p in shard0_files)

    # then the other two at the same time
    runs = [_render(*base, "-o", str(sharded), "--shard", f"{k}/3") for k in (1, 2)]
    for run in runs:
        assert run.wait() == 0, run.stderr.read()  # type: ignore[union-attr]
    manifest = read_manifest(sharded)
    assert manifest["complete"] is True
    assert manifest["images_done"] == [str(p) for p in images]  # each image exactly once
    assert set(_listed(manifest).values()) == {1}
    assert _listed(manifest) == _listed(read_manifest(single))
    assert {k: v for k, v in _stats(sharded).items() if k in shard0_files} == shard0_files
    for name in ("figures", "maps", "model", "notes", "options", "job_options"):
        assert manifest[name] == read_manifest(single)[name], name
    expected = {p.relative_to(single).as_posix(): p.read_bytes() for p in single.rglob("*.png")}
    assert {p: (sharded / p).read_bytes() for p in expected} == expected
    page = (sharded / "index.html").read_text()
    assert all(entry["path"] in page for entry in manifest["figures"])


@pytest.mark.slow
def test_shards_started_together_and_a_rank_from_the_environment(tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs", 5)
    out = tmp_path / "out"
    base = ("-i", str(tmp_path / "imgs"), *FIGURES, "-o", str(out))
    runs = [
        _render(*base, "--shard", "0/3"),
        _render(*base, env={"RANK": "1", "WORLD_SIZE": "3", "LOCAL_RANK": "1"}),
        _render(*base, env={"SLURM_PROCID": "2", "SLURM_NTASKS": "3"}),
    ]
    for run in runs:
        assert run.wait() == 0, run.stderr.read()  # type: ignore[union-attr]
    manifest = read_manifest(out)
    assert manifest["complete"] is True
    assert manifest["images_done"] == [str(p) for p in images]
    parts = sorted(p.name for p in (out / ".shards").glob("part-*.json"))
    assert parts == ["part-0-of-3.json", "part-1-of-3.json", "part-2-of-3.json"]


def test_shard_split_is_deterministic_and_covers_every_item_once() -> None:
    items = list(range(10))
    blocks = [Shard(k, 3).take(items) for k in range(3)]
    assert blocks == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert [Shard(k, 4).take(items[:2]) for k in range(4)] == [[], [0], [], [1]]
    assert Shard.parse("2/5") == Shard(2, 5)


@pytest.mark.parametrize("text", ["3/3", "1", "a/b", "-1/2", "0/0"])
def test_bad_shard_is_a_usage_error(cli, tmp_path: Path, text: str) -> None:
    out = tmp_path / "o"
    result = cli("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(out), "--shard", text)
    assert result.exit_code == 2
    assert "--shard" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_ranks_from_the_environment() -> None:
    assert Shard.from_env({"RANK": "1", "WORLD_SIZE": "4"}) == Shard(1, 4)
    assert Shard.from_env({"SLURM_PROCID": "3", "SLURM_NTASKS": "8"}) == Shard(3, 8)
    assert Shard.from_env({"RANK": "0", "WORLD_SIZE": "1"}) is None  # one process
    assert Shard.from_env({}) is None
    assert local_device("cuda", {"LOCAL_RANK": "3"}) == "cuda:3"
    assert local_device("cuda", {"SLURM_LOCALID": "1"}) == "cuda:1"
    assert local_device("cuda:0", {"LOCAL_RANK": "3"}) == "cuda:0"  # an explicit GPU wins
    assert local_device("cpu", {"LOCAL_RANK": "3"}) == "cpu"


def test_rank_in_the_environment_renders_its_shard(cli, tmp_path, monkeypatch) -> None:
    images = _images(tmp_path / "imgs", 4)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "out"
    result = cli("render", "-m", f"{KNOWN}:build", "-i", str(tmp_path / "imgs"), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    part = json.loads((out / ".shards" / "part-1-of-2.json").read_text())
    assert part["images_done"] == [str(p) for p in images[2:]]
    assert read_manifest(out)["complete"] is False  # rank 0 has not run
    assert "shard 1/2" in result.stderr


COUNTING_MODEL = """
from pathlib import Path
import sys
sys.path.insert(0, {known_dir!r})
from known import build as known_build

def build():
    with open(Path(__file__).with_name("loads.txt"), "a") as handle:
        handle.write("loaded\\n")
    return known_build()
"""


def test_resume_skips_finished_images_untouched(cli, tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs", 3)
    model = tmp_path / "counting.py"
    model.write_text(COUNTING_MODEL.format(known_dir=str(KNOWN.parent)))
    out = tmp_path / "out"
    args = ("render", "-m", f"{model}:build", *FIGURES[:-1], "-o", str(out), "--resume")
    first = cli(*args, "-i", str(images[0]), "-i", str(images[1]))
    assert first.exit_code == 0, first.stderr
    before = _stats(out)

    result = cli(*args, "-i", str(tmp_path / "imgs"))
    assert result.exit_code == 0, result.stderr
    assert "2 already finished" in result.stderr
    after = _stats(out)
    assert {k: after[k] for k in before} == before  # finished images' files untouched
    assert len(after) > len(before)
    manifest = read_manifest(out)
    assert manifest["complete"] is True
    assert manifest["images_done"] == [str(p) for p in images]
    assert set(_listed(manifest).values()) == {1}

    # a finished run: nothing rendered, the model not even loaded
    loads = (tmp_path / "loads.txt").read_text().count("loaded")
    again = cli(*args, "-i", str(tmp_path / "imgs"))
    assert again.exit_code == 0, again.stderr
    assert (tmp_path / "loads.txt").read_text().count("loaded") == loads
    assert _stats(out) == after
    assert read_manifest(out) == manifest


def test_resume_redraws_what_changed_or_went_missing(cli, tmp_path: Path) -> None:
    _images(tmp_path / "imgs", 2)
    out = tmp_path / "out"
    args = ("render", "-m", f"{KNOWN}:build", "-i", str(tmp_path / "imgs"), "-o", str(out))
    assert cli(*args, *FIGURES).exit_code == 0
    before = _stats(out)
    gone = next(p for p in before if p.startswith("img1/"))
    (out / gone).unlink()
    assert cli(*args, *FIGURES, "--resume").exit_code == 0
    after = _stats(out)
    assert all(after[p] == before[p] for p in before if p.startswith("img0/"))
    assert all(after[p] != before[p] for p in before if p.startswith("img1/"))
    # other options: nothing is "the same figures", so everything is drawn again
    assert cli(*args, *FIGURES, "--resume", "--cmap", "magma").exit_code == 0
    redrawn = _stats(out)
    assert all(redrawn[p] != after[p] for p in after)
    assert read_manifest(out)["job_options"]["figure"]["cmap"] == "magma"


def test_image_list(cli, tmp_path: Path) -> None:
    images = _images(tmp_path / "data" / "imgs", 3)
    listing = tmp_path / "data" / "list.txt"
    listing.write_text(f"# validation set\n\nimgs/img2.png\n  imgs/img0.png  \n{images[1]}\n")
    out = tmp_path / "out"
    result = cli(
        "render", "-m", f"{KNOWN}:build", "--image-list", str(listing), "-o", str(out), *FIGURES
    )
    assert result.exit_code == 0, result.stderr
    done = read_manifest(out)["images_done"]
    assert [Path(p).name for p in done] == ["img2.png", "img0.png", "img1.png"]


def test_image_list_naming_a_missing_file_is_a_usage_error(cli, tmp_path: Path) -> None:
    _images(tmp_path / "imgs", 1)
    listing = tmp_path / "list.txt"
    listing.write_text("imgs/img0.png\n# fine\nimgs/nope.png\n")
    out = tmp_path / "out"
    result = cli("render", "-m", f"{KNOWN}:build", "--image-list", str(listing), "-o", str(out))
    assert result.exit_code == 2
    assert "line 3: imgs/nope.png: no such file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_torchrun_launches_one_shard_per_rank(tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs", 3)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "anycapture", "render", "-m", f"{KNOWN}:build", "-i", str(tmp_path / "imgs"),
        "-o", str(out), *FIGURES,
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = read_manifest(out)
    assert manifest["complete"] is True
    assert manifest["images_done"] == [str(p) for p in images]
    assert sorted(p.name for p in (out / ".shards").glob("part-*.json")) == [
        "part-0-of-2.json",
        "part-1-of-2.json",
    ]


@pytest.mark.slow
def test_aggregates_need_the_whole_job_in_one_run(cli, tmp_path: Path) -> None:
    _images(tmp_path / "imgs", 3)
    base = ("render", "-m", "demo", "-i", str(tmp_path / "imgs"), "--figures", "head,distance")
    whole = tmp_path / "whole"
    assert cli(*base, "-o", str(whole), "--jobs", "0").exit_code == 0
    aggregate = [f for f in read_manifest(whole)["figures"] if f["image"] is None]
    assert len(aggregate) == 1
    resumed = cli(*base, "-o", str(whole), "--resume")  # finished: the aggregate stays listed
    assert resumed.exit_code == 0, resumed.stderr
    assert [f for f in read_manifest(whole)["figures"] if f["image"] is None] == aggregate

    split = tmp_path / "split"
    for k in range(2):
        result = cli(*base, "-o", str(split), "--jobs", "0", "--shard", f"{k}/2")
        assert result.exit_code == 0, result.stderr
    manifest = read_manifest(split)
    assert manifest["complete"] is True
    assert all(f["image"] is not None for f in manifest["figures"])  # no shard wrote one
    assert not (split / aggregate[0]["path"]).exists()
    assert any("aggregate over images is not drawn with --shard" in n for n in manifest["notes"])


def test_decode_workers_and_dtype_from_the_command_line(cli, tmp_path: Path) -> None:
    _images(tmp_path / "imgs", 3)
    args = ("render", "-m", f"{KNOWN}:build", "-i", str(tmp_path / "imgs"), *FIGURES)
    inline = cli(*args, "-o", str(tmp_path / "a"), "--batch-size", "2", "--decode-workers", "0")
    assert inline.exit_code == 0, inline.stderr
    loaded = cli(*args, "-o", str(tmp_path / "b"), "--batch-size", "2", "--decode-workers", "1")
    assert loaded.exit_code == 0, loaded.stderr
    assert read_manifest(tmp_path / "b") == read_manifest(tmp_path / "a")  # same records
    assert _stats(tmp_path / "a").keys() == _stats(tmp_path / "b").keys()
    for name in _stats(tmp_path / "a"):  # and the same pixels
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    bad = cli(*args, "-o", str(tmp_path / "d"), "--decode-workers", "-1")
    assert bad.exit_code == 2 and not (tmp_path / "d").exists()


@pytest.mark.slow
def test_resume_with_another_dtype_draws_again(cli, tmp_path: Path) -> None:
    _images(tmp_path / "imgs", 2)
    out = tmp_path / "out"
    args = ("render", "-m", f"{KNOWN}:build", "-i", str(tmp_path / "imgs"), "-o", str(out))
    assert cli(*args, *FIGURES, "--resume", "--dtype", "bfloat16").exit_code == 0
    assert read_manifest(out)["job_options"]["capture"]["dtype"] == "bfloat16"
    first = _stats(out)
    same = cli(*args, *FIGURES[:-1], "--resume", "--dtype", "bfloat16")
    assert same.exit_code == 0 and "2 already finished" in same.stderr
    assert _stats(out) == first
    other = cli(*args, *FIGURES, "--resume")  # the model's own float32: not the same figures
    assert other.exit_code == 0, other.stderr
    assert all(_stats(out)[p] != first[p] for p in first)
    assert read_manifest(out)["job_options"]["capture"]["dtype"] is None


def _count_manifest_writes(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    from anycapture.run.outdir import OutputDir

    written: list[str] = []
    write = OutputDir.write

    def counting(self, relative, data) -> None:  # type: ignore[no-untyped-def]
        if Path(relative).name == "manifest.json":
            written.append(json.loads(data)["images_done"])
        write(self, relative, data)

    monkeypatch.setattr(OutputDir, "write", counting)
    return written


@pytest.mark.parametrize("step", [0.0, 10.0])  # a stopped clock; 10 s per image
def test_manifest_rewrites_are_throttled(cli, tmp_path: Path, monkeypatch, step: float) -> None:
    from anycapture.run import manifest as manifest_module
    from anycapture.run.render_run import RenderRun

    now = [0.0]
    monkeypatch.setattr(manifest_module, "_now", lambda: now[0])
    render_image = RenderRun._render_image

    def slow(self, image, stem) -> None:  # type: ignore[no-untyped-def]
        now[0] += step
        render_image(self, image, stem)

    monkeypatch.setattr(RenderRun, "_render_image", slow)
    written = _count_manifest_writes(monkeypatch)
    images = _images(tmp_path / "imgs", 5)
    args = ("-i", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), "--batch-size", "1")
    result = cli("render", "-m", f"{KNOWN}:build", *args, *FIGURES)
    assert result.exit_code == 0, result.stderr
    names = [str(p) for p in images]
    if step:  # every image is due: written after each, then once complete
        assert written == [names[: i + 1] for i in range(5)] + [names]
    else:  # the first at once, then only the complete one
        assert written == [names[:1], names]
    assert read_manifest(tmp_path / "out")["complete"] is True


def test_a_failure_mid_run_lists_exactly_what_was_written(cli, tmp_path, monkeypatch) -> None:
    from anycapture.run import manifest as manifest_module
    from anycapture.run.render_run import RenderRun

    monkeypatch.setattr(manifest_module, "_now", lambda: 0.0)  # nothing due between images
    written = _count_manifest_writes(monkeypatch)
    render_image = RenderRun._render_image
    calls = []

    def failing(self, image, stem) -> None:  # type: ignore[no-untyped-def]
        calls.append(stem)
        if len(calls) == 4:
            raise RuntimeError("the disk went away")
        render_image(self, image, stem)

    monkeypatch.setattr(RenderRun, "_render_image", failing)
    images = _images(tmp_path / "imgs", 6)
    out = tmp_path / "out"
    args = ("-i", str(tmp_path / "imgs"), "-o", str(out), "--batch-size", "1")
    result = cli("render", "-m", f"{KNOWN}:build", *args, *FIGURES)
    assert result.exit_code == 1, result.stderr
    manifest = read_manifest(out)
    assert manifest["complete"] is False
    assert manifest["images_done"] == [str(p) for p in images[:3]]
    listed = {f["path"] for f in manifest["figures"]}
    assert listed == {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert len(written) == 2  # the first image's, then the one after the failure


def test_write_throttle_keeps_writing_under_its_share_of_the_time() -> None:
    from anycapture.run.manifest import WriteThrottle

    now = [0.0]
    throttle = WriteThrottle(interval_s=2.0, share=0.05, clock=lambda: now[0])
    assert WriteThrottle().interval_s <= 5.0  # "every few seconds" at most
    assert throttle.due()  # the first write at once
    with throttle.timing():
        now[0] += 0.01  # a quick write: the interval decides
    now[0] += 1.9
    assert not throttle.due()
    now[0] += 0.2
    assert throttle.due()
    with throttle.timing():
        now[0] += 0.5  # a slow write (a huge manifest): wait 0.5 / 0.05 = 10 s
    now[0] += 9.0
    assert not throttle.due()
    now[0] += 1.1
    assert throttle.due() and throttle.writes == 2


@pytest.mark.slow
def test_a_part_left_by_another_job_is_not_merged(cli, tmp_path: Path) -> None:
    """Shards of a `head` job, then shard 0 of a `heads` job on the same --out: shard 1's
    part is the old job's, so it is left out (with a note) and the job is incomplete;
    a plain run then replaces everything, old parts included."""
    images = tmp_path / "imgs"
    _images(images, 4)
    out = tmp_path / "out"
    base = ("render", "-m", f"{KNOWN}:build", "-i", str(images), "-o", str(out), "-q")
    for k in (0, 1):
        assert cli(*base, "--figures", "head", "--shard", f"{k}/2").exit_code == 0
    assert read_manifest(out)["complete"] is True
    assert not [p for p in out.rglob("*") if p.name.endswith(".lock")]  # holders remove them
    result = cli(*base, "--figures", "heads", "--shard", "0/2")
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest["complete"] is False
    assert {f["figure"] for f in manifest["figures"]} == {"heads"}
    assert manifest["job_options"]["run"]["figures"] == ["heads"]
    assert any("shard 1/2's part was made with other options" in n for n in manifest["notes"])
    listed = {f["path"] for f in manifest["figures"]}
    mine = {p.relative_to(out).as_posix() for d in ("img0", "img1") for p in (out / d).iterdir()}
    assert mine == listed  # shard 0 replaced its own old files; shard 1's wait for it
    assert cli(*base, "--figures", "heads").exit_code == 0  # a plain run: the job's own
    assert not (out / ".shards").exists()  # the earlier job's parts went with its files
    manifest = read_manifest(out)
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert manifest["complete"] and {f["path"] for f in manifest["figures"]} == on_disk


@pytest.mark.parametrize("refused", [["--head", "7"], ["--figures", "grid", "--window", "2"]])
def test_a_refused_shard_changes_nothing(cli, tmp_path: Path, refused: list[str]) -> None:
    """A shard refused on its first image (a head the model lacks) leaves a finished
    job's files, parts and manifest as they were, and makes no --out of its own."""
    images = tmp_path / "imgs"
    _images(images, 4)
    out = tmp_path / "out"
    base = ("render", "-m", f"{KNOWN}:build", "-i", str(images), "-q", "--figures", "head,grid")
    for k in (0, 1):
        assert cli(*base, "-o", str(out), "--shard", f"{k}/2").exit_code == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = cli(*base, "-o", str(out), "--shard", "0/2", *refused)
    assert result.exit_code == 2, result.stderr
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    fresh = tmp_path / "fresh"
    assert cli(*base, "-o", str(fresh), "--shard", "0/2", *refused).exit_code == 2
    assert not fresh.exists()
