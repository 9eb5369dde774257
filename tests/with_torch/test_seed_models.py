"""Seed users' models (``@get_local`` in the model's own code) through the CLI and the
notebook API, with get_local active or not, activated before or after the import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

REPO = Path(__file__).resolve().parents[2]
CAT = REPO / "assets" / "cat.jpg"
SEED_VIT = REPO / "tests" / "models" / "seed_vit.py"

NOTEBOOK = """
import sys
import numpy as np
import torch
from anycapture import get_local

mode = sys.argv[1]
if mode == "before":
    get_local.activate(max_calls=50)
sys.path.insert(0, {models!r})
import seed_vit
if mode == "after":
    get_local.activate(max_calls=50)
model = seed_vit.build()
user_values = []
if mode != "never":
    model(torch.rand(1, 3, 32, 32))  # the user's own forward, recorded by get_local
    user_values = [v.copy() for v in get_local.cache["Attention.forward"]]

reference = []  # the model's own attention, through plain torch hooks
handles = [b.attn.attn_drop.register_forward_hook(
    lambda m, i, o: reference.append(o.detach().numpy().copy())) for b in model.blocks]
import anycapture
result = anycapture.attention_maps(model, {cat!r})
for h in handles:
    h.remove()

assert list(result.layers) == ["blocks.0.attn", "blocks.1.attn", "blocks.2.attn"]
for ours, theirs in zip(result.layers.values(), reference, strict=True):
    assert np.array_equal(ours, theirs[0]), np.abs(ours - theirs[0]).max()
assert get_local.is_active == (mode != "never")
cache = get_local.cache["Attention.forward.attn"]
if mode == "never":
    assert len(get_local.cache) == 0 and len(cache) == 0
else:
    assert get_local.policy.max_calls == 50
    assert len(cache) == 6  # the user's three, then the render's three: nothing removed
    assert all(np.array_equal(a, b) for a, b in zip(cache, user_values))
    assert all(np.array_equal(a[None], b) for a, b in zip(result.layers.values(), list(cache)[3:]))
print("ok")
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["never", "before", "after"])
def test_notebook_api_on_get_local_model(mode: str) -> None:
    code = NOTEBOOK.format(models=str(SEED_VIT.parent), cat=str(CAT))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), mode], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_a_render_instruments_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The render enters its capture every forward pass; the code is made once."""
    import timm
    import torch

    from anycapture import recorder
    from anycapture.attention import AttentionRecorder

    calls: list[object] = []
    real = recorder.instrument_code
    monkeypatch.setattr(recorder, "instrument_code", lambda *a: calls.append(a) or real(*a))
    model = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=2, num_classes=0)
    attention = AttentionRecorder(model.eval())
    for _ in range(4):
        with torch.inference_mode(), attention.recording():
            model(torch.rand(1, 3, 32, 32))
        assert list(attention.take()) == ["blocks.0.attn", "blocks.1.attn"]
    assert len(calls) <= 1  # none if an earlier test already instrumented Attention.forward
    assert all(block.attn.fused_attn for block in model.blocks)  # restored
