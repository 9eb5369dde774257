"""Benchmark 5: each capture source's cost per forward, beside the libraries' own ways.

timm vit_small: the local ``attn`` with fused attention switched off, the SDPA
source with fused attention kept, timm's ``AttentionExtract``.  A small CLIP
image tower (HuggingFace ``CLIPVisionModel``, ViT-B/32 shape): the local
``attn_weights`` under eager attention, the SDPA source under the default sdpa
attention, HF's own ``output_attentions=True`` (eager).  Every variant ends with
numpy maps.  torchvision vit_b_16 (``nn.MultiheadAttention``): the weights asked
for with ``need_weights`` hooks against computed beside the call (fast path kept).
Baseline: the plain forward as users run it (fused / sdpa, no maps).
CPU, random init, batch 1 and 8, interleaved rounds, best of rounds.  Timed as
the process's CPU time with torch on one thread: on a machine shared with other
work, wall time measures the neighbours (``--threads N`` to change).

    python bench/sources_overhead.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import report

Variant = Callable[[], Any]


def _forward(model: Any, x: Any, **kwargs: Any) -> Any:
    import torch

    with torch.inference_mode():
        return model(x, **kwargs)


def timm_variants(model: Any, x: Any) -> dict[str, Variant]:
    from timm.layers.attention import Attention
    from timm.utils import AttentionExtract

    from anycapture import capture
    from anycapture.sources.sdpa import SdpaSource

    modules = [m for m in model.modules() if isinstance(m, Attention)]

    def fused(value: bool) -> None:
        for module in modules:
            module.fused_attn = value

    local = capture(Attention.forward, "attn")

    def plain_unfused() -> None:
        fused(False)
        _forward(model, x)
        fused(True)

    def local_unfused() -> Any:
        fused(False)
        with local:
            _forward(model, x)
        fused(True)
        maps = local.cache["Attention.forward.attn"]
        local.clear()
        return maps

    def sdpa_source() -> Any:
        with SdpaSource(model) as source:
            _forward(model, x)
        return source.take()

    fused(False)  # AttentionExtract traces the unfused graph once, here
    extract = AttentionExtract(model, method="fx")
    fused(True)

    def timm_extract() -> Any:
        return {k: v.numpy() for k, v in _forward(extract, x).items()}

    return {
        "plain fused (baseline, no maps)": lambda: _forward(model, x),
        "plain unfused (no maps)": plain_unfused,
        "local attn, fused off": local_unfused,
        "SDPA source, fused kept": sdpa_source,
        "timm AttentionExtract (fx)": timm_extract,
    }


def clip_variants(eager: Any, sdpa: Any, x: Any) -> dict[str, Variant]:
    from anycapture import capture
    from anycapture.hf import attention_sites
    from anycapture.sources.sdpa import SdpaSource

    functions = list(dict.fromkeys(f for _, _, f, _ in attention_sites(eager)))
    local = capture(functions, "attn_weights")

    def local_eager() -> Any:
        with local:
            _forward(eager, x)
        maps = list(local.cache.values())
        local.clear()
        return maps

    def sdpa_source() -> Any:
        with SdpaSource(sdpa) as source:
            _forward(sdpa, x)
        return source.take()

    def output_attentions() -> Any:
        out = _forward(eager, x, output_attentions=True)
        return [a.numpy() for a in out.attentions]

    return {
        "plain sdpa (baseline, no maps)": lambda: _forward(sdpa, x),
        "plain eager (no maps)": lambda: _forward(eager, x),
        "local attn_weights, eager": local_eager,
        "SDPA source, sdpa": sdpa_source,
        "HF output_attentions, eager": output_attentions,
    }


def mha_variants(model: Any, x: Any) -> dict[str, Variant]:
    """torchvision ViT (nn.MultiheadAttention): weights asked for, or computed beside."""
    import torch

    from anycapture.sources import MultiheadSource, Site
    from anycapture.sources.mha import MhaSource

    sites = [
        Site(name, module, type(module).forward, "attn_output_weights")
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.MultiheadAttention)
    ]

    def run(source: Any) -> Any:
        source.start()
        try:
            _forward(model, x)
        finally:
            source.stop()
        return source.take()

    return {
        "plain (baseline, no maps)": lambda: _forward(model, x),
        "need_weights hooks (MultiheadSource)": lambda: run(MultiheadSource(sites)),
        "weights beside (MhaSource)": lambda: run(MhaSource(model)),
    }


def clip_models(quick: bool) -> tuple[Any, Any, str]:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    if quick:
        config = CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=64,
            patch_size=16,
        )
    else:
        config = CLIPVisionConfig()  # ViT-B/32: 768 wide, 12 layers, 224 px, 50 tokens
    torch.manual_seed(0)
    eager = CLIPVisionModel(config).eval()
    eager.set_attn_implementation("eager")
    sdpa = CLIPVisionModel(config).eval()
    sdpa.load_state_dict(eager.state_dict())
    sdpa.set_attn_implementation("sdpa")
    name = "HF CLIPVisionModel " + ("(tiny)" if quick else "ViT-B/32 shape")
    return eager, sdpa, name


def cpu_interleaved(variants: dict[str, Variant], rounds: int, number: int) -> dict[str, float]:
    """CPU seconds per call of each variant: interleaved rounds, the best round."""
    timers = {
        name: timeit.Timer(
            "fn()", "gc.enable()", timer=time.process_time, globals={"fn": fn, "gc": gc}
        )
        for name, fn in variants.items()
    }
    best = {name: float("inf") for name in variants}
    for timer in timers.values():
        timer.timeit(1)  # warm up
    for _ in range(rounds):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(number) / number)
    return best


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    return parser.parse_args()


def _json_for(args: Any, suffix: str) -> Any:
    if not args.json:
        return args
    path = args.json.with_name(f"{args.json.stem}-{suffix}{args.json.suffix}")
    return type(args)(**{**vars(args), "json": path})


def main() -> None:
    args = parse_args()
    import timm
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    timm_name = "vit_tiny_patch16_224" if args.quick else "vit_small_patch16_224"
    vit = timm.create_model(timm_name, pretrained=False, img_size=64 if args.quick else 224)
    vit.eval()
    eager, sdpa, clip_name = clip_models(args.quick)
    from torchvision.models import vit_b_16

    torchvision_vit = vit_b_16(image_size=64 if args.quick else 224).eval()
    size = 64 if args.quick else 224
    batches = (1,) if args.quick else (1, 8)
    for batch in batches:
        x = torch.randn(batch, 3, size, size)
        rounds, number = (2, 1) if args.quick else (11, 1 if batch == 8 else 3)
        for label, variants, baseline in (
            (timm_name, timm_variants(vit, x), "plain fused (baseline, no maps)"),
            (clip_name, clip_variants(eager, sdpa, x), "plain sdpa (baseline, no maps)"),
            ("torchvision vit_b_16", mha_variants(torchvision_vit, x), "plain (baseline, no maps)"),
        ):
            results = cpu_interleaved(variants, rounds=rounds, number=number)
            slug = {timm_name: "timm", clip_name: "clip"}.get(label, "mha")
            report(
                f"attention maps per forward: {label}, CPU, batch {batch}, "
                f"{args.threads} thread(s), CPU time (best of rounds)",
                results,
                baseline,
                "ms",
                _json_for(args, f"{slug}-b{batch}"),
            )


if __name__ == "__main__":
    main()
