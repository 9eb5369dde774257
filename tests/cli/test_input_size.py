"""A model that refuses the input size is a usage error naming --img-size (exit 2),
not a raw exit-1 crash; other failures inside the model stay exit 1."""

from __future__ import annotations

from pathlib import Path

from .conftest import CAT


def test_wrong_input_size_names_img_size(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("render", "-m", "demo", "--img-size", "60,60", "-i", str(CAT), "-o", str(tmp_path))
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "60x60 input" in line and "--img-size H,W" in line
    assert "doesn't match model (64)" in line
