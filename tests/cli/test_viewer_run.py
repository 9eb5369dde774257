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
