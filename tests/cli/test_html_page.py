"""The HTML page (issue 14): a table of contents, per-image sections, readable
captions, lazy thumbnails linking full-size PNGs; laid out in headless Chromium at
two window widths (several columns, full-width sheets; one column on a narrow one)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import REPO, read_manifest

pytestmark = pytest.mark.slow

SCENES = [REPO / "assets" / "demo" / f"scene{i}.png" for i in (0, 1)]
PROBE = """<script>
addEventListener("load", () => {
  const rects = [...document.querySelectorAll("figure")].map(f => {
    const r = f.getBoundingClientRect();
    return [f.className, Math.round(r.left), Math.round(r.top), Math.round(r.width)];
  });
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(
    {width: innerWidth, scroll: document.documentElement.scrollWidth, rects});
  document.body.append(pre);
});
</script>"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from typer.testing import CliRunner

    from anycapture.cli import app
    from anycapture.cli.errors import run_command

    out = tmp_path_factory.mktemp("site") / "out"
    args = ["render", "-m", "demo", "--layer", "all", "--html", "-q", "-o", str(out)]
    args += ["--figures", "head,heads,grid,cls,rollout,layers"]
    for scene in SCENES:
        args += ["-i", str(scene)]
    with CliRunner().isolation():
        assert run_command(app, args) == 0
    return out


def test_page_structure_and_weight(site: Path) -> None:
    page = (site / "index.html").read_text()
    manifest = read_manifest(site)
    for number, scene in enumerate(SCENES):
        assert f'<a href="#image-{number}">{scene.name}</a>' in page
        assert f'<section id="image-{number}"><h2>{scene.name}</h2>' in page
    images = re.findall(r"<img [^>]*>", page)
    assert len(images) == len(manifest["figures"])
    assert all('loading="lazy"' in img and "width=" in img for img in images)
    for figure in manifest["figures"]:
        assert f'<a href="{figure["path"]}">' in page  # the full-size PNG, one click away
    for page_file in manifest["pages"]:
        assert (site / page_file).is_file()
    assert "layer 3 (blocks.3.attn)" in page and "query patch (4, 4)" in page
    assert "shared colour scale" in page and "prefix tokens: cls" in page
    text = re.sub(r"<[^>]+>", " ", page)
    for repr_bit in ("['", "[]", "None", "True", "False", "(np."):
        assert repr_bit not in text, repr_bit
    assert "http://" not in page and "https://" not in page and "<script" not in page
    shown = re.findall(r'<img src="([^"]+)"', page)
    light = sum((site / src).stat().st_size for src in shown)
    full = sum((site / f["path"]).stat().st_size for f in manifest["figures"])
    assert light < full / 2, (light, full)  # thumbnails: the page stays light


def _chromium(browser: str, tmp: Path, width: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={tmp / 'profile'}",
            f"--window-size={width},900",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("width", [1400, 600])
def test_page_layout_in_headless_chromium(site: Path, tmp_path: Path, width: int) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    probe = site / f"probe-{width}.html"  # the page plus a script that measures it
    probe.write_text((site / "index.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(browser, tmp_path, width, "--dump-dom", probe.as_uri()).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    layout = json.loads(found.group(1).replace("&quot;", '"'))
    assert layout["scroll"] <= layout["width"]  # nothing wider than the window
    singles = [r for r in layout["rects"] if r[0] == "single"]
    wides = [r for r in layout["rects"] if r[0] == "wide"]
    assert singles and wides
    lefts = {r[1] for r in singles}
    if width >= 1200:
        assert len(lefts) >= 3  # several columns of figures
        assert min(r[3] for r in wides) > 2.5 * max(r[3] for r in singles)  # sheets: full width
    else:
        assert len(lefts) == 1  # one column
        assert {r[3] for r in singles} == {r[3] for r in wides}
    shot = tmp_path / "shot.png"
    _chromium(browser, tmp_path, width, f"--screenshot={shot}", (site / "index.html").as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[1] == width
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500  # figures, not a blank page
