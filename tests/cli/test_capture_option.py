"""``--capture MOD:Class.method:var``: a spec that names real attention renders (the
route the README offers for anything not found automatically)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import CAT, read_manifest

SPEC = "timm.layers.attention:Attention.forward:attn"
TINY = "vit_tiny_patch16_224"


@pytest.mark.slow
def test_render_sites_and_notebook_with_a_valid_capture(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli(
        "render", "-m", TINY, "--no-pretrained", "-i", str(CAT), "-o", str(out), "--capture", SPEC
    )
    assert result.exit_code == 0, result.stderr
    layers = read_manifest(out)["model"]["layers"]
    assert layers == [f"blocks.{i}.attn" for i in range(12)]
    result = cli("sites", "-m", TINY, "--no-pretrained", "--json", "--capture", SPEC)
    assert result.exit_code == 0, result.stderr
    assert [row["name"] for row in json.loads(result.stdout)["layers"]] == layers

    import anycapture

    maps = anycapture.attention_maps(TINY, CAT, capture=SPEC, pretrained=False)
    auto = anycapture.attention_maps(TINY, CAT, pretrained=False)
    assert list(maps.layers) == list(auto.layers) == layers
    for name in layers:  # the same maps as the automatic finder's
        np.testing.assert_array_equal(maps.layers[name], auto.layers[name])
