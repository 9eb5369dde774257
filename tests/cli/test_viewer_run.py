"""``render --viewer``: DIR/viewer.html, built from the saved maps at the place every
run publishes its records, so a plain run, --resume, merged shards and --from-maps
give the same page; listed in ``pages``, replaced and removed like every output."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import REPO, read_manifest

DEMO = REPO / "assets" / "demo"
BASE = ("render", "-m", "demo", "-i", str(DEMO), "--figures", "head", "--jobs", "0")


def _page(out: Path) -> str:
    return (out / "viewer.html").read_text()


def _images_in(page: str) -> int:
    return len(re.findall(r'<script type="application/octet-stream" id="ac-image-\d+">', page))


def test_every_run_path_writes_the_same_viewer(cli, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    assert cli(*BASE, "--viewer", "-o", str(plain)).exit_code == 0
    manifest = read_manifest(plain)
    assert "viewer.html" in manifest["pages"] and len(manifest["maps"]) == 3
    page = _page(plain)
    assert _images_in(page) == 3
    assert cli(*BASE, "--viewer", "--resume", "-o", str(plain)).exit_code == 0  # all done
    assert _page(plain) == page
    sharded = tmp_path / "sharded"
    for k in (0, 1):
        result = cli(*BASE, "--viewer", "--shard", f"{k}/2", "-o", str(sharded))
        assert result.exit_code == 0, result.stderr
    assert _page(sharded) == page
    assert "viewer.html" in read_manifest(sharded)["pages"]


def test_from_maps_builds_the_viewer_without_the_model(cli, tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    assert cli(*BASE, "--save-maps", "-o", str(saved)).exit_code == 0
    maps = sorted(str(p) for p in saved.rglob("maps.npz"))
    out = tmp_path / "from-maps"
    args = ["render", "--figures", "head", "--viewer", "-o", str(out)]
    result = cli(*args, *(a for m in maps for a in ("--from-maps", m)))
    assert result.exit_code == 0, result.stderr
    assert _images_in(_page(out)) == 3 and "viewer.html" in read_manifest(out)["pages"]


def test_a_run_without_viewer_removes_the_one_it_had_written(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli(*BASE, "--viewer", "--html", "-o", str(out)).exit_code == 0
    assert 'href="viewer.html"' in (out / "index.html").read_text()
    assert cli(*BASE, "-o", str(out)).exit_code == 0
    assert not (out / "viewer.html").exists()
    assert "viewer.html" not in read_manifest(out)["pages"]


def test_a_cross_attention_models_maps_save_load_and_show(cli, tmp_path: Path) -> None:
    """Image queries x 77 text keys: --viewer failed ("the layout has 33 tokens") on
    the maps its own run had saved, and --from-maps refused them."""
    model = REPO / "tests" / "models" / "truth_models.py"
    out = tmp_path / "out"
    scene = str(DEMO / "scene0.png")
    result = cli("render", "-m", f"{model}:cross", "-i", scene, "--viewer", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert _images_in(_page(out)) == 1
    again = tmp_path / "again"
    maps = str(out / "scene0" / "maps.npz")
    result = cli("render", "--from-maps", maps, "--layer", "0", "-o", str(again))
    assert result.exit_code == 0, result.stderr


def test_a_damaged_maps_file_leaves_its_image_out_of_the_viewer(cli, tmp_path: Path) -> None:
    """A maps file damaged after its run: --resume --viewer failed for good, naming
    --from-maps; now the page shows the other images and a note says why."""
    out = tmp_path / "out"
    assert cli(*BASE, "--viewer", "-o", str(out)).exit_code == 0
    (out / "scene1" / "maps.npz").write_bytes(b"garbage")
    result = cli(*BASE, "--viewer", "--resume", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert _images_in(_page(out)) == 2 and "viewer.html" in manifest["pages"]
    assert any("viewer:" in n and "scene1" in n for n in manifest["notes"])
    assert "--from-maps" not in result.stderr


def test_a_shard_with_no_images_drops_an_earlier_viewer(cli, tmp_path: Path) -> None:
    """One image, --shard 0/2 after a plain run: the shard has nothing; the earlier
    viewer.html (its images' maps removed) stayed listed and was offered to open."""
    out = tmp_path / "out"
    one = ("render", "-m", "demo", "-i", str(DEMO / "scene0.png"), "--figures", "head")
    assert cli(*one, "--viewer", "-o", str(out)).exit_code == 0
    result = cli(*one, "--viewer", "--shard", "0/2", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "viewer.html" not in read_manifest(out)["pages"]
    assert not (out / "viewer.html").exists() and "open " not in result.stderr
