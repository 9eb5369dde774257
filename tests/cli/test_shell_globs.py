"""An unquoted glob, expanded by the shell (``--image assets/demo/*.png``, what nearly
everyone types): the extra paths are images (or, after --from-maps, maps files), not
"Got unexpected extra argument(s)"."""

from __future__ import annotations

from pathlib import Path

from .conftest import REPO, read_manifest

SCENES = sorted(str(p) for p in (REPO / "assets" / "demo").glob("scene*.png"))


def test_a_shell_expanded_image_glob_renders_every_image(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("render", "-m", "demo", "--figures", "head", "-o", str(out), "--save-maps")
    result = cli(*args, "--image", *SCENES)
    assert result.exit_code == 0, result.stderr
    assert [f["image"] for f in read_manifest(out)["figures"]] == SCENES
    maps = sorted(str(p) for p in out.rglob("maps.npz"))
    again = tmp_path / "again"
    result = cli("render", "--figures", "head", "-o", str(again), "--from-maps", *maps)
    assert result.exit_code == 0, result.stderr
    assert len(read_manifest(again)["figures"]) == len(SCENES)


def test_an_image_among_maps_files_is_refused_before_anything_is_replaced(
    cli, tmp_path: Path
) -> None:
    """--from-maps x.npz *.png: the image was found after the old output was deleted."""
    out = tmp_path / "out"
    args = ("render", "-m", "demo", "--figures", "head", "-o", str(out), "--save-maps")
    assert cli(*args, "--image", *SCENES).exit_code == 0
    before = sorted(p.name for p in out.rglob("*"))
    maps = sorted(str(p) for p in out.rglob("maps.npz"))
    result = cli("render", "--figures", "head", "-o", str(out), "--from-maps", *maps, SCENES[0])
    assert result.exit_code == 2 and "is not a maps file" in result.stderr
    assert sorted(p.name for p in out.rglob("*")) == before
