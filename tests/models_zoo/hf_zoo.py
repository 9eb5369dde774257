"""Tiny Hugging Face vision families (random weights) for the zoo matrix, each with
its own image processor, saved with ``save_pretrained``.

Hidden sizes 16-32, one or two layers per stage, 32-64 px inputs: each builds and
runs in about a second on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tests.models_ext.hf_tiny import SMALL, TEXT

# the tiny ViT and text sizes the HF tests use (models_ext/hf_tiny.py)
VIT_LIKE: dict[str, Any] = SMALL
SWIN_LIKE: dict[str, Any] = {
    "image_size": 32,
    "patch_size": 2,
    "embed_dim": 16,
    "depths": [1, 1],
    "num_heads": [2, 2],
    "window_size": 4,
}
HIERARCHICAL: dict[str, Any] = {  # PVT, SegFormer-style encoders (GLPN)
    "num_encoder_blocks": 2,
    "depths": [1, 1],
    "sr_ratios": [2, 1],
    "hidden_sizes": [16, 32],
    "patch_sizes": [7, 3],
    "strides": [4, 2],
    "num_attention_heads": [1, 2],
    "mlp_ratios": [2, 2],
}


def _squash(size: int | tuple[int, int] = 32) -> Any:
    import transformers as T

    height, width = (size, size) if isinstance(size, int) else size
    return T.ViTImageProcessor(size={"height": height, "width": width})


def _builders() -> dict[str, Any]:
    import transformers as T

    def levit() -> tuple[Any, Any]:
        config = T.LevitConfig(
            image_size=64,
            patch_size=16,
            hidden_sizes=[16, 32],
            num_attention_heads=[1, 2],
            depths=[1, 1],
            key_dim=[8, 8],
            mlp_ratio=[2, 2],
            attention_ratio=[2, 2],
            down_ops=[["Subsample", 8, 16 // 8, 4, 2, 2]],
        )
        return T.LevitModel(config), T.LevitImageProcessor(
            size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}
        )

    return {
        "data2vec_vision": lambda: (
            T.Data2VecVisionModel(T.Data2VecVisionConfig(**VIT_LIKE)),
            _squash(),
        ),
        "dpt": lambda: (
            T.DPTModel(
                T.DPTConfig(**VIT_LIKE, backbone_out_indices=[0, 1], neck_hidden_sizes=[16, 32])
            ),
            T.DPTImageProcessor(size={"height": 32, "width": 32}),
        ),
        "yolos": lambda: (
            T.YolosModel(
                T.YolosConfig(**{**VIT_LIKE, "image_size": [32, 48]}, num_detection_tokens=3)
            ),
            T.YolosImageProcessor(size={"shortest_edge": 32, "longest_edge": 48}),
        ),
        "swinv2": lambda: (T.Swinv2Model(T.Swinv2Config(**SWIN_LIKE)), _squash()),
        "donut_swin": lambda: (T.DonutSwinModel(T.DonutSwinConfig(**SWIN_LIKE)), _squash()),
        "pvt": lambda: (
            T.PvtModel(
                T.PvtConfig(
                    image_size=32,
                    num_encoder_blocks=2,
                    depths=[1, 1],
                    sequence_reduction_ratios=[2, 1],
                    hidden_sizes=[16, 32],
                    patch_sizes=[4, 2],
                    strides=[4, 2],
                    num_attention_heads=[1, 2],
                    mlp_ratios=[2, 2],
                )
            ),
            _squash(),
        ),
        "pvt_v2": lambda: (T.PvtV2Model(T.PvtV2Config(**HIERARCHICAL)), _squash()),
        "levit": levit,
        "hiera": lambda: (
            T.HieraModel(
                T.HieraConfig(
                    image_size=[64, 64],
                    embed_dim=16,
                    depths=[1, 1],
                    num_heads=[1, 2],
                    patch_size=[7, 7],
                    patch_stride=[4, 4],
                    patch_padding=[3, 3],
                    masked_unit_size=[4, 4],
                    query_stride=[2, 2],
                    embed_dim_multiplier=2.0,
                    num_query_pool=1,
                )
            ),
            _squash(64),
        ),
        "mobilevit": lambda: (
            T.MobileViTModel(
                T.MobileViTConfig(
                    image_size=64,
                    hidden_sizes=[16, 16, 16],
                    neck_hidden_sizes=[8, 8, 8, 16, 16, 16, 32],
                    num_attention_heads=2,
                )
            ),
            T.MobileViTImageProcessor(
                size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}
            ),
        ),
        "mobilevitv2": lambda: (
            T.MobileViTV2Model(T.MobileViTV2Config(image_size=64, width_multiplier=0.25)),
            T.MobileViTImageProcessor(
                size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}
            ),
        ),
        "blip": lambda: (
            T.BlipVisionModel(T.BlipVisionConfig(**VIT_LIKE)),
            T.BlipImageProcessor(size={"height": 32, "width": 32}),
        ),
        "glpn": lambda: (
            T.GLPNModel(T.GLPNConfig(**HIERARCHICAL, decoder_hidden_size=16)),
            T.GLPNImageProcessor(size_divisor=32),
        ),
        "owlv2": lambda: (
            T.Owlv2Model(T.Owlv2Config(text_config=TEXT, vision_config=VIT_LIKE)),
            T.Owlv2ImageProcessor(size={"height": 32, "width": 32}),
        ),
        "siglip2": lambda: (
            T.Siglip2Model(
                T.Siglip2Config(
                    text_config=TEXT,
                    vision_config={**VIT_LIKE, "num_patches": 16},
                )
            ),
            T.Siglip2ImageProcessor(patch_size=8, max_num_patches=16),
        ),
        "videomae": lambda: (
            T.VideoMAEModel(T.VideoMAEConfig(**VIT_LIKE, num_frames=2, tubelet_size=2)),
            T.VideoMAEImageProcessor(
                size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
            ),
        ),
        "xclip": lambda: (
            T.XCLIPModel(
                T.XCLIPConfig(
                    text_config=TEXT,
                    vision_config={**VIT_LIKE, "num_frames": 2, "mit_hidden_size": 32},
                    projection_dim=32,
                    prompt_layers=1,
                )
            ),
            T.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        ),
    }


HF_FAMILIES = (
    "data2vec_vision",
    "dpt",
    "yolos",
    "swinv2",
    "donut_swin",
    "pvt",
    "pvt_v2",
    "levit",
    "hiera",
    "mobilevit",
    "mobilevitv2",
    "blip",
    "glpn",
    "owlv2",
    "siglip2",
    "videomae",
    "xclip",
)


def build(family: str, seed: int = 0) -> tuple[Any, Any]:
    """(model, image processor) of ``family``, random weights seeded."""
    torch.manual_seed(seed)
    return _builders()[family]()


def save(family: str, folder: Path, seed: int = 0) -> Path:
    """Save ``family`` with its processor into ``folder`` (save_pretrained layout)."""
    model, processor = build(family, seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
