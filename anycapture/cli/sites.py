"""``anycapture sites``: what would be captured, without rendering."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ._common import (
    CaptureOption,
    CheckpointOption,
    DebugOption,
    DeviceOption,
    ImgSizeOption,
    ModelOption,
    PretrainedOption,
    QuietOption,
    parse_pair,
    prepare_model,
    reported_errors,
)


def sites(
    model: ModelOption,
    pretrained: PretrainedOption = False,
    checkpoint: CheckpointOption = None,
    img_size: ImgSizeOption = None,
    capture: CaptureOption = None,
    device: DeviceOption = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """List the attention layers, heads and token layout one forward pass reveals."""
    with reported_errors(debug):
        import torch

        size = parse_pair(img_size, "--img-size", "H,W")
        loaded, recorder, preprocessor = prepare_model(
            model,
            pretrained=pretrained,
            checkpoint=checkpoint,
            img_size=size,
            device=device,
            capture=capture,
            quiet=quiet,
        )
        from ..attention import layout_of

        height, width = preprocessor.input_hw
        with torch.inference_mode(), recorder.recording():
            loaded.module(torch.zeros(1, 3, height, width, device=device))
        maps = recorder.take()
        last = next(reversed(maps.values()))
        layout = layout_of(loaded.module, (height, width), last.shape[-1])
        functions = sorted(
            {f"{s.function.__module__}:{s.function.__qualname__}" for s in recorder.sites}
        )
        report = {
            "model": loaded.name,
            "input_size": [height, width],
            "capture": functions or ["@get_local functions"],
            **layout.to_dict(),
            "layers": [
                {"index": i, "name": name, "heads": int(m.shape[1]), "tokens": int(m.shape[-1])}
                for i, (name, m) in enumerate(maps.items())
            ],
        }
        if as_json:
            print(json.dumps(report, indent=2))
            return
        print(f"model        {report['model']}")
        print(f"input        {height}x{width}")
        print(f"captures     {', '.join(report['capture'])}")
        print(
            f"tokens       {layout.prefix_tokens} prefix ({', '.join(layout.prefix_names) or '-'}) "
            f"+ {layout.grid[0]}x{layout.grid[1]} patches = {layout.num_tokens}"
        )
        print(f"layers       {len(maps)}")
        for row in report["layers"]:
            print(
                f"  {row['index']:>3}  {row['name']:<40} "
                f"heads={row['heads']:<3} tokens={row['tokens']}"
            )
