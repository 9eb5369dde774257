"""Bad input: one clear line on stderr, exit 2 (input) or 1 (runtime), no traceback,
and nothing half-written in --out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import CAT, KNOWN

pytestmark = pytest.mark.slow


def _assert_clean_failure(result, code: int, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("anycapture: error: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def _no_files(out: Path) -> None:
    assert not out.exists(), list(out.rglob("*"))  # not even an empty --out


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (["-m", "vit_tiny", "-i", "missing.jpg"], 2, ["missing.jpg", "no such file"]),
        (["-m", "vit_smal", "-i", str(CAT)], 2, ["unknown model 'vit_smal'", "vit_small"]),
        (["-m", "tests/models", "-i", str(CAT)], 2, ["model directory tests/models has no config"]),
        (["-m", "/no/such/dir/", "-i", str(CAT)], 2, ["--model /no/such/dir/: no such file or"]),
        (["-m", "facebook/dinov3", "-i", str(CAT)], 2, ["written transformers:facebook/dinov3"]),
        (["-m", "nosuchpkg.models:build", "-i", str(CAT)], 2, ["cannot import module"]),
        (["-m", "tests/models/nope.py:build", "-i", str(CAT)], 2, ["does not exist"]),
        (["-m", f"{KNOWN}:nothing", "-i", str(CAT)], 2, ["has no attribute 'nothing'"]),
        (["-m", f"{KNOWN}:raises", "-i", str(CAT)], 2, ["raised RuntimeError: factory exploded"]),
        (["-m", f"{KNOWN}:not_a_module", "-i", str(CAT)], 2, ["not a torch.nn.Module"]),
        (
            ["-m", "vit_tiny", "-i", str(CAT), "--layer", "12", "--no-pretrained"],
            2,
            ["--layer 12 is out of range", "0..11"],
        ),
        (
            ["-m", "vit_tiny", "-i", str(CAT), "--head", "3", "--no-pretrained"],
            2,
            ["--head 3", "0..2"],
        ),
        (
            ["-m", "vit_tiny", "-i", str(CAT), "--query", "14,0", "--no-pretrained"],
            2,
            ["outside the 14x14", "0..13"],
        ),
        (["-m", "vit_tiny", "-i", str(CAT), "--query", "a,b", "--no-pretrained"], 2, ["ROW,COL"]),
        (
            ["-m", "vit_tiny", "-i", str(CAT), "--figures", "pie", "--no-pretrained"],
            2,
            ["unknown kind pie"],
        ),
        (
            ["-m", "vit_tiny", "-i", str(CAT), "--cmap", "nocmap", "--no-pretrained"],
            2,
            ["unknown colormap"],
        ),
        (["-m", "vit_tiny", "-i", str(CAT), "--checkpoint", "none.pth"], 2, ["does not exist"]),
        (["-m", "torch.nn:Identity", "-i", str(CAT)], 2, ["attention", "--capture"]),
        (["-m", "demo", "-i", str(CAT), "--device", "meta"], 2, ["--device meta", "cpu"]),
        (["-m", "demo", "-i", str(CAT), "--img-size", "4,4"], 2, ["4x4 input", "--img-size"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_bad_input(cli, tmp_path: Path, args: list[str], code: int, needles: list[str]) -> None:
    out = tmp_path / "out"
    _assert_clean_failure(cli("render", *args, "-o", str(out)), code, *needles)
    _no_files(out)


def _image(tmp_path: Path, name: str, make) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    make(path)
    return path


def test_unreadable_images(cli, tmp_path: Path) -> None:
    text = _image(tmp_path, "notes.jpg", lambda p: p.write_text("not an image"))
    truncated = _image(tmp_path, "cut.jpg", lambda p: p.write_bytes(CAT.read_bytes()[:3000]))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    for image, needle in ((text, "not an image"), (truncated, "truncated or corrupt")):
        out = tmp_path / f"out-{image.stem}"
        _assert_clean_failure(
            cli("render", "-m", f"{KNOWN}:build", "-i", str(image), "-o", str(out)), 2, needle
        )
        assert not (out / "manifest.json").exists()
    _assert_clean_failure(
        cli("render", "-m", f"{KNOWN}:build", "-i", str(empty_dir)), 2, "has no images"
    )


def test_odd_image_modes_work(cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = Image.open(CAT)
    folder = tmp_path / "imgs"
    folder.mkdir()
    rgb.convert("L").save(folder / "gray.png")
    rgb.convert("RGBA").save(folder / "rgba.png")
    rgb.convert("P").save(folder / "palette.png")
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rng.integers(0, 65535, (40, 60), dtype=np.uint16)).save(folder / "deep16.png")
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "dot.png")
    Image.new("RGB", (6000, 5000), (10, 200, 10)).save(folder / "huge.jpg", quality=50)
    out = tmp_path / "out"
    result = cli(
        "render",
        "-m",
        f"{KNOWN}:build",
        "-i",
        str(folder),
        "-o",
        str(out),
        "-q",
        "--figures",
        "grid",
        "--style",
        "bare",
    )
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["figures"]) == 7


def test_out_is_a_file_or_unwritable(cli, tmp_path: Path) -> None:
    existing = tmp_path / "file.txt"
    existing.write_text("x")
    _assert_clean_failure(
        cli("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(existing)),
        2,
        "existing file",
    )
    # a directory cannot be made under a file: unwritable even for root
    result = cli("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(existing / "sub"))
    _assert_clean_failure(result, 2, "cannot write to --out")
    if os.geteuid() != 0:  # root can write anywhere
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        result = cli("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(locked / "x"))
        _assert_clean_failure(result, 2, "cannot write")


def test_checkpoints_safe_loading(cli, tmp_path: Path) -> None:
    import torch

    from tests.models.known import tiny_vit

    good = tmp_path / "good.pth"
    torch.save(tiny_vit().state_dict(), good)
    pickled = tmp_path / "object.pth"
    torch.save({"model": tiny_vit()}, pickled)  # a whole module: needs unpickling code
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x00garbage")
    wrong = tmp_path / "wrong.safetensors"
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2)}, str(wrong))
    model = f"{KNOWN}:tiny_vit"
    out = tmp_path / "ok"
    ok = cli("render", "-m", model, "-i", str(CAT), "-o", str(out), "--checkpoint", str(good), "-q")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads((out / "manifest.json").read_text())["model"]["pretrained"] is True
    for path, needle in (
        (pickled, "arbitrary unpickling"),
        (corrupt, "cannot read checkpoint"),
        (wrong, "does not fit the model"),
    ):
        _assert_clean_failure(
            cli(
                "render",
                "-m",
                model,
                "-i",
                str(CAT),
                "-o",
                str(tmp_path / "x"),
                "--checkpoint",
                str(path),
            ),
            2,
            needle,
        )


def test_real_process_exit_code_and_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "anycapture", "render", "-m", "vit_tiny", "-i", "nope.png"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "anycapture: error: --image nope.png: no such file or directory"
    assert not (tmp_path / "anycapture-out").exists()
