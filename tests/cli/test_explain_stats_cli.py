"""``--figures explain,distance,entropy`` end to end: files, manifest values, HTML
captions, --class, refusals, and the same output for any --jobs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from .conftest import KNOWN, REPO, read_manifest

pytestmark = pytest.mark.slow

DEMO_IMAGES = REPO / "assets" / "demo"


def _entries(manifest: dict[str, Any], figure: str) -> list[dict[str, Any]]:
    return [f for f in manifest["figures"] if f["figure"] == figure]


def test_demo_explain_top3_distance_entropy_with_aggregates(cli, tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ["render", "-m", "demo", "-i", str(DEMO_IMAGES), "-o", str(out), "--html", "-q"]
    result = cli(*args, "--figures", "explain,distance,entropy", "--class", "top3")
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    images = sorted({f["image"] for f in manifest["figures"] if f["image"]})
    assert len(images) >= 2
    for entry in _entries(manifest, "explain"):
        assert entry["path"].endswith("/explain_top3.png")
        classes = entry["classes"]
        assert [c["rank"] for c in classes] == [1, 2, 3]
        probabilities = [c["probability"] for c in classes]
        assert probabilities == sorted(probabilities, reverse=True) and probabilities[0] > 0.5
        index = classes[0]["index"]
        assert classes[0]["name"] == f"r{index // 8}c{index % 8}"
        assert Image.open(out / entry["path"]).width > 600
    for kind, key in (("distance", "distance_px"), ("entropy", "entropy_nats")):
        per_image = [e for e in _entries(manifest, kind) if e["image"]]
        (run,) = [e for e in _entries(manifest, kind) if e["image"] is None]
        assert len(per_image) == len(images) and run["path"] == f"{kind}_all_images.png"
        values = np.array([e[key] for e in per_image], dtype=float)
        assert values.shape == (len(images), 4, 4)  # images x layers x heads
        assert run["images"] == len(images)
        np.testing.assert_allclose(run[key], values.mean(axis=0), atol=2e-4)
        np.testing.assert_allclose(run[f"{key}_sd"], values.std(axis=0), atol=2e-4)
        assert (out / run["path"]).is_file()
    page = (out / "index.html").read_text()
    assert "p = 0." in page and "distance per layer, head mean (px)" in page
    assert "mean ± sd over" in page


def test_known_offset_model_statistics_through_the_cli(cli, tmp_path: Path) -> None:
    """Hand-computed (tests/models/known.py:offset): head 0 looks one column right
    (wrapping), head 1 half at itself and half one row down (wrapping)."""
    out = tmp_path / "o"
    model = f"{KNOWN}:offset"
    image = tmp_path / "grey.png"
    Image.new("RGB", (80, 48), "grey").save(image)
    args = ("render", "-m", model, "-i", str(image), "-o", str(out), "-q")
    result = cli(*args, "--figures", "distance,entropy", "--style", "bare")
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    (distance,) = _entries(manifest, "distance")
    (entropy,) = _entries(manifest, "entropy")
    assert distance["distance_px"] == [[25.6, 10.6667]] * 2
    assert entropy["entropy_nats"] == [[0.0, round(math.log(2), 4)]] * 2
    assert distance["image"] is not None  # one image: no aggregate
    assert len(manifest["figures"]) == 2


def test_timm_classifier_class_by_name_and_saved_maps(cli, tmp_path: Path) -> None:
    out = tmp_path / "o"
    model = f"{KNOWN}:tiny_classifier"
    image = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8)).save(image)
    base = ("render", "-m", model, "-i", str(image), "-o", str(out), "-q")
    result = cli(*base, "--figures", "explain,distance", "--class", "goldfish", "--save-maps")
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    (entry,) = _entries(manifest, "explain")
    (chosen,) = entry["classes"]
    assert chosen["index"] == 1 and chosen["name"].startswith("goldfish")
    assert entry["path"] == "noise/explain_c1.png"
    assert any("fused attention" in note for note in manifest["notes"])
    # distance_px agrees with the statistic computed from the saved maps
    from anycapture.head_stats import per_layer
    from anycapture.run.maps_file import load_maps

    saved = load_maps(out / manifest["maps"][0]["path"])
    expected = per_layer("distance", saved.layers, saved.layout)
    (distance,) = _entries(manifest, "distance")
    np.testing.assert_allclose(distance["distance_px"], np.stack(expected), atol=1e-4)
    # explain cannot be drawn without the model
    again = cli(
        "render",
        "--from-maps",
        str(out / manifest["maps"][0]["path"]),
        "-o",
        str(tmp_path / "again"),
        "--figures",
        "explain",
        "-q",
    )
    assert again.exit_code == 2 and "needs the model" in again.stderr
    assert not (tmp_path / "again").exists()  # refused before --out is created


@pytest.mark.parametrize(
    ("value", "message"),
    [("nosuch", "not one of the model's"), ("top11", "from 1 to 10"), ("64", "out of range")],
)
def test_bad_class_is_one_line_exit_2(cli, tmp_path: Path, value: str, message: str) -> None:
    out = tmp_path / "o"
    result = cli(
        "render",
        "-m",
        "demo",
        "-i",
        str(DEMO_IMAGES / "scene0.png"),
        "-o",
        str(out),
        "--figures",
        "explain",
        "--class",
        value,
    )
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not list(out.rglob("*.png"))


def test_same_output_for_any_jobs(cli, tmp_path: Path) -> None:
    outputs = []
    for jobs in ("0", "2"):
        out = tmp_path / f"j{jobs}"
        result = cli(
            "render",
            "-m",
            "demo",
            "-i",
            str(DEMO_IMAGES),
            "-o",
            str(out),
            "-q",
            "--figures",
            "explain,distance,entropy",
            "--jobs",
            jobs,
        )
        assert result.exit_code == 0, result.stderr
        files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.png")}
        outputs.append((json.loads((out / "manifest.json").read_text()), files))
    assert outputs[0] == outputs[1]


def test_bare_explain_is_the_overlays_at_input_resolution(cli, tmp_path: Path) -> None:
    out = tmp_path / "o"
    scene = DEMO_IMAGES / "scene0.png"
    args = ("render", "-m", "demo", "-i", str(scene), "-o", str(out), "-q", "--style", "bare")
    assert cli(*args, "--figures", "explain", "--class", "top3").exit_code == 0
    (entry,) = read_manifest(out)["figures"]
    gap = 1  # the bare sheets' white gap between panels
    assert Image.open(out / entry["path"]).size == (3 * 64 + 2 * gap, 64)
    one = tmp_path / "one"
    args = ("render", "-m", "demo", "-i", str(scene), "-o", str(one), "-q", "--style", "bare")
    assert cli(*args, "--figures", "explain").exit_code == 0
    (entry,) = read_manifest(one)["figures"]
    assert entry["path"] == "scene0/explain_top1.png"
    assert Image.open(one / entry["path"]).size == (64, 64)
