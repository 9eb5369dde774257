"""Every crafted --from-maps file is refused before its arrays are read: exit 2, one line."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import CAT, KNOWN, read_manifest
from .crafted import bomb_npz, read_npz, write_npz

Arrays = dict[str, Any]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A maps file the tool wrote (known model: 1 prefix + 3x5 grid, 2 layers of 2 heads)."""
    from anycapture.cli import app
    from anycapture.cli.errors import run_command

    out = tmp_path_factory.mktemp("saved")
    args = ["render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(out), "--save-maps"]
    assert run_command(app, [*args, "--figures", "head", "-q"]) == 0
    return out / "cat" / "maps.npz"


def _meta(arrays: Arrays) -> dict[str, Any]:
    return json.loads(str(arrays["meta"]))


def _with_meta(change: Callable[[dict[str, Any]], Any]) -> Callable[[Arrays], Arrays]:
    def apply(arrays: Arrays) -> Arrays:
        meta = copy.deepcopy(_meta(arrays))
        replaced = change(meta)
        arrays["meta"] = np.array(json.dumps(meta if replaced is None else replaced))
        return arrays

    return apply


def _set(arrays: Arrays, **values: Any) -> Arrays:
    arrays.update(values)
    return arrays


def _drop(arrays: Arrays, name: str) -> Arrays:
    del arrays[name]
    return arrays


def _layout(**values: Any) -> Callable[[Arrays], Arrays]:
    return _with_meta(lambda meta: meta["layout"].update(values))


CRAFTED: dict[str, Callable[[Arrays], Arrays]] = {
    "no meta": lambda a: _drop(a, "meta"),
    "meta not JSON": lambda a: _set(a, meta=np.array("{nope")),
    "meta a list": _with_meta(lambda meta: [meta]),
    "meta a number array": lambda a: _set(a, meta=np.arange(3)),
    "wrong format": _with_meta(lambda meta: meta.update(format="other/9")),
    "model not an object": _with_meta(lambda meta: meta.update(model="vit")),
    "image not text": _with_meta(lambda meta: meta.update(image=[1])),
    "layout missing": _with_meta(lambda meta: meta.pop("layout")),
    "layout a string": _with_meta(lambda meta: meta.update(layout="3x5")),
    "grid mistyped": _layout(grid="3x5"),
    "grid of three": _layout(grid=[3, 5, 1]),
    "grid zero": _layout(grid=[0, 5]),
    "grid bool": _layout(grid=[True, 5]),
    "prefix negative": _layout(prefix_tokens=-1),
    "prefix float": _layout(prefix_tokens=1.5),
    "prefix names short": _layout(prefix_names=["cls", "dist"]),
    "patch size mistyped": _layout(patch_size=[16]),
    "grid finer than view": _layout(grid=[300, 5]),
    "layer names missing": _with_meta(lambda meta: meta.pop("layer_names")),
    "layer names empty": _with_meta(lambda meta: meta.update(layer_names=[])),
    "layer names not text": _with_meta(lambda meta: meta.update(layer_names=[1, 2])),
    "more names than layers": _with_meta(lambda meta: meta["layer_names"].append("extra")),
    "1-D layer": lambda a: _set(a, layer_000=np.zeros(16, np.float32)),
    "2-D layer": lambda a: _set(a, layer_000=np.zeros((16, 16), np.float32)),
    "integer layer": lambda a: _set(a, layer_000=np.zeros((2, 16, 16), np.int64)),
    "text layer": lambda a: _set(a, layer_000=np.array([["a"]] * 2)),
    "empty layer": lambda a: _set(a, layer_000=np.zeros((2, 0, 16), np.float32)),
    "more tokens than the layout": lambda a: _set(a, layer_000=np.zeros((2, 17, 17), np.float32)),
    "NaN layer": lambda a: _set(a, layer_000=np.full((2, 16, 16), np.nan, np.float32)),
    "infinite layer": lambda a: _set(a, layer_001=np.full((2, 16, 16), np.inf, np.float32)),
    "float view": lambda a: _set(a, view=a["view"].astype(np.float32)),
    "grey view": lambda a: _set(a, view=a["view"][..., 0]),
    "view missing": lambda a: _drop(a, "view"),
    "huge view": lambda a: _set(a, view=np.zeros((1, 9000, 3), np.uint8)),
    "windows a list": _with_meta(lambda meta: meta.update(windows=[1])),
    "window past count": _with_meta(
        lambda meta: meta.update(windows={meta["layer_names"][0]: [4, 4]})
    ),
    "window of no layer": _with_meta(lambda meta: meta.update(windows={"nowhere": [0, 2]})),
    "window mistyped": _with_meta(
        lambda meta: meta.update(windows={meta["layer_names"][0]: "0/2"})
    ),
}

RAW: dict[str, bytes] = {
    "empty file": b"",
    "random bytes": bytes(range(256)) * 4,
    "a zip of nothing": b"PK\x05\x06" + bytes(18),
    "truncated zip": b"PK\x03\x04" + bytes(40),
}


def _check_refused(cli, path: Path, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli("render", "--from-maps", str(path), "-o", str(out))
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("anycapture: error: "), result.stderr
    assert str(path) in lines[0]
    assert not list(out.rglob("*.png"))
    return lines[0]


def test_the_good_file_renders(cli, good: Path, tmp_path: Path) -> None:
    result = cli("render", "--from-maps", str(good), "-o", str(tmp_path / "o"), "-q")
    assert result.exit_code == 0, result.stderr
    assert read_manifest(tmp_path / "o")["figures"]


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_maps_files_are_refused(cli, good: Path, tmp_path: Path, case: str) -> None:
    path = write_npz(tmp_path / "crafted.npz", CRAFTED[case](read_npz(good)))
    line = _check_refused(cli, path, tmp_path)
    if "NaN" in case or "infinite" in case:
        assert "NaN or infinite attention weights" in line
    else:
        assert "not a maps file written by --save-maps" in line


@pytest.mark.parametrize("case", sorted(RAW))
def test_files_that_are_not_archives_are_refused(cli, tmp_path: Path, case: str) -> None:
    path = tmp_path / "raw.npz"
    path.write_bytes(RAW[case])
    _check_refused(cli, path, tmp_path)


def test_a_plain_npy_and_a_pickle_are_refused(cli, tmp_path: Path) -> None:
    plain = tmp_path / "plain.npz"
    with plain.open("wb") as handle:
        np.save(handle, np.zeros(3))
    _check_refused(cli, plain, tmp_path)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"format": "anycapture-maps/1"}], dtype=object))
    _check_refused(cli, pickled, tmp_path)


