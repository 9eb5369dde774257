"""``anycapture sites``: what would be captured, without rendering."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ..layout import TokenLayout, layer_role
from ._common import (
    CaptureOption,
    CheckpointOption,
    DebugOption,
    DeviceOption,
    DtypeOption,
    ImgSizeOption,
    MeanOption,
    ModelOption,
    PretrainedOption,
    QuietOption,
    ResizeOption,
    StdOption,
    capture_options_from,
    note,
    prepare_model,
)


def sites(
    model: ModelOption,
    pretrained: PretrainedOption = False,
    checkpoint: CheckpointOption = None,
    img_size: ImgSizeOption = None,
    capture: CaptureOption = None,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = None,
    mean: MeanOption = None,
    std: StdOption = None,
    resize: ResizeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,  # read by the error handler in main()
) -> None:
    """List the attention layers, heads and token layout one forward pass reveals."""
    choice = capture_options_from(locals())
    loaded, recorder, preprocessor = prepare_model(model, choice, quiet)
    report = _report(loaded, recorder, preprocessor, choice.device)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    for message in preprocessor.notes:
        note(f"note: {message}", quiet)


_SOURCE_NAMES = {
    "sdpa": "scaled_dot_product_attention calls (weights computed beside)",
    "softmax": "softmax outputs applied to values (named after their modules)",
}


def _report(loaded: Any, recorder: Any, preprocessor: Any, device: str) -> dict[str, Any]:
    """One forward pass on a blank image: the layers, their heads and tokens, the layout."""
    import torch

    from ..attention import layout_of

    height, width = preprocessor.input_hw
    blank = torch.zeros(1, 3, height, width, device=device, dtype=preprocessor.dtype)
    with torch.inference_mode(), recorder.recording():
        loaded.module(blank)
    maps = recorder.take()
    layout = layout_of(loaded.module, (height, width), maps)
    modules = dict(loaded.module.named_modules())
    functions = sorted(
        {f"{s.function.__module__}:{s.function.__qualname__}" for s in recorder.sites}
    )
    return {
        "model": loaded.name,
        "input_size": [height, width],
        "capture": functions or [_SOURCE_NAMES.get(recorder.kind, "@get_local functions")],
        "preprocessing": preprocessor.describe(),
        **layout.to_dict(),
        "layers": [
            {
                "index": i,
                "name": name,
                "heads": int(m.shape[1]),
                "tokens": int(m.shape[-1]),
                "queries": int(m.shape[-2]),
                "kind": layer_kind(modules.get(name.split("#")[0]), m, layout),
            }
            for i, (name, m) in enumerate(maps.items())
        ],
        # layers found but not drawn (CaiT's talking heads: not attention), with why
        "left_out": [{"name": name, "reason": why} for name, why in recorder.skipped.items()],
    }


def layer_kind(module: Any, maps: Any, layout: TokenLayout) -> str:
    """What a layer's map is over: ``channel`` (XCiT's cross-covariance attention: a
    head's channels attend to each other, tokens are summed over), ``window`` (more
    maps than images: windows of the one blank image), ``token`` (the image's tokens
    attend to each other), ``class`` (only prefix tokens query), ``cross`` (the
    image's tokens query keys that are not its tokens: text, pooled keys; left out of
    the figures, with a note), ``to-image`` (other queries over the image's tokens:
    object or text queries), or ``other``."""
    from ..attention import is_channel_attention

    queries, keys = int(maps.shape[-2]), int(maps.shape[-1])
    if is_channel_attention(module, maps) and keys != layout.num_tokens:
        return "channel"
    if maps.shape[0] > 1:
        return "window"
    role = layer_role(layout, queries, keys)
    return {"self": "token", "image-queries": "cross", "image-keys": "to-image"}.get(role, role)


def _print_table(report: dict[str, Any]) -> None:
    height, width = report["input_size"]
    prefix_names = ", ".join(report["prefix_names"]) or "-"
    rows, cols = report["grid"]
    tokens = report["prefix_tokens"] + rows * cols  # the image's (a cross layer's keys are not)
    print(f"model        {report['model']}")
    print(f"input        {height}x{width}")
    print(f"captures     {', '.join(report['capture'])}")
    print(
        f"tokens       {report['prefix_tokens']} prefix ({prefix_names}) "
        f"+ {rows}x{cols} patches = {tokens}"
    )
    print(f"layers       {len(report['layers'])}")
    for row in report["layers"]:
        print(
            f"  {row['index']:>3}  {row['name']:<40} heads={row['heads']:<3} "
            f"queries={row['queries']:<5} keys={row['tokens']:<5} {row['kind']}"
        )
    if report["left_out"]:
        print(f"left out     {len(report['left_out'])} layers (not attention weights)")
        for row in report["left_out"]:
            print(f"       {row['name']:<40} {row['reason']}")
