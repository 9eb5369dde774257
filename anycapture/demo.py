"""``--model demo``: a tiny ViT (timm architecture) trained here, so offline figures
show something real.

Task: a 64x64 image holds four discs in muted random colours and one near-white
cross, in random places; the model names the patch (8x8 grid of 8-pixel patches)
at the cross's centre, so its class token has to find the cross.  Its label names
are ``r{row}c{col}`` (``--class r3c4``).
``scripts/train_demo.py`` trains it on CPU in minutes (100% held-out accuracy);
the weights ship as safetensors beside this module (package data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEMO_CONFIG", "WEIGHTS", "build_demo", "make_scene"]

WEIGHTS = Path(__file__).resolve().parent / "demo_vit.safetensors"
IMAGE_SIZE = 64
PATCH = 8
GRID = IMAGE_SIZE // PATCH
DEMO_CONFIG: dict[str, Any] = {
    "img_size": IMAGE_SIZE,
    "patch_size": PATCH,
    "embed_dim": 64,
    "depth": 4,
    "num_heads": 4,
    "mlp_ratio": 2.0,
    "num_classes": GRID * GRID,
}


def build_demo(weights: Path | None = WEIGHTS) -> Any:
    """The demo ViT; with its trained weights unless ``weights`` is None."""
    from timm.models.vision_transformer import VisionTransformer

    model = VisionTransformer(**DEMO_CONFIG)
    model.pretrained_cfg = {
        "input_size": (3, IMAGE_SIZE, IMAGE_SIZE),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        # class k is the patch at row k // 8, column k % 8 (timm's field for label names)
        "label_names": tuple(f"r{k // GRID}c{k % GRID}" for k in range(GRID * GRID)),
    }
    if weights is not None:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(weights)))
    return model.eval()


def make_scene(rng: np.random.Generator, size: int = IMAGE_SIZE) -> tuple[np.ndarray, int]:
    """One scene (``size`` x ``size`` x 3 uint8) and the label: the cross's patch."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.full((size, size, 3), 40, dtype=np.float32)
    image += rng.normal(0, 6, image.shape)
    scale = size / IMAGE_SIZE
    radius = 5.0 * scale
    centres: list[tuple[float, float]] = []
    while len(centres) < 5:
        y, x = rng.uniform(radius + 1, size - radius - 1, 2)
        if all((y - cy) ** 2 + (x - cx) ** 2 > (3 * radius) ** 2 for cy, cx in centres):
            centres.append((y, x))
    odd = int(rng.integers(5))
    for i, (cy, cx) in enumerate(centres):
        colour = rng.uniform(60, 190, 3)  # muted discs...
        if i == odd:  # ...and one bright, near-white cross
            colour = rng.uniform(225, 255) * np.ones(3)  # a plus: two bars through the centre
            arm, bar = radius * 1.2, 1.2 * scale
            mask = ((np.abs(yy - cy) <= bar) & (np.abs(xx - cx) <= arm)) | (
                (np.abs(xx - cx) <= bar) & (np.abs(yy - cy) <= arm)
            )
        else:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        image[mask] = colour
    cy, cx = centres[odd]
    patch = int(cy * GRID / size) * GRID + int(cx * GRID / size)
    return np.clip(image, 0, 255).astype(np.uint8), patch
