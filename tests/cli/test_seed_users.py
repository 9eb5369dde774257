"""Seed users' models through the CLI: ``@get_local('attn')`` in a timm-style model
renders; a decorated feature map is refused as attention."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import CAT, REPO, read_manifest

SEED_VIT = REPO / "tests" / "models" / "seed_vit.py"


@pytest.mark.slow
def test_render_and_sites_on_get_local_attn_model(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli("render", "-m", f"{SEED_VIT}:build", "-i", str(CAT), "-o", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest["model"]["layers"] == ["blocks.0.attn", "blocks.1.attn", "blocks.2.attn"]
    assert len(manifest["figures"]) == 3
    result = cli("sites", "-m", f"{SEED_VIT}:build", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [layer["name"] for layer in report["layers"]] == manifest["model"]["layers"]


@pytest.mark.slow
def test_feature_map_is_refused_as_attention(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli("render", "-m", f"{SEED_VIT}:cnn", "-i", str(CAT), "-o", str(out), "-q")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "ConvNet.forward.feat" in line
    assert "(1, 4, 32, 32)" in line and "summing to 1" in line
    assert not (out / "manifest.json").exists() or not read_manifest(out)["figures"]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["at-import", "in-factory"])
def test_model_file_that_activates_get_local(cli, tmp_path: Path, where: str) -> None:  # type: ignore[no-untyped-def]
    """Repositories that call get_local.activate() in their model file: the render
    composes with it and leaves it active, with every value it recorded."""
    import anycapture

    source = SEED_VIT.read_text()
    if where == "at-import":
        source = source.replace(
            "from anycapture import get_local\n",
            "from anycapture import get_local\n\nget_local.activate()\n",
        )
    else:
        source += "\n\ndef build_active():\n    get_local.activate()\n    return build()\n"
    model_file = tmp_path / "active_model.py"
    model_file.write_text(source)
    factory = "build" if where == "at-import" else "build_active"
    try:
        result = cli("render", "-m", f"{model_file}:{factory}", "-i", str(CAT), "-o", str(tmp_path))
        assert result.exit_code == 0, result.stderr
        assert read_manifest(tmp_path)["model"]["layers"] == [
            "blocks.0.attn",
            "blocks.1.attn",
            "blocks.2.attn",
        ]
        assert anycapture.get_local.is_active
        recorded = anycapture.get_local.cache["Attention.forward"]
        assert len(recorded) == 3 and recorded[0].shape == (1, 2, 17, 17)
    finally:
        anycapture.get_local.deactivate()
        anycapture.get_local.clear()
