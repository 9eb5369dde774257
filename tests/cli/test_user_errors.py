"""A crash inside the user's own model names the user's frame (file:line, function)
and the input's shape in the one error line, so no --debug rerun (another model
load) is needed to find it."""

from __future__ import annotations

from pathlib import Path

from .conftest import CAT

BROKEN = """
import torch
from torch import nn


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.pretrained_cfg = {"input_size": (3, 32, 32), "mean": (0.5,) * 3,
                               "std": (0.5,) * 3, "crop_pct": 1.0, "interpolation": "bilinear"}

    def forward(self, x):
        a, b = x.shape[:3]
        return x


def build():
    return Broken()
"""


def test_a_crash_in_the_users_model_names_its_frame_and_the_input(cli, tmp_path: Path) -> None:
    model = tmp_path / "broken_model.py"
    model.write_text(BROKEN)
    result = cli("render", "-m", f"{model}:build", "-i", str(CAT), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "ValueError: too many values to unpack" in line
    assert f"in {model}:14, in forward" in line
    assert "the model's input: (1, 3, 32, 32)" in line


def test_a_python_file_without_its_factory_says_which_callables_it_defines(
    cli, tmp_path: Path
) -> None:
    """--model good_model.py (forgot :factory) said "unknown model" after loading timm;
    as an absolute path, "no such file or directory" though it exists."""
    model = tmp_path / "good_model.py"
    model.write_text(BROKEN)
    result = cli("render", "-m", str(model), "-i", str(CAT), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert f"--model {model} is a Python file" in line and f"{model}:build" in line
    assert "it defines Broken, build" in line and "\n" not in line
    missing = tmp_path / "missing.py"
    result = cli("render", "-m", str(missing), "-i", str(CAT), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2 and "no such Python file" in result.stderr


def test_control_characters_in_file_names_are_escaped_on_the_terminal(cli, tmp_path: Path) -> None:
    """A file name holding an escape sequence and a newline was printed raw: it could
    drive the terminal and break the one line per skipped input."""
    import shutil

    good = tmp_path / "good.png"
    shutil.copy(CAT.parent / "demo" / "scene0.png", good)
    bad = tmp_path / "evil\x1b[31m\nname.png"
    bad.write_bytes(b"not an image")
    result = cli("render", "-m", "demo", "-i", str(good), "-i", str(bad), "-o", str(tmp_path / "o"))
    assert result.exit_code == 3, result.stderr
    assert "\x1b" not in result.stderr
    skipped = [line for line in result.stderr.splitlines() if "skipped:" in line]
    assert len(skipped) == 1 and "evil\\x1b[31m\\nname.png" in skipped[0]


def test_a_model_that_calls_sys_exit_in_forward_is_exit_1_with_a_line(cli, tmp_path: Path) -> None:
    """SystemExit(5) from forward made the CLI exit 5 with nothing on stderr."""
    model = tmp_path / "exiting.py"
    model.write_text(BROKEN.replace("a, b = x.shape[:3]", "raise SystemExit(5)"))
    result = cli("render", "-m", f"{model}:build", "-i", str(CAT), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "forward called sys.exit(5)" in result.stderr and result.stderr.count("\n") == 1
