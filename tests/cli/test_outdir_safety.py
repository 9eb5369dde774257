"""The output directory: a lock that excludes across processes, the tool's own file
names kept for the tool, symbolic links never followed out, ``--out ''`` refused."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from anycapture.run.outdir import LOCK_NAME, locked_output_dir

from .conftest import CAT, KNOWN, read_manifest

_CONTENDER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from anycapture.run.outdir import OutputDirError, locked_output_dir

    out, marker, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    held = overlaps = 0
    deadline = time.monotonic() + 60
    while held < rounds and time.monotonic() < deadline:
        try:
            with locked_output_dir(out):
                try:  # only the holder may create the marker: O_EXCL fails on overlap
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    overlaps += 1
                    continue
                os.close(fd)
                time.sleep(0.0005)
                marker.unlink()
                held += 1
        except OutputDirError:
            pass
    print(held, overlaps)
    """
)


def test_lock_excludes_across_processes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    marker = tmp_path / "holder"
    script = tmp_path / "contender.py"
    script.write_text(_CONTENDER)
    rounds = 150
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(out), str(marker), str(rounds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120)[0].split() for p in processes]
    assert all(p.returncode == 0 for p in processes)
    held = [int(r[0]) for r in results]
    overlaps = [int(r[1]) for r in results]
    assert overlaps == [0, 0, 0], (held, overlaps)
    assert held == [rounds] * 3, held  # everyone got its turn
    assert not (out / LOCK_NAME).exists()  # removed (while held) by the last holder


def test_lock_is_refused_while_held_and_free_after(tmp_path: Path) -> None:
    from anycapture.run.outdir import OutputDirError

    out = tmp_path / "out"
    with locked_output_dir(out):
        with pytest.raises(OutputDirError, match="in use by another anycapture run"):
            with locked_output_dir(out):
                pass
    with locked_output_dir(out):  # released, usable again
        pass
    assert not out.exists()  # nothing left behind: made by the lock, removed when empty
    with locked_output_dir(tmp_path / "new" / "nested" / "out"):
        pass
    assert not (tmp_path / "new").exists()  # every folder it made, not only the last


@pytest.mark.parametrize(
    ("own", "folder"),
    [
        ("manifest.json", "manifest.json-2"),
        ("index.html", "index.html-2"),
        (LOCK_NAME, "anycapture.lock"),
    ],
)
def test_image_named_like_the_tools_own_files(cli, tmp_path: Path, own: str, folder: str) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    (images / f"{own}.png").write_bytes(CAT.read_bytes())  # a JPEG under a .png name is fine
    out = tmp_path / "out"
    result = cli(
        "render", "-m", f"{KNOWN}:build", "-i", str(images), "-o", str(out), "--html", "-q"
    )
    assert result.exit_code == 0, result.stderr
    assert (out / "manifest.json").is_file() and (out / "index.html").is_file()
    manifest = read_manifest(out)
    assert manifest["complete"] is True and manifest["figures"]
    folders = {Path(f["path"]).parts[0] for f in manifest["figures"]}
    assert folders == {folder}
    for entry in manifest["figures"]:
        assert (out / entry["path"]).is_file()


@pytest.mark.slow
def test_images_named_like_per_run_figures_and_thumbs(cli, tmp_path: Path) -> None:
    """Top-level names the run writes (a per-run figure, the HTML thumbs folder) are
    never an image's folder: distance_all_images.png.jpg -> distance_all_images.png-2;
    nor is one that differs from another only in case."""
    images = tmp_path / "imgs"
    images.mkdir()
    for name in ("distance_all_images.png.jpg", "thumbs.jpg", "Cat.jpg", "cat.png"):
        (images / name).write_bytes(CAT.read_bytes())
    out = tmp_path / "out"
    result = cli(
        "render", "-m", "demo", "-i", str(images), "-o", str(out), "--html", "-q",
        "--figures", "head,distance",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    folders = {Path(f["path"]).parts[0] for f in manifest["figures"] if f["image"]}
    # case-folded: Cat/ and cat/ would be one folder on macOS and Windows
    assert folders == {"distance_all_images.png-2", "thumbs-2", "Cat", "cat-2"}
    assert (out / "distance_all_images.png").is_file()
    for entry in manifest["figures"]:
        assert (out / entry["path"]).is_file()
    assert all((out / page).is_file() for page in manifest["pages"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "refused",
    [["--head", "7"], ["--figures", "cls", "--token", "3"], ["--figures", "grid",
     "--query-pixel", "9999,9999"], ["--window", "2"]],
)  # fmt: skip
def test_a_run_refused_after_the_model_loads_keeps_the_previous_output(
    cli, tmp_path: Path, refused: list[str]
) -> None:
    """What is found wrong only on the first image (a head the model lacks) is exit 2
    and leaves the previous run's figures and manifest as they were."""
    out = tmp_path / "out"
    base = ("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(out), "-q")
    assert cli(*base, "--figures", "head").exit_code == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = cli(*base, *refused)
    assert result.exit_code == 2, result.stderr
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_symlinks_inside_out_are_never_followed_out(cli, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    out = tmp_path / "out"
    out.mkdir()
    (out / "cat").symlink_to(outside, target_is_directory=True)  # the image's folder name
    (out / "manifest.json").symlink_to(outside / "manifest.json")
    result = cli("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]  # nothing written there
    assert (outside / "keep.txt").read_text() == "mine"
    assert not (out / "cat").is_symlink() and (out / "cat").is_dir()
    assert not (out / "manifest.json").is_symlink()
    for entry in read_manifest(out)["figures"]:
        assert (out / entry["path"]).is_file()


def test_lock_file_symlink_is_not_followed(cli, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(victim)
    result = cli("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(out), "-q")
    assert result.exit_code == 2, result.stderr
    assert "cannot write to --out" in result.stderr
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_out_is_refused(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", value)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip() == (
        "anycapture: error: --out is empty; give a directory path, e.g. --out anycapture-out"
    )
    assert list(tmp_path.iterdir()) == []
