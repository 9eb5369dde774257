"""HuggingFace vision models: maps against the model's own ``output_attentions=True``
(eager) on the image its own processor prepared; outputs bit-identical with capture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anycapture.hf import attention_sites, layout_from_config
from anycapture.loading import ModelLoadError, load_model
from anycapture.preprocess import Preprocessor
from anycapture.scoped_capture import Capture
from anycapture.sources.sdpa import SdpaSource

from .conftest import CAT
from .hf_tiny import save

FAMILIES = {
    # family: (class loaded, prefix names, two-tower note expected)
    "vit": ("ViTModel", ("cls",), False),
    "deit": ("DeiTModel", ("cls", "dist"), False),
    "beit": ("BeitModel", ("cls",), False),
    "dinov2": ("Dinov2Model", ("cls",), False),
    "dinov2_reg": ("Dinov2WithRegistersModel", ("cls", "reg0", "reg1", "reg2", "reg3"), False),
    "clip": ("CLIPVisionModel", ("cls",), True),
    "siglip": ("SiglipVisionModel", (), True),
    "swin": ("SwinModel", None, False),
}


def _load(family: str, tmp_path: Path, dtype: torch.dtype | None = None):
    folder = save(family, tmp_path / family, dtype)
    loaded = load_model(str(folder))
    pre = Preprocessor.for_model(loaded.module, image_processor=loaded.image_processor)
    return loaded, pre


def _capture(model, x):
    sites = attention_sites(model)
    names = {id(module): name for name, module, _, _ in sites}
    with Capture(list(dict.fromkeys(f for _, _, f, _ in sites)), ["attn_weights"]) as cap:
        out = model(x)
    return out, [values[0] for values in cap.by_instance(names).values()]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_maps_equal_output_attentions(family: str, tmp_path: Path) -> None:
    loaded, pre = _load(family, tmp_path)
    cls_name, prefix, two_tower = FAMILIES[family]
    model = loaded.module
    assert type(model).__name__ == cls_name and not model.training
    assert model.config._attn_implementation == "eager"
    assert any("two-tower" in n for n in loaded.notes) == two_tower
    image = Image.open(CAT).convert("RGB")
    x = pre.tensor([pre.view(image)])
    # the processor's own pixel_values, bit for bit (view + tensor = the processor)
    assert torch.equal(x, loaded.image_processor(images=image, return_tensors="pt")["pixel_values"])
    with torch.inference_mode():
        reference = model(x, output_attentions=True)
        plain = model(x).last_hidden_state
        captured, maps = _capture(model, x)
    assert torch.equal(plain, captured.last_hidden_state)
    assert len(maps) == len(reference.attentions) == len(attention_sites(model))
    for got, expected in zip(maps, reference.attentions, strict=True):
        assert np.abs(np.asarray(got) - expected.numpy()).max() <= 1e-5
    layout = layout_from_config(model, pre.input_hw)
    if prefix is None:  # windowed (Swin): no image-wide layout
        assert layout is None
    else:
        assert layout.prefix_names == prefix and layout.num_tokens == maps[-1].shape[-1]
    assert pre.describe()["source"].startswith("image processor")


@pytest.mark.parametrize("family", ["vit", "dinov2_reg", "clip"])
def test_sdpa_source_on_sdpa_attention_matches_eager(family: str, tmp_path: Path) -> None:
    """The model's default (sdpa) attention, maps from the SDPA source, against eager."""
    from transformers import AutoModel

    loaded, pre = _load(family, tmp_path)
    x = pre.tensor([pre.view(Image.open(CAT).convert("RGB"))])
    sdpa = AutoModel.from_pretrained(tmp_path / family, attn_implementation="sdpa").eval()
    sdpa = getattr(sdpa, "vision_model", sdpa)
    with torch.inference_mode():
        reference = loaded.module(x, output_attentions=True).attentions
        plain = sdpa(x).last_hidden_state
        with SdpaSource(sdpa) as source:
            captured = sdpa(x).last_hidden_state
    assert torch.equal(plain, captured)
    records = source.take()
    assert len(records) == len(reference)
    for (name, got), expected in zip(records, reference, strict=True):
        assert name.endswith("attention") or name.endswith("self_attn")
        assert np.abs(got - expected.numpy()).max() <= 1e-5


def test_bf16_model_follows_its_dtype(tmp_path: Path) -> None:
    loaded, pre = _load("vit", tmp_path, torch.bfloat16)
    assert next(loaded.module.parameters()).dtype == torch.bfloat16
    x = pre.tensor([pre.view(Image.open(CAT).convert("RGB"))])
    assert x.dtype == torch.bfloat16 and pre.describe()["dtype"] == "bfloat16"
    with torch.inference_mode():
        plain = loaded.module(x).last_hidden_state
        captured, maps = _capture(loaded.module, x)
    assert torch.equal(plain, captured.last_hidden_state)
    assert all(np.asarray(m).dtype == np.float32 for m in maps)


def test_dtype_option_casts(tmp_path: Path) -> None:
    folder = save("vit", tmp_path / "vit")
    loaded = load_model(str(folder), dtype="bfloat16")
    assert next(loaded.module.parameters()).dtype == torch.bfloat16
    with pytest.raises(ModelLoadError, match="--dtype"):
        load_model(str(folder), dtype="int8")


def test_no_pretrained_is_seeded_random(tmp_path: Path) -> None:
    folder = save("vit", tmp_path / "vit", seed=1)
    first = load_model(str(folder), pretrained=False).module
    second = load_model(str(folder), pretrained=False).module
    weights = load_model(str(folder)).module
    a, b, c = (next(m.parameters()) for m in (first, second, weights))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_config_without_weights_notes_random(tmp_path: Path) -> None:
    folder = save("vit", tmp_path / "vit")
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    loaded = load_model(str(folder))
    assert not loaded.pretrained and any("no weights" in n for n in loaded.notes)


def test_hub_name_not_cached_offline_is_a_usage_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(ModelLoadError, match="not in the local HuggingFace cache"):
        load_model("transformers:nobody/tiny-vit")


def test_missing_transformers_names_the_extra(monkeypatch, tmp_path: Path) -> None:
    import sys

    folder = save("vit", tmp_path / "vit")
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails
    with pytest.raises(ModelLoadError, match=r"anycapture\[transformers\]"):
        load_model(str(folder))


def test_hub_name_found_in_the_local_cache(tmp_path: Path, monkeypatch) -> None:
    """``transformers:ORG/NAME`` loads from the HF cache offline (cache layout made here)."""
    cache = tmp_path / "hub"
    repo = cache / "models--nobody--tiny-vit"
    save("clip", repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    loaded = load_model("transformers:nobody/tiny-vit")
    assert loaded.name == "nobody/tiny-vit" and loaded.source == "transformers"
    assert loaded.pretrained and type(loaded.module).__name__ == "CLIPVisionModel"
    assert loaded.image_processor is not None


def test_video_model_is_refused_in_one_line(tmp_path: Path) -> None:
    """VideoMAE takes clips of frames: one line saying so (it was "axes don't match
    array" from the image processor)."""
    import transformers as T

    config = T.VideoMAEConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        image_size=32,
        patch_size=8,
        num_frames=2,
        tubelet_size=2,
    )
    T.VideoMAEModel(config).save_pretrained(tmp_path / "videomae")
    with pytest.raises(ModelLoadError, match="video model") as info:
        load_model(str(tmp_path / "videomae"))
    assert "\n" not in str(info.value)
