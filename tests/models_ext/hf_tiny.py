"""Tiny HuggingFace vision models (random weights) saved with their image processors.

Hidden size 32, 2 layers, 2 heads, 32-48 px inputs: each builds and runs in well
under a second on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

SMALL: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "image_size": 32,
    "patch_size": 8,
}
TEXT: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "vocab_size": 99,
}


def _processor(kind: str, size: int = 32) -> Any:
    import transformers as T

    if kind == "squash":  # ViT, DeiT, BEiT, SigLIP style: resize to exactly the input
        return T.ViTImageProcessor(size={"height": size, "width": size})
    if kind == "clip":  # shortest edge, then a centre crop, CLIP's mean/std
        return T.CLIPImageProcessor(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        )
    # DINOv2: shortest edge to a bit more, centre crop, ImageNet mean/std
    return T.BitImageProcessor(
        size={"shortest_edge": size + 8}, crop_size={"height": size, "width": size}
    )


def build(family: str, seed: int = 0) -> tuple[Any, Any]:
    """(model, image processor) of ``family``, random weights seeded."""
    import transformers as T

    torch.manual_seed(seed)
    if family == "vit":
        return T.ViTModel(T.ViTConfig(**SMALL)), _processor("squash")
    if family == "vit_classifier":  # a classification checkpoint: its head must survive
        config = T.ViTConfig(**SMALL, num_labels=3, id2label={0: "cat", 1: "dog", 2: "fox"})
        return T.ViTForImageClassification(config), _processor("squash")
    if family == "deit":
        return T.DeiTModel(T.DeiTConfig(**SMALL)), _processor("squash")
    if family == "beit":
        config = T.BeitConfig(**SMALL, use_relative_position_bias=True)
        return T.BeitModel(config), _processor("squash")
    if family == "dinov2":
        return T.Dinov2Model(T.Dinov2Config(**SMALL)), _processor("dino")
    if family == "dinov2_reg":
        config = T.Dinov2WithRegistersConfig(**SMALL, num_register_tokens=4)
        return T.Dinov2WithRegistersModel(config), _processor("dino")
    if family == "clip":
        config = T.CLIPConfig(text_config=TEXT, vision_config=SMALL)
        return T.CLIPModel(config), _processor("clip")
    if family == "siglip":
        config = T.SiglipConfig(text_config=TEXT, vision_config=SMALL)
        return T.SiglipModel(config), _processor("squash")
    if family == "swin":
        config = T.SwinConfig(
            image_size=32,
            patch_size=2,
            embed_dim=16,
            depths=[1, 1],
            num_heads=[2, 2],
            window_size=4,
        )
        return T.SwinModel(config), _processor("squash")
    raise ValueError(family)


def save(family: str, folder: Path, dtype: torch.dtype | None = None, seed: int = 0) -> Path:
    """Save ``family`` with its processor into ``folder`` (save_pretrained layout)."""
    model, processor = build(family, seed)
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
