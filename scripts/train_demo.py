"""Train the ``--model demo`` ViT on CPU (a few minutes) and write its weights.

    python scripts/train_demo.py [--steps 1200] [--out anycapture/demo_vit.safetensors]

Deterministic (fixed seeds). Also writes a few example scenes to assets/demo/.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from anycapture.demo import WEIGHTS, build_demo, make_scene

REPO = Path(__file__).resolve().parents[1]


def batch(rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    scenes = [make_scene(rng) for _ in range(size)]
    images = np.stack([s for s, _ in scenes]).astype(np.float32) / 255.0
    x = torch.from_numpy((images - 0.5) / 0.5).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor([label for _, label in scenes])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_demo(weights=None).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, 2e-3, total_steps=args.steps, pct_start=0.05
    )
    start = time.time()
    for step in range(1, args.steps + 1):
        x, y = batch(rng, args.batch)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 250 == 0:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - start:.0f} s)", flush=True)
    model.eval()
    test_rng = np.random.default_rng(1)
    with torch.inference_mode():
        x, y = batch(test_rng, 1000)
        accuracy = (model(x).argmax(-1) == y).float().mean().item()
        near = ((model(x).argmax(-1) - y).abs() <= 1).float().mean().item()
    print(f"held-out accuracy: exact patch {accuracy:.3f}, within one column {near:.3f}")
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(
        state, str(args.out), metadata={"accuracy": f"{accuracy:.3f}", "steps": str(args.steps)}
    )
    examples = REPO / "assets" / "demo"
    examples.mkdir(parents=True, exist_ok=True)
    example_rng = np.random.default_rng(7)
    for i in range(3):
        scene, _ = make_scene(example_rng)
        Image.fromarray(scene).resize((256, 256), Image.Resampling.NEAREST).save(
            examples / f"scene{i}.png"
        )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {examples}/scene*.png")


if __name__ == "__main__":
    main()
