"""A run touches only what it wrote, inside --out, and loses nothing (issue 22, items
1 and 2): a user's own files, links and forged records are never followed or
deleted; failed writes and competing jobs leave every file listed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import CAT, KNOWN, REPO, read_manifest

MODEL = f"{KNOWN}:build"


def _render(cli, out: Path, *args: str):  # type: ignore[no-untyped-def]
    return cli("render", "-m", MODEL, "--figures", "head", "-o", str(out), "-q", *args)


def _images(folder: Path, count: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        shutil.copy(CAT, folder / f"img{i}.jpg")
    return folder


def _on_disk(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def _listed(out: Path) -> set[str]:
    manifest = read_manifest(out)
    return {f["path"] for f in manifest["figures"]} | set(manifest["pages"]) | {"manifest.json"}


def test_a_users_own_index_html_survives(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _render(cli, out, "-i", str(CAT)).exit_code == 0
    (out / "index.html").write_text("my own page")
    assert _render(cli, out, "-i", str(CAT)).exit_code == 0  # no run wrote an index.html
    assert (out / "index.html").read_text() == "my own page"
    assert _render(cli, out, "-i", str(CAT), "--html").exit_code == 0  # asked for: replaced
    assert _render(cli, out, "-i", str(CAT)).exit_code == 0  # and then the run's to remove
    assert not (out / "index.html").exists()


def test_shards_folder_as_a_link_is_never_followed(cli, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "part-0-of-2.json").write_text("{}")  # someone else's file
    out = tmp_path / "out"
    out.mkdir()
    (out / ".shards").symlink_to(elsewhere, target_is_directory=True)
    assert _render(cli, out, "-i", str(CAT)).exit_code == 0
    assert (elsewhere / "part-0-of-2.json").read_text() == "{}"
    result = _render(cli, out, "-i", str(CAT), "--shard", "0/2")
    assert result.exit_code == 2 and "is a symbolic link" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in elsewhere.iterdir()) == ["part-0-of-2.json"]


def test_a_listed_file_that_is_a_link_is_removed_not_its_target(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _render(cli, out, "-i", str(CAT)).exit_code == 0
    listed = read_manifest(out)["figures"][0]["path"]
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    (out / listed).unlink()
    (out / listed).symlink_to(victim)
    assert _render(cli, out, "-i", str(CAT), "--figures", "grid").exit_code == 0
    assert victim.read_bytes() == b"precious"
    assert not (out / listed).exists() and not (out / listed).is_symlink()


@pytest.mark.parametrize("where", ["manifest", "part"])
def test_forged_paths_are_ignored_with_a_note(cli, tmp_path: Path, where: str) -> None:
    out = tmp_path / "out"
    assert _render(cli, out, "-i", str(CAT), "--shard", "0/1").exit_code == 0
    big = tmp_path / "big.jpg"
    big.write_bytes(CAT.read_bytes())
    record = read_manifest(out)
    record["complete"], record["images_done"] = True, [str(CAT)]
    forged = [str(big), "../big.jpg", "cat/../../big.jpg"]
    for path in forged:
        record["figures"].append({**record["figures"][0], "path": path})
    record["pages"] = ["../big.jpg"]
    if where == "part":
        (out / ".shards").mkdir(exist_ok=True)
        (out / ".shards" / "part-0-of-2.json").write_text(json.dumps(record))
        args: tuple[str, ...] = ("--shard", "1/2", "--resume")
    else:
        (out / "manifest.json").write_text(json.dumps(record))
        args = ("--resume",)
    before = big.read_bytes()
    result = _render(cli, out, "-i", str(CAT), "-i", str(tmp_path / "big.jpg"), "--html", *args)
    assert result.exit_code == 0, result.stderr
    assert big.read_bytes() == before  # neither replaced by a thumbnail nor deleted
    assert not (tmp_path / "thumbs").exists()
    manifest = read_manifest(out)
    assert all(not os.path.isabs(f["path"]) and ".." not in f["path"] for f in manifest["figures"])
    assert any("not a path inside --out, ignored" in n for n in manifest["notes"])
    # a plain run then replaces it all, and still nothing outside
    assert _render(cli, out, "-i", str(CAT)).exit_code == 0
    assert big.read_bytes() == before


def test_out_inside_the_inputs_never_feeds_outputs_back(cli, tmp_path: Path) -> None:
    data = _images(tmp_path / "data")
    pattern = str(data / "**" / "*")
    counts = []
    for _ in range(3):
        result = cli(
            "render", "-m", MODEL, "-i", pattern, "-o", str(data), "--figures", "head", "--html"
        )
        assert result.exit_code == 0, result.stderr
        counts.append(len(read_manifest(data)["images_done"]))
    assert counts == [2, 2, 2]
    assert "left out: files an earlier run wrote into --out" in result.stderr
    assert (data / "img0.jpg").is_file() and (data / "img1.jpg").is_file()  # inputs kept


def test_a_failed_manifest_write_leaves_every_figure_removable(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anycapture.run import manifest as manifest_module
    from anycapture.run import outdir

    monkeypatch.setattr(manifest_module, "_now", lambda: 0.0)  # one write between images
    images = _images(tmp_path / "imgs", 3)
    out = tmp_path / "out"
    write = outdir.write_bytes_atomic

    def file_size_limit(path: Path, data: bytes) -> None:
        """A manifest listing more than the first image's 2 figures is too big."""
        if path.name == "manifest.json" and len(json.loads(data)["figures"]) > 2:
            raise OSError(27, "File too large")
        write(path, data)

    monkeypatch.setattr(outdir, "write_bytes_atomic", file_size_limit)
    args = ("-i", str(images), "--batch-size", "1", "--figures", "head,grid")
    result = _render(cli, out, *args)
    assert result.exit_code == 1
    monkeypatch.undo()
    pngs = {p for p in _on_disk(out) if p.endswith(".png")}
    assert len(pngs) == 6  # every figure was written, the manifest lists the first two
    assert len(read_manifest(out)["figures"]) == 2
    assert _render(cli, out, "-i", str(CAT), "--figures", "cls").exit_code == 0
    assert _on_disk(out) == _listed(out)  # a later run removed every one of them


