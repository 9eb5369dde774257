"""Models whose figures once looked right and were not, each exit 0 (the "every figure
tells the truth" issue): cross-attention given a layout made from its 77 text keys, an
all-zero gate drawn as attention, a misnamed ``@get_local`` that stopped the import, a
generator method that stopped the site scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import CAT, REPO, read_manifest

MODELS = REPO / "tests" / "models" / "truth_models.py"
MISNAMED = REPO / "tests" / "models" / "misnamed_model.py"


@pytest.fixture(autouse=True)
def inactive_get_local():
    import anycapture

    yield
    anycapture.get_local.deactivate()
    anycapture.get_local.clear()


def test_cross_attention_keys_never_make_the_layout(cli, tmp_path: Path) -> None:
    """Image queries x 77 text keys on a 64x32 input: the layout is the model's own
    (cls + 8x4 patches, not "5 prefix + 12x6" from the keys); the cross layers are left
    out of every figure with a note naming them; the self-attention layers are drawn."""
    out = tmp_path / "out"
    result = cli(
        "render", "-m", f"{MODELS}:cross", "-i", str(CAT), "-o", str(out),
        "--figures", "head,grid,cls", "--layer", "all",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest["model"]["prefix_tokens"] == 1 and manifest["model"]["grid"] == [8, 4]
    assert manifest["model"]["tokens"] == 33  # the image's, not the last layer's 77 keys
    drawn = {figure["layer_name"] for figure in manifest["figures"]}
    assert drawn == {"blocks.0.attn", "blocks.1.attn"}, drawn
    notes = " ".join(manifest["notes"])
    for layer in ("blocks.0.cross", "blocks.1.cross"):
        assert f"{layer}: 33 queries x 77 keys, and the keys are not the image's tokens" in notes
    assert "class attention" not in notes


def test_only_cross_attention_is_refused_saying_so(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("render", "-m", f"{MODELS}:cross_only", "-i", str(CAT), "-o", str(out))
    assert result.exit_code == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "only cross-attention" in line
    assert "cross: 16 queries x 77 keys" in line and "--capture" in line
    assert "what it can pick here: candidates: --capture '" in line
    assert not out.exists()


def test_an_all_zero_gate_is_not_drawn_as_attention(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("render", "-m", f"{MODELS}:gated", "-i", str(CAT), "-o", str(out))
    assert result.exit_code == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "rows are all zeros" in line
    assert not out.exists() or not read_manifest(out)["figures"]


def test_a_misnamed_get_local_imports_and_the_attention_is_still_found(cli, tmp_path: Path) -> None:
    """``@get_local('attention_map')`` where the local is ``attn``: the model file
    imports (it raised at decoration), and its ``attn`` locals are rendered."""
    out = tmp_path / "out"
    result = cli("render", "-m", f"{MISNAMED}:build", "-i", str(CAT), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert read_manifest(out)["model"]["layers"] == ["blocks.0", "blocks.1"]
