"""Model files and checkpoints that used to end badly: an empty checkpoint, a model
file calling sys.exit() (at import or in its factory), and the "convert it once"
hint run by the shell as printed, whatever the path holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CAT, KNOWN

pytestmark = pytest.mark.slow


def _one_error_line(result, *needles: str) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("anycapture: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_empty_checkpoint(cli, tmp_path: Path, suffix: str) -> None:
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    result = cli("render", "-m", f"{KNOWN}:tiny_vit", "-i", str(CAT), "-o", str(tmp_path / "o"),
                 "--checkpoint", str(empty))  # fmt: skip
    _one_error_line(result, "cannot read checkpoint", str(empty))


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("import sys\nsys.exit()\n", "importing"),
        ("import sys\nsys.exit(0)\n", "importing"),
        ("import sys\nraise SystemExit('bye')\n", "importing"),
        (f"import sys\nsys.path.insert(0, {str(KNOWN.parent)!r})\nimport known\n"
         "def build():\n    sys.exit(3)\n", "calling"),
    ],
    ids=["exit-at-import", "exit-0-at-import", "SystemExit-at-import", "exit-in-factory"],
)  # fmt: skip
def test_model_file_calling_sys_exit(cli, tmp_path: Path, body: str, needle: str) -> None:
    model = tmp_path / "exits.py"
    model.write_text(body)
    out = tmp_path / "o"
    result = cli("render", "-m", f"{model}:build", "-i", str(CAT), "-o", str(out))
    _one_error_line(result, needle, "called sys.exit(", "__main__")
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("saved", ["module", "training-checkpoint"])
def test_convert_hint_runs_in_the_shell_as_printed(cli, tmp_path: Path, saved: str) -> None:
    """The one-liner works on a whole pickled module and on an ordinary training
    checkpoint ({"model": state dict, "epoch": ..., "args": Namespace}); it called
    .state_dict() on the dict."""
    import argparse

    import torch

    from tests.models.known import tiny_vit

    folder = tmp_path / 'it\'s a "dir" $HOME `x`'
    folder.mkdir()
    pickled = folder / "whole model.pth"
    if saved == "module":
        torch.save(tiny_vit(), pickled)  # a whole module: needs unpickling code
    else:
        arguments = argparse.Namespace(lr=0.1)  # needs unpickling code too
        torch.save({"model": tiny_vit().state_dict(), "epoch": 3, "args": arguments}, pickled)
    result = cli("render", "-m", f"{KNOWN}:tiny_vit", "-i", str(CAT), "-o", str(tmp_path / "o"),
                 "--checkpoint", str(pickled))  # fmt: skip
    line = _one_error_line(result, "arbitrary unpickling", "convert it once: ")
    command = line.split("convert it once: ", 1)[1]
    assert command.startswith("python -c ")
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        ["sh", "-c", f"{sys.executable} {command.removeprefix('python ')}"],
        cwd=work, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    state = torch.load(work / "weights.pth", weights_only=True)
    assert set(state) == set(tiny_vit().state_dict())
    ok = cli("render", "-m", f"{KNOWN}:tiny_vit", "-i", str(CAT), "-o", str(tmp_path / "ok"),
             "--checkpoint", str(work / "weights.pth"), "-q")  # fmt: skip
    assert ok.exit_code == 0, ok.stderr


def test_a_checkpoint_with_non_name_keys_is_refused_in_one_line(cli, tmp_path: Path) -> None:
    """{0: tensor} was exit 1 (AttributeError: 'int' object has no attribute ...)."""
    import torch

    odd = tmp_path / "odd.pth"
    torch.save({0: torch.zeros(2)}, odd)
    result = cli("render", "-m", f"{KNOWN}:tiny_vit", "-i", str(CAT), "-o", str(tmp_path / "o"),
                 "--checkpoint", str(odd))  # fmt: skip
    assert result.exit_code == 2, result.stderr
    _one_error_line(result, "is not a state dict (parameter names to tensors)")


def test_a_size_mismatch_reads_as_one_sentence(cli, tmp_path: Path) -> None:
    """torch's "size mismatch ... torch.Size([..])." was followed by "; is it": ".;"."""
    import torch

    from tests.models.known import tiny_vit

    state = tiny_vit().state_dict()
    name = next(iter(state))
    wrong = tmp_path / "wrong.pth"
    torch.save({name: torch.zeros(*(s + 1 for s in state[name].shape))}, wrong)
    result = cli("render", "-m", f"{KNOWN}:tiny_vit", "-i", str(CAT), "-o", str(tmp_path / "o"),
                 "--checkpoint", str(wrong))  # fmt: skip
    line = _one_error_line(result, "does not fit the model: size mismatch", "; is it for this")
    assert ".;" not in line
