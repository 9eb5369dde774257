"""The notebook API: maps with their layout in one call, figures as matplotlib objects."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

REPO = Path(__file__).resolve().parents[2]
CAT = REPO / "assets" / "cat.jpg"


def test_import_stays_light() -> None:
    import subprocess

    code = "import anycapture, sys; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_attention_maps_and_figures() -> None:
    import anycapture
    from tests.models.known import GRID, TARGET, build

    result = anycapture.attention_maps(build(), CAT)
    assert list(result.layers) == ["blocks.0", "blocks.1"]
    assert result.layout.grid == GRID and result.layout.prefix_tokens == 1
    assert result[-1].shape == (2, 16, 16)
    assert result.view.size == (GRID[1] * 16, GRID[0] * 16)
    token = 1 + TARGET[0] * GRID[1] + TARGET[1]
    assert np.all(result["blocks.1"][:, :, token] == 1.0)
    from matplotlib.figure import Figure

    for kind in ("head", "heads", "grid", "cls", "rollout", "layers"):
        fig = anycapture.figure(kind, result, head=None if kind == "layers" else 0)
        assert isinstance(fig, Figure) and fig.axes
    with pytest.raises(ValueError, match="unknown figure kind"):
        anycapture.figure("pie", result)


def test_attention_maps_from_a_name() -> None:
    import anycapture

    result = anycapture.attention_maps("vit_tiny", CAT, pretrained=False)
    assert result.model == "vit_tiny" and len(result.layers) == 12
    assert result.layout.grid == (14, 14)