def test_shards_split_another_way_are_refused(cli, tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs", 3)
    out = tmp_path / "out"
    for k in (0, 1):
        assert _render(cli, out, "-i", str(images), "--shard", f"{k}/2").exit_code == 0
    before = {p: (out / p).read_bytes() for p in _on_disk(out)}
    result = _render(cli, out, "-i", str(images), "--shard", "0/3")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"anycapture: error: --shard 0/3: --out {out} holds the parts of a job split in 2 "
        f"(.shards/part-K-of-2.json); use --shard K/2, or a run without --shard to replace "
        f"that job"
    ]
    assert {p: (out / p).read_bytes() for p in _on_disk(out)} == before
    assert read_manifest(out)["complete"] is True


def test_a_plain_run_refuses_another_jobs_unfinished_shards(cli, tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs", 3)
    out = tmp_path / "out"
    assert _render(cli, out, "-i", str(images), "--shard", "0/2").exit_code == 0
    before = {p: (out / p).read_bytes() for p in _on_disk(out)}
    result = _render(cli, out, "-i", str(images), "--figures", "grid")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "holds an unfinished sharded job with other options" in result.stderr
    assert {p: (out / p).read_bytes() for p in _on_disk(out)} == before
    assert _render(cli, out, "-i", str(images)).exit_code == 0  # the same job: finishes it
    assert read_manifest(out)["complete"] is True and _on_disk(out) == _listed(out)


def test_a_plain_run_refuses_while_a_shard_runs(cli, tmp_path: Path) -> None:
    from anycapture.run.shards import Shard, shard_output_dir

    out = tmp_path / "out"
    with shard_output_dir(out, Shard(1, 2)):  # shard 1/2 is running
        result = _render(cli, out, "-i", str(CAT))
    assert result.exit_code == 2
    assert "shard 1/2 of a sharded job is running there" in result.stderr
    assert not (out / "manifest.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("group", [False, True])  # the run alone; its whole group, workers too
def test_sighup_ends_a_run_like_sigterm(tmp_path: Path, group: bool) -> None:
    images = _images(tmp_path / "imgs", 30)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "anycapture", "render", "-m", f"{KNOWN}:slow"]
    command += ["-i", str(images), "-o", str(out), "--batch-size", "1", "-q"]
    command += ["--jobs", "2", "--decode-workers", "1"] if group else ["--jobs", "0"]
    process = subprocess.Popen(
        command, cwd=REPO, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, start_new_session=group,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (out / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    if group:  # a closed terminal hangs up the whole foreground group
        os.killpg(process.pid, signal.SIGHUP)
    else:
        process.send_signal(signal.SIGHUP)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 129, stderr
    assert stderr.strip().splitlines() == [
        "anycapture: error: hung up (SIGHUP); finished files are valid and listed in manifest.json"
    ]
    assert _on_disk(out) == _listed(out)  # every figure listed, no lock left


def test_a_file_name_that_is_not_utf8_with_html(cli, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes: not UTF-8
    shutil.copy(CAT, folder / name)
    out = tmp_path / "out"
    result = _render(cli, out, "-i", str(folder), "--html")
    assert result.exit_code == 0, result.stderr
    page = (out / "index.html").read_bytes().decode("utf-8")  # valid UTF-8
    assert "caf\ufffd.jpg" in page
    assert _on_disk(out) == _listed(out)


def test_shards_after_a_plain_run_leave_no_file_unlisted(cli, tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs", 3)
    out = tmp_path / "out"
    assert _render(cli, out, "-i", str(images), "--figures", "grid", "--html").exit_code == 0
    for k in (0, 1):
        args = ("-i", str(images), "--shard", f"{k}/2", "--html")
        assert _render(cli, out, *args).exit_code == 0
    manifest = read_manifest(out)
    assert manifest["complete"] is True
    assert {f["figure"] for f in manifest["figures"]} == {"head"}
    assert not [p for p in _on_disk(out) if "grid" in p]  # nor their thumbnails
    parts = {p for p in _on_disk(out) if p.startswith(".shards/")}
    assert _on_disk(out) - parts == _listed(out)  # the plain run's grids went with it


@pytest.mark.parametrize("planted", ["fifo", "list"])
def test_a_manifest_that_is_not_a_record_is_not_read(cli, tmp_path: Path, planted: str) -> None:
    """A FIFO planted as manifest.json (reading it would hang) or JSON that is not an
    object: not a run's record, so nothing of it is removed; the run replaces it."""
    out = tmp_path / "out"
    out.mkdir()
    if planted == "fifo":
        os.mkfifo(out / "manifest.json")
    else:
        (out / "manifest.json").write_text('["cat/head_L01_H0.png"]')
    result = _render(cli, out, "-i", str(CAT))
    assert result.exit_code == 0, result.stderr
    assert read_manifest(out)["complete"] is True
    assert _on_disk(out) == _listed(out)


def test_a_shard_exits_3_only_for_its_own_skipped_inputs(cli, tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs", 3)
    (images / "zz_broken.jpg").write_bytes(b"not an image")  # sorted last: shard 1's
    out = tmp_path / "out"
    first = _render(cli, out, "-i", str(images), "--shard", "1/2")
    assert first.exit_code == 3, first.stderr
    second = _render(cli, out, "-i", str(images), "--shard", "0/2")
    assert second.exit_code == 0, second.stderr  # shard 1's skip is not shard 0's
    manifest = read_manifest(out)
    assert manifest["complete"] is True and len(manifest["skipped"]) == 1
