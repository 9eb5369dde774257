"""The same render before and after a refactor gives the same files: the same pixels
(PNG files are compared decoded, so a faster encoder changes nothing here) and the
same bytes for every other file.

Two fixed runs of the demo model (every figure kind, every layer, two images; paper
style from the model with ``--save-maps --html``, then bare style from those saved
maps with other options) are compared with sha256 sums recorded from the code as
it was before the architecture rework (issue 12).  PNG encoding depends on the
matplotlib, Pillow and numpy versions, so the sums carry the versions they were
made with, and the test skips (saying so) under other versions.

Regenerate, only when output is meant to change:
``ANYCAPTURE_WRITE_GOLDEN=1 .venv/bin/python -m pytest tests/cli/test_golden.py``.
The model's forward pass rounds differently on CPUs with other vector units, so a
file may carry one sum per such CPU: ``ANYCAPTURE_ADD_GOLDEN=1`` adds this machine's,
only after checking that the code before the change gives the same files here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).with_name("golden_render.json")
SCENES = ("scene0.png", "scene1.png")
FIGURES = "head,heads,grid,cls,rollout,layers"
RUNS: dict[str, list[str]] = {
    "paper": [
        "render", "--model", "demo", "--image", SCENES[0], "--image", SCENES[1],
        "--figures", FIGURES, "--layer", "all", "--save-maps", "--html", "--jobs", "0",
        "-o", "paper",
    ],
    "bare": [
        "render", "--from-maps", "paper/scene0/maps.npz", "--from-maps",
        "paper/scene1/maps.npz", "--figures", FIGURES, "--layer", "all", "--style", "bare",
        "--head", "mean", "--query", "2,3", "--threshold", "0.5", "--fusion", "max",
        "--discard-ratio", "0.1", "--upsample", "nearest", "--cmap", "magma", "--alpha",
        "0.4", "--html", "--jobs", "0", "-o", "bare",
    ],
}  # fmt: skip


def _versions() -> dict[str, str]:
    import matplotlib
    import PIL

    return {
        "matplotlib": matplotlib.__version__,
        "Pillow": PIL.__version__,
        "numpy": np.__version__,
    }


def _maps_digest(path: Path) -> str:
    """maps.npz holds zip timestamps: hash its arrays and metadata instead of its bytes."""
    digest = hashlib.sha256()
    with np.load(path, allow_pickle=False) as data:
        for name in sorted(data.files):
            array = data[name]
            digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _pixels_digest(path: Path) -> str:
    """A PNG's decoded pixels (and size): the encoder may change, what it shows may not."""
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    return hashlib.sha256(f"{pixels.shape}".encode() + pixels.tobytes()).hexdigest()


def _sums(out: Path) -> dict[str, str]:
    sums = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        relative = path.relative_to(out).as_posix()
        if path.suffix == ".npz":
            sums[relative] = _maps_digest(path)
        elif path.suffix == ".png":
            sums[relative] = _pixels_digest(path)
        else:
            sums[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def test_render_output_is_byte_identical(cli, tmp_path: Path, monkeypatch) -> None:
    for scene in SCENES:
        shutil.copy(REPO / "assets" / "demo" / scene, tmp_path / scene)
    monkeypatch.chdir(tmp_path)  # relative paths: the manifest names no tmp directory
    sums = {}
    for name, args in RUNS.items():
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        sums[name] = _sums(tmp_path / name)
    if os.environ.get("ANYCAPTURE_WRITE_GOLDEN"):
        data = {"versions": _versions(), "runs": sums}
        GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    if golden["versions"] != _versions():
        pytest.skip(f"golden sums made with {golden['versions']}, this is {_versions()}")
    if os.environ.get("ANYCAPTURE_ADD_GOLDEN"):  # this CPU's float results, beside the others
        _add_alternates(golden, sums)
    for name in RUNS:
        assert sorted(sums[name]) == sorted(golden["runs"][name]), name
        changed = [p for p, s in sums[name].items() if s not in _accepted(golden, name, p)]
        assert not changed, f"{name}: these files changed: {changed}"


def _accepted(golden: dict, run: str, path: str) -> list[str]:
    """The sums recorded for a file: one, or one per CPU float environment (the model's
    forward pass rounds differently on CPUs with other vector units: a few map values
    differ in the last bits, so maps.npz and a pixel or two of two figures differ)."""
    recorded = golden["runs"][run][path]
    return [recorded] if isinstance(recorded, str) else list(recorded)


def _add_alternates(golden: dict, sums: dict[str, dict[str, str]]) -> None:
    for run, files in sums.items():
        for path, digest in files.items():
            accepted = _accepted(golden, run, path)
            if path in golden["runs"][run] and digest not in accepted:
                golden["runs"][run][path] = [*accepted, digest]
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