BOMB_META = {
    "format": "anycapture-maps/1",
    "model": {},
    "image": "bomb.png",
    "layer_names": ["blocks.0.attn"],
    "layout": {"prefix_tokens": 2, "prefix_names": [], "grid": [90, 91], "patch_size": None},
    "windows": {},
}


@pytest.mark.parametrize(
    ("shape", "needle"),
    [
        ((12, 8192, 8192), "3.0 GiB once read (as stored, plus the float32 copy"),  # too big
        ((4, 16384, 8192), "the layout has 8192 tokens"),  # more queries than tokens
    ],
)
def test_deflate_bomb_is_refused_before_loading(
    tmp_path: Path, shape: tuple[int, ...], needle: str
) -> None:
    """A 3 MB file declaring 3 GiB: refused from its header, in a process whose address
    space is capped at 1.5 GiB (loading it would need twice that)."""
    bomb = bomb_npz(tmp_path / "bomb.npz", shape, BOMB_META)
    assert bomb.stat().st_size < 8 << 20
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))\n"
        "from anycapture.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "render",
            "--from-maps",
            str(bomb),
            "-o",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_header_declaring_more_than_the_member_holds(cli, good: Path, tmp_path: Path) -> None:
    """A layer whose .npy header promises more data than the zip member holds."""
    import zipfile

    path = tmp_path / "short.npz"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "layer_000.npy":
                data = data[: len(data) // 2]
            target.writestr(info.filename, data)
    assert "declares shape" in _check_refused(cli, path, tmp_path)


def test_maps_of_more_tokens_than_are_drawn_are_refused(cli, tmp_path: Path) -> None:
    """10,001 tokens (a 100x100 grid and a cls token) in 400 MB: within the bytes cap,
    but a figure of it took gigabytes to draw; refused from the header."""
    meta = {**BOMB_META, "layout": {**BOMB_META["layout"], "prefix_tokens": 1, "grid": [100, 100]}}
    bomb = bomb_npz(tmp_path / "wide.npz", (1, 10001, 10001), meta)
    result = cli("render", "--from-maps", str(bomb), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2, result.stderr
    assert "at most 8192 queries and keys are drawn" in result.stderr
    assert result.stderr.count("\n") == 1


def test_deeply_nested_meta_is_refused_in_one_line(cli, tmp_path: Path) -> None:
    """A forged meta of 100,000 nested lists raised RecursionError (exit 1)."""
    meta = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "nested.npz"
    np.savez(path, meta=np.array(meta), view=np.zeros((8, 8, 3), np.uint8))
    result = cli("render", "--from-maps", str(path), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2, result.stderr
    assert "nested too deeply" in result.stderr and result.stderr.count("\n") == 1
