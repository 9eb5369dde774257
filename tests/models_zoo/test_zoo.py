"""The model-zoo matrix (``zoo.py``): every family gives the result the docs' models
table claims for it (``scripts/zoo_table.py`` writes that table)."""

from __future__ import annotations

import numpy as np
import pytest

from .zoo import EXACT, FAMILIES, Family, run

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f"{f.library}-{f.key}")
def test_family(family: Family) -> None:
    result = run(family)
    assert result.status == family.expected, result.note
    if result.status == "exact":
        assert result.max_diff is not None and result.max_diff <= EXACT
        assert result.layers >= 1
    if result.status == "refused":
        assert "\n" not in result.note and "Traceback" not in result.note


@pytest.mark.parametrize("name", ["swin_t", "swin_v2_t", "maxvit_t"])
def test_torchvision_windowed_models_found_exactly(name: str) -> None:
    """The real builders (random init): every block's window attention, in
    ``shifted_window_attention`` or MaxViT's partitions, equals its softmax output."""
    import torch

    from anycapture.attention import AttentionRecorder

    from . import vit_pytorch_models as models
    from .zoo import _max_diff, _softmax_recorded

    model = getattr(models, name)().eval()
    size = models.INPUT_SIZE[name]
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        plain = model(x)
        with _softmax_recorded() as reference:
            model(x)
        recorder = AttentionRecorder(model)
        with recorder.recording():
            captured = model(x)
        maps = recorder.take()
    assert torch.equal(plain, captured)
    blocks = 12 if name.startswith("swin") else 22  # maxvit_t: block and grid per layer
    assert len(maps) == blocks and len(reference) == blocks
    assert _max_diff(list(maps.values()), reference) == 0.0
    assert all(np.ndim(m) == 4 for m in maps.values())


def test_cli_renders_a_vit_pytorch_model(tmp_path) -> None:
    """``anycapture render --model file.py:factory``: a vit-pytorch ViT, found by the
    softmax source, drawn with every default figure, manifest saying so."""
    import json
    import subprocess
    import sys

    from .zoo import CAT, FACTORIES, HERE

    out = tmp_path / "out"
    command = [sys.executable, "-m", "anycapture", "render", "--model", f"{FACTORIES}:vit"]
    command += ["--image", str(CAT), "--out", str(out), "--img-size", "32,32", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parents[1])
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["capture"] == "softmax"  # the source that found it
    assert len(list(out.rglob("*.png"))) >= 3
