"""AttentionRecorder picks the new sources: HF eager locals, MultiheadAttention weights
computed beside the call, scaled_dot_product_attention as the fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from anycapture.attention import AttentionRecorder, layout_of
from anycapture.errors import UsageError
from anycapture.loading import load_model
from anycapture.preprocess import Preprocessor
from tests.with_torch.test_candidates import Normalised, Scores
from tests.with_torch.test_sdpa import TARGET, Net

from .conftest import CAT
from .hf_tiny import save


def _record(model, x):
    recorder = AttentionRecorder(model)
    with torch.inference_mode():
        plain = model(x)
        with recorder.recording():
            captured = model(x)
    return recorder, plain, captured, recorder.take()


def test_sdpa_only_model_falls_back_to_the_sdpa_source() -> None:
    torch.manual_seed(0)
    model = Net().eval()
    recorder, plain, captured, maps = _record(model, torch.randn(2, 6, 8))
    assert recorder.kind == "sdpa" and torch.equal(plain, captured)
    assert list(maps) == ["blocks.0", "blocks.1", "tail"]
    assert np.all(maps["blocks.0"][..., TARGET] == 1.0)


def test_hf_eager_model_uses_its_attn_weights(tmp_path: Path) -> None:
    from PIL import Image

    loaded = load_model(str(save("dinov2_reg", tmp_path / "d")))
    model = loaded.module
    pre = Preprocessor.for_model(model, image_processor=loaded.image_processor)
    x = pre.tensor([pre.view(Image.open(CAT).convert("RGB"))])
    recorder, plain, captured, maps = _record(model, x)
    assert recorder.kind == "auto"
    assert list(maps) == [f"encoder.layer.{i}.attention" for i in range(2)]
    assert torch.equal(plain.last_hidden_state, captured.last_hidden_state)
    with torch.inference_mode():
        reference = model(x, output_attentions=True).attentions
    for got, expected in zip(maps.values(), reference, strict=True):
        assert np.abs(got - expected.numpy()).max() <= 1e-5
    layout = layout_of(model, pre.input_hw, maps["encoder.layer.1.attention"].shape[-1])
    assert layout.prefix_names == ("cls", "reg0", "reg1", "reg2", "reg3")


def test_multihead_attention_outputs_untouched() -> None:
    torch.manual_seed(0)
    model = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2, enable_nested_tensor=False
    ).eval()
    _, plain, captured, maps = _record(model, torch.randn(2, 5, 16))
    assert torch.equal(plain, captured)
    assert list(maps) == ["layers.0.self_attn", "layers.1.self_attn"]
    assert maps["layers.0.self_attn"].shape == (2, 2, 5, 5)


def test_no_attention_names_the_candidates() -> None:
    """Weights made without a softmax call: nothing finds them, the working candidate
    is named."""
    model = torch.nn.Sequential(Normalised())
    recorder = AttentionRecorder(model)
    with torch.inference_mode(), recorder.recording():
        model(torch.randn(1, 3, 4))
    with pytest.raises(UsageError, match=r"--capture 'tests\.with_torch\.test_candidates:"):
        recorder.take()


def test_softmax_applied_to_values_is_found_without_capture() -> None:
    """``probs = softmax(scores); probs @ x`` (was "no attention found"): the softmax
    source records ``probs``, named after its module."""
    model = torch.nn.Sequential(Scores())
    x = torch.randn(1, 3, 4)
    recorder = AttentionRecorder(model)
    with torch.inference_mode(), recorder.recording():
        model(x)
    maps = recorder.take()
    assert recorder.kind == "softmax" and list(maps) == ["0"]
    expected = (x @ x.transpose(-2, -1)).softmax(-1).numpy()
    assert np.array_equal(maps["0"], expected[:, None])


def test_notebook_restores_each_modules_training_flag() -> None:
    import anycapture

    from .factories import sdpa_vit

    model = sdpa_vit().train()
    model.blocks[0].eval()  # a mixed state must come back as it was
    before = [m.training for m in model.modules()]
    result = anycapture.attention_maps(model, CAT, resize="squash")
    assert [m.training for m in model.modules()] == before
    assert list(result.layers) == ["blocks.0.attn", "blocks.1.attn"]
    assert result.layout.prefix_tokens == 1 and result.layout.grid == (
        28,
        28,
    )  # 224 px, 8 px patches


def test_notebook_two_tower_module_and_hf_directory(tmp_path: Path) -> None:
    import anycapture

    pytest.importorskip("open_clip")
    from .factories import tiny_open_clip

    result = anycapture.attention_maps(tiny_open_clip(), CAT)
    assert list(result.layers) == ["transformer.resblocks.0.attn", "transformer.resblocks.1.attn"]
    folder = save("dinov2_reg", tmp_path / "d")
    result = anycapture.attention_maps(str(folder), CAT)
    assert result.layout.prefix_names == ("cls", "reg0", "reg1", "reg2", "reg3")
    assert result.view.size == (32, 32)


def test_hf_sdpa_model_with_a_multihead_head(tmp_path: Path) -> None:
    """SigLIP in its default sdpa attention: encoder maps from the SDPA source, the
    pooling head's from its nn.MultiheadAttention, in module order; all against eager."""
    from PIL import Image
    from transformers import AutoModel

    folder = save("siglip", tmp_path / "s")
    eager = load_model(str(folder))
    pre = Preprocessor.for_model(eager.module, image_processor=eager.image_processor)
    x = pre.tensor([pre.view(Image.open(CAT).convert("RGB"))])
    sdpa = AutoModel.from_pretrained(folder, attn_implementation="sdpa").vision_model.eval()
    _, plain, captured, maps = _record(sdpa, x)
    assert torch.equal(plain.pooler_output, captured.pooler_output)
    assert list(maps) == [
        "encoder.layers.0.self_attn",
        "encoder.layers.1.self_attn",
        "head.attention",
    ]
    _, _, _, expected = _record(eager.module, x)
    assert list(expected) == list(maps)
    for name, got in maps.items():
        assert np.abs(got - expected[name]).max() <= 1e-5
