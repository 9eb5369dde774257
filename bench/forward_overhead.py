"""Benchmark 2: what capturing every attention map of vit_small costs per forward.

Baseline: the plain forward with fused attention off (the unavoidable cost of
having maps at all).  CPU, random init, batch 1 and 8.

    python bench/forward_overhead.py [--quick] [--json out.json]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import anycapture_peer, interleaved, parse_args, report


def variants_for(model: Any, x: Any, peer: Any) -> dict[str, Callable[[], Any]]:
    import torch
    from timm.layers.attention import Attention
    from timm.utils import AttentionExtract

    from anycapture import capture

    attn_modules = [m for m in model.modules() if isinstance(m, Attention)]

    def set_fused(value: bool) -> None:
        for module in attn_modules:
            module.fused_attn = value

    def plain_fused() -> None:
        set_fused(True)
        with torch.inference_mode():
            model(x)
        set_fused(False)

    def plain() -> None:
        with torch.inference_mode():
            model(x)

    ours_numpy = capture(Attention.forward, "attn")
    ours_tensor = capture(Attention.forward, "attn", keep_tensors=True)

    def run_ours(cap: Any) -> Callable[[], Any]:
        def run() -> Any:
            with cap, torch.inference_mode():
                model(x)
            maps = cap.cache["Attention.forward.attn"]
            cap.clear()
            return maps

        return run

    hooks_out: list[Any] = []

    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        hooks_out.append(output.detach().cpu().numpy())

    def with_hooks() -> list[Any]:
        handles = [m.attn_drop.register_forward_hook(hook) for m in attn_modules]
        with torch.inference_mode():
            model(x)
        for handle in handles:
            handle.remove()
        maps = list(hooks_out)
        hooks_out.clear()
        return maps

    extract = AttentionExtract(model, method="fx")

    def timm_extract() -> Any:
        with torch.inference_mode():
            return {k: v.cpu().numpy() for k, v in extract(x).items()}

    variants: dict[str, Callable[[], Any]] = {
        "plain unfused (baseline)": plain,
        "plain fused (no maps)": plain_fused,
        "ours, numpy": run_ours(ours_numpy),
        "ours, keep tensors": run_ours(ours_tensor),
        "forward hooks on attn_drop": with_hooks,
        "timm AttentionExtract (fx)": timm_extract,
    }
    if peer is not None:
        variants["AnyCapture 0.1.4"] = anycapture_variant(peer, model, x)
    return variants


def machinery_cost(model: Any, x: Any) -> float:
    """Seconds per forward that capture itself adds: the hook an instrumented
    ``Attention.forward`` calls, given each layer's real map (dispatch, conversion,
    the per-call record), timed alone (a forward's noise dwarfs it)."""
    import torch
    from timm.layers.attention import Attention

    from anycapture.recorder import instrumented

    attn_modules = [m for m in model.modules() if isinstance(m, Attention)]
    with capture_maps(model) as cap, torch.inference_mode():
        model(x)
    maps = [torch.from_numpy(m) for m in cap.cache["Attention.forward.attn"]]
    assert len(maps) == len(attn_modules)
    with capture_maps(model) as cap:
        hook = instrumented(Attention.forward).hook

        def per_forward() -> None:
            for attn, module in zip(maps, attn_modules, strict=True):
                hook.record((attn, module))
            cap.clear()

        return interleaved({"machinery": per_forward}, rounds=5, number=200)["machinery"]


def capture_maps(model: Any) -> Any:
    from timm.layers.attention import Attention

    from anycapture import capture

    return capture(Attention.forward, "attn")


def anycapture_variant(peer: Any, model: Any, x: Any) -> Callable[[], Any]:
    """AnyCapture rewrites Attention.forward's code in place: do it on a copy of the
    function, bound only while its variant runs."""
    import types

    import torch
    from timm.layers.attention import Attention

    original = Attention.forward
    copy = types.FunctionType(
        original.__code__,
        original.__globals__,
        "forward",
        original.__defaults__,
        original.__closure__,
    )
    copy.__qualname__ = original.__qualname__
    get_local = type("bench_get_local", (peer.get_local,), {"cache": {}})
    wrapper = get_local("attn")(copy)
    get_local.activate()

    def run() -> Any:
        Attention.forward = wrapper
        try:
            with torch.inference_mode():
                model(x)
        finally:
            Attention.forward = original
        maps = get_local.cache["Attention.forward.attn"]
        get_local.clear()
        return maps

    return run


def main() -> None:
    args = parse_args(__doc__ or "")
    import timm
    import torch

    torch.manual_seed(0)
    name, batches = (
        ("vit_tiny_patch16_224", (1,)) if args.quick else ("vit_small_patch16_224", (1, 8))
    )
    model = timm.create_model(name, pretrained=False).eval()
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False
    peer = None if args.no_peers else anycapture_peer()
    for batch in batches:
        x = torch.randn(batch, 3, 224, 224)
        variants = variants_for(model, x, peer)
        rounds, number = (2, 1) if args.quick else (15, 1 if batch == 8 else 4)
        # min, not median: load from elsewhere on a shared machine only ever adds time
        results = interleaved(variants, rounds=rounds, number=number, statistic=min)
        machinery = machinery_cost(model, x)
        json_path = (
            args.json.with_name(f"{args.json.stem}-b{batch}{args.json.suffix}")
            if args.json
            else None
        )
        args_b = type(args)(**{**vars(args), "json": json_path})
        base = results["plain unfused (baseline)"]
        extra = {
            "capture machinery alone, per forward": f"{machinery * 1e6:.1f} us "
            f"({machinery / base:.4%} of the baseline forward)"
        }
        report(
            f"forward with all attention maps captured: {name}, CPU, batch {batch} "
            "(best of rounds)",
            results,
            "plain unfused (baseline)",
            "ms",
            args_b,
            extra,
        )


if __name__ == "__main__":
    main()
