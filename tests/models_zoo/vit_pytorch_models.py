"""lucidrains ``vit-pytorch`` and torchvision windowed models, tiny and random, as
``--model tests/models_zoo/vit_pytorch_models.py:NAME`` factories.

Each builds in well under a second and takes a 32x32 image (MaxViT and Swin: 64).
"""

from __future__ import annotations

from typing import Any

INPUT_SIZE: dict[str, int] = {
    "max_vit": 64,
    "swin_t": 64,
    "swin_v2_t": 64,
    "maxvit_t": 224,
    "maxvit": 64,
    "swin": 64,
    "swin_v2": 64,
}


def _seeded() -> Any:
    import torch

    torch.manual_seed(0)
    return torch


def vit() -> Any:
    _seeded()
    from vit_pytorch import ViT

    return ViT(image_size=32, patch_size=8, num_classes=5, dim=32, depth=2, heads=2, mlp_dim=64)


def simple_vit() -> Any:
    _seeded()
    from vit_pytorch import SimpleViT

    return SimpleViT(
        image_size=32, patch_size=8, num_classes=5, dim=32, depth=2, heads=2, mlp_dim=64
    )


def cait() -> Any:
    _seeded()
    from vit_pytorch.cait import CaiT

    return CaiT(
        image_size=32,
        patch_size=8,
        num_classes=5,
        dim=32,
        depth=2,
        cls_depth=1,
        heads=2,
        mlp_dim=64,
        dim_head=16,
    )


def deep_vit() -> Any:
    _seeded()
    from vit_pytorch.deepvit import DeepViT

    return DeepViT(image_size=32, patch_size=8, num_classes=5, dim=32, depth=2, heads=2, mlp_dim=64)


def cross_vit() -> Any:
    _seeded()
    from vit_pytorch.cross_vit import CrossViT

    return CrossViT(
        image_size=32,
        num_classes=5,
        sm_dim=32,
        lg_dim=32,
        sm_patch_size=8,
        sm_enc_heads=2,
        sm_enc_mlp_dim=32,
        sm_enc_dim_head=16,
        lg_patch_size=16,
        lg_enc_depth=1,
        lg_enc_heads=2,
        lg_enc_mlp_dim=32,
        lg_enc_dim_head=16,
        cross_attn_depth=1,
        cross_attn_heads=2,
        cross_attn_dim_head=16,
        depth=1,
    )


def t2t_vit() -> Any:
    _seeded()
    from vit_pytorch.t2t import T2TViT

    return T2TViT(
        image_size=32,
        num_classes=5,
        dim=32,
        depth=1,
        heads=2,
        mlp_dim=32,
        dim_head=16,
        t2t_layers=((7, 4), (3, 2)),
    )


def cvt() -> Any:
    _seeded()
    from vit_pytorch.cvt import CvT

    return CvT(
        num_classes=5,
        s1_emb_dim=16,
        s2_emb_dim=32,
        s2_heads=2,
        s2_depth=1,
        s3_emb_dim=32,
        s3_heads=2,
        s3_depth=1,
    )


def levit() -> Any:
    _seeded()
    from vit_pytorch.levit import LeViT

    return LeViT(
        image_size=32,
        num_classes=5,
        stages=2,
        dim=(16, 32),
        depth=1,
        heads=(2, 2),
        mlp_mult=2,
        dim_key=8,
        dim_value=8,
    )


def pit() -> Any:
    _seeded()
    from vit_pytorch.pit import PiT

    return PiT(
        image_size=32,
        patch_size=8,
        num_classes=5,
        dim=32,
        depth=(1, 1),
        heads=2,
        mlp_dim=32,
        dim_head=16,
    )


def region_vit() -> Any:
    _seeded()
    from vit_pytorch.regionvit import RegionViT

    return RegionViT(dim=(16, 32, 32, 32), depth=(1, 1, 1, 1), window_size=2, num_classes=5)


def max_vit() -> Any:
    _seeded()
    from vit_pytorch.max_vit import MaxViT

    return MaxViT(num_classes=5, dim=16, depth=(1, 1), dim_head=8, window_size=4, dropout=0.0)


def na_vit() -> Any:
    """NaViT takes lists of images: wrapped to take a batch tensor."""
    torch = _seeded()
    from vit_pytorch.na_vit import NaViT

    class BatchNaViT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.navit = NaViT(
                image_size=32,
                patch_size=8,
                num_classes=5,
                dim=32,
                depth=2,
                heads=2,
                mlp_dim=64,
                dim_head=16,
            )

        def forward(self, x: Any) -> Any:
            return self.navit([[image] for image in x])

    return BatchNaViT()


def swin_t() -> Any:
    _seeded()
    from torchvision.models import swin_t

    return swin_t(weights=None)


def swin_v2_t() -> Any:
    _seeded()
    from torchvision.models import swin_v2_t

    return swin_v2_t(weights=None)


def maxvit_t() -> Any:
    _seeded()
    from torchvision.models import maxvit_t

    return maxvit_t(weights=None)


def swin(v2: bool = False) -> Any:
    """torchvision's SwinTransformer (swin_t's classes), 64 px, two stages, 4x4 windows."""
    _seeded()
    from torchvision.models import swin_transformer as S

    block = S.SwinTransformerBlockV2 if v2 else S.SwinTransformerBlock
    merging = S.PatchMergingV2 if v2 else S.PatchMerging
    return S.SwinTransformer(
        patch_size=[4, 4],
        embed_dim=16,
        depths=[2, 1],
        num_heads=[1, 2],
        window_size=[4, 4],
        stochastic_depth_prob=0.0,
        block=block,
        downsample_layer=merging,
    )


def swin_v2() -> Any:
    return swin(v2=True)


def maxvit() -> Any:
    """torchvision's MaxVit (maxvit_t's classes), 64 px, 4x4 partitions, two stages."""
    _seeded()
    from torchvision.models.maxvit import MaxVit

    return MaxVit(
        input_size=(64, 64),
        stem_channels=16,
        partition_size=4,
        block_channels=[16, 32],
        block_layers=[1, 1],
        head_dim=8,
        stochastic_depth_prob=0.0,
    )


VIT_PYTORCH = (
    "vit",
    "simple_vit",
    "cait",
    "deep_vit",
    "cross_vit",
    "t2t_vit",
    "cvt",
    "levit",
    "pit",
    "region_vit",
    "max_vit",
    "na_vit",
)
TORCHVISION = ("swin_t", "swin_v2_t", "maxvit_t", "swin", "swin_v2", "maxvit")
