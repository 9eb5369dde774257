"""One run path: plain, --image-list, --resume (from empty and after a plain run) and
--shard 0/1 on the same inputs write the same files, the same manifest (``pages``
included) and the same skip lines and counts (issues 20 item 4, 21 item 1)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import KNOWN, REPO, read_manifest

DEMO = REPO / "assets" / "demo"


def _inputs(tmp_path: Path) -> Path:
    images = tmp_path / "imgs"
    images.mkdir()
    for path in sorted(DEMO.glob("*.png")):
        shutil.copy(path, images / path.name)
    (images / "broken.png").write_bytes(b"not an image at all")  # skipped, exit 3
    return images


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _lines(stderr: str, out: Path) -> list[str]:
    """The run's skip lines and its count line, --out written as OUT."""
    keep = ("anycapture: skipped", "anycapture: wrote")
    return [ln.replace(str(out), "OUT") for ln in stderr.splitlines() if ln.startswith(keep)]


def _manifest(out: Path) -> dict[str, Any]:
    return read_manifest(out)


@pytest.mark.slow
def test_every_run_path_writes_the_same_output(cli, tmp_path: Path) -> None:
    images = _inputs(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"imgs/{p.name}\n" for p in sorted(images.iterdir())))
    base = ("render", "-m", "demo", "--html", "--jobs", "0")
    paths = {
        "plain": ("-i", str(images)),
        "image-list": ("--image-list", str(listing)),
        "resume-from-empty": ("-i", str(images), "--resume"),
        "shard-0-of-1": ("-i", str(images), "--shard", "0/1"),
    }
    results = {}
    for name, args in paths.items():
        out = tmp_path / name
        result = cli(*base, *args, "-o", str(out))
        assert result.exit_code == 3, (name, result.stderr)  # finished, one input skipped
        results[name] = (_files(out), _manifest(out), _lines(result.stderr, out))

    plain_files, plain_manifest, plain_lines = results["plain"]
    assert plain_manifest["pages"] and "index.html" in plain_manifest["pages"]
    assert [s["image"] for s in plain_manifest["skipped"]] == [str(images / "broken.png")]
    assert plain_lines == [
        f"anycapture: skipped: {images / 'broken.png'} is not an image Pillow can read",
        "anycapture: wrote 9 figures for 3 images to OUT; open OUT/index.html; skipped 1 "
        "input, listed in "
        'manifest.json under "skipped"',
    ]
    listed = set(plain_manifest["pages"]) | {f["path"] for f in plain_manifest["figures"]}
    assert listed | {"manifest.json"} == set(plain_files)  # manifest == disk
    for name, (files, manifest, lines) in results.items():
        assert set(files) == set(plain_files), name
        assert files == plain_files, name  # figures, thumbnails and page, byte for byte
        assert manifest == plain_manifest, name  # no timings or timestamps in it
        assert lines == plain_lines, name

    # --resume after the plain run: nothing is drawn again, the broken input is
    # skipped with the same line, and the page and the manifest stay the same
    out = tmp_path / "plain"
    again = cli(*base, *paths["plain"], "--resume", "-o", str(out))
    assert again.exit_code == 3, again.stderr
    assert _lines(again.stderr, out) == [
        plain_lines[0],
        "anycapture: wrote 0 figures for 0 images to OUT, 3 already finished; open "
        "OUT/index.html; skipped 1 "
        'input, listed in manifest.json under "skipped"',
    ]
    assert _manifest(out) == plain_manifest
    assert set(_files(out)) == set(plain_files)

    # and a plain run after a --resume --html run leaves no thumbnail unlisted
    out = tmp_path / "resume-from-empty"
    assert cli(*base, *paths["plain"], "--figures", "head", "-o", str(out)).exit_code == 3
    manifest = _manifest(out)
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    listed = set(manifest["pages"]) | {f["path"] for f in manifest["figures"]}
    assert on_disk == listed | {"manifest.json"}


@pytest.mark.parametrize("how", [(), ("--resume",), ("--shard", "0/1")])
def test_the_progress_display_is_wired_on_every_path(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: tuple[str, ...]
) -> None:
    import sys

    from .test_first_minutes import _Recording

    images = _inputs(tmp_path)
    monkeypatch.setattr(sys.modules["anycapture.cli.render"], "RunProgress", _Recording)
    _Recording.stages, _Recording.counts = [], {}
    args = ("-i", str(images), "--batch-size", "2", "--html", "-o", str(tmp_path / "o"))
    result = cli("render", "-m", f"{KNOWN}:build", *args, *how)
    assert result.exit_code == 3, result.stderr
    counts = {k: v for k, v in _Recording.counts.items() if "(images)" in k}
    assert counts == {"forward passes (images)": 3, "drawing figures (images)": 4}
    assert "writing index.html" in _Recording.stages


def test_a_shard_whose_inputs_are_all_unreadable_finishes_its_part(cli, tmp_path: Path) -> None:
    """Shard 0 of 2 got only unreadable images: it refused "nothing to render" (exit 2)
    and wrote no part, so the job never completed; as a plain run: exit 3, complete."""
    images = tmp_path / "k"
    images.mkdir()
    for name, scene in (("a", "scene0"), ("b", "scene1")):
        (images / f"{name}.png").write_bytes((DEMO / f"{scene}.png").read_bytes()[:300])
    for name, scene in (("c", "scene0"), ("d", "scene2")):
        shutil.copy(DEMO / f"{scene}.png", images / f"{name}.png")
    out = tmp_path / "out"
    base = ("render", "-m", "demo", "--figures", "head", "-i", str(images), "-o", str(out))
    assert cli(*base, "--shard", "0/2").exit_code == 3
    assert cli(*base, "--shard", "1/2").exit_code == 0
    manifest = _manifest(out)
    assert manifest["complete"] and len(manifest["figures"]) == 2
    skipped = [s["image"] for s in manifest["skipped"]]
    assert skipped == [str(images / name) for name in ("a.png", "b.png")]
