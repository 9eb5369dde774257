"""Issue 14: the first ten minutes, and batches that survive one bad file.

Fail fast before the model loads; progress stages on a terminal; unreadable images
skipped (exit 3); an output directory whose manifest lists exactly what is on disk;
option tags in file names; --query-pixel by pixel centre; the layers sheet's marks;
--scale; --help, completion and the quick start; the offline warning names --model demo.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from anycapture.options import FigureOptions, Scale
from anycapture.render.kinds import KINDS
from anycapture.run.selection import file_tags, query_patch

from .conftest import CAT, KNOWN, REPO, read_manifest

known = pytest.importorskip("tests.models.known")
MODEL = f"{KNOWN}:build"


def _one_error_line(result, code: int, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("anycapture: error: "), result.stderr
    assert needle in lines[0], lines[0]


def _text_named_jpg(folder: Path) -> Path:
    path = folder / "notes.jpg"
    path.write_text("not an image")
    return path


# -- 1. fail fast -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-m", MODEL, "-i", "missing.jpg"], "no such file"),
        (["-m", MODEL, "-i", "{text}"], "is not an image Pillow can read"),
        (["-m", MODEL, "-i", str(CAT), "--layer", "foo"], "--layer 'foo' must be an integer"),
        (["-m", MODEL, "-i", str(CAT), "--query", "4"], "ROW,COL"),
        (["-m", MODEL, "-i", str(CAT), "--cmap", "nocmap"], "unknown colormap"),
        (["-m", MODEL, "-i", str(CAT), "--checkpoint", "none.pth"], "does not exist"),
        (["-m", "tests/models/nope.py:build", "-i", str(CAT)], "does not exist"),
        (["-m", MODEL, "-i", str(CAT), "-o", "{file}"], "is an existing file"),
    ],
    ids=[
        "missing",
        "text-jpg",
        "layer-syntax",
        "query-syntax",
        "cmap",
        "ckpt",
        "model-file",
        "out",
    ],
)
def test_cheap_mistakes_fail_before_the_model_loads(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], needle: str
) -> None:
    def no_model(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the model was loaded for a mistake found without it")

    monkeypatch.setattr("anycapture.cli.steps.prepare_model", no_model)
    existing = tmp_path / "a-file"
    existing.write_text("x")
    text = _text_named_jpg(tmp_path)
    args = [a.format(text=text, file=existing) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out")]
    _one_error_line(cli("render", *args), 2, needle)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--layer", "5"], "--layer 5 is out of range: the model has 2 attention layers"),
        (["--layer", "-3"], "--layer -3 is out of range"),
        (["--query", "3,0"], "outside the 3x5 patch grid"),
    ],
)
def test_range_mistakes_fail_before_any_forward_pass(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], needle: str
) -> None:
    def no_forward(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a forward pass ran for a mistake the model's metadata shows")

    monkeypatch.setattr("anycapture.run.forward.forward_views", no_forward)
    result = cli("render", "-m", MODEL, "-i", str(CAT), "-o", str(tmp_path / "o"), *args)
    _one_error_line(result, 2, needle)


def test_a_cheap_mistake_imports_no_torch(tmp_path: Path) -> None:
    """The proof that it is cheap: not even torch is imported before the error."""
    text = _text_named_jpg(tmp_path)
    code = (
        "import sys\n"
        "from anycapture.cli import main\n"
        "try:\n"
        f"    main(['render', '-m', 'vit_small', '-i', {str(text)!r}, '-o', {str(tmp_path)!r}])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code, 'torch' in sys.modules, 'matplotlib.pyplot' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.strip() == "exit 2 False False", done.stdout + done.stderr
    assert "is not an image Pillow can read" in done.stderr


# -- 2. progress ----------------------------------------------------------------------
class _Recording:
    """A RunProgress on a fake terminal that remembers its stages and counts."""

    stages: ClassVar[list[str]] = []
    counts: ClassVar[dict[str, float]] = {}

    def __new__(cls, quiet: bool):  # type: ignore[no-untyped-def]
        from rich.console import Console

        from anycapture.cli.progress import RunProgress

        class Recorder(RunProgress):
            def stage(self, text: str) -> None:
                cls.stages.append(text)
                super().stage(text)

            def __exit__(self, *exc: object) -> None:
                if self._bar is not None:
                    cls.counts = {t.description: t.completed for t in self._bar.tasks}
                super().__exit__(*exc)  # type: ignore[arg-type]

        console = Console(file=io.StringIO(), force_terminal=True, width=100)
        return Recorder(quiet, console=console)


@pytest.mark.slow
def test_progress_stages_on_a_terminal_and_nothing_elsewhere(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = cli(
        "render",
        "-m",
        MODEL,
        "-i",
        str(CAT),
        "-i",
        str(CAT.parent / "demo"),
        "-o",
        str(tmp_path / "a"),
    )
    assert plain.exit_code == 0, plain.stderr
    assert plain.stderr.splitlines() == [
        f"anycapture: wrote 12 figures for 4 images to {tmp_path / 'a'}"
    ]
    monkeypatch.setattr(sys.modules["anycapture.cli.render"], "RunProgress", _Recording)
    _Recording.stages, _Recording.counts = [], {}
    args = ["-i", str(CAT), "-i", str(CAT.parent / "demo"), "--batch-size", "3"]
    result = cli("render", "-m", MODEL, *args, "-o", str(tmp_path / "b"))
    assert result.exit_code == 0, result.stderr
    stages = " | ".join(_Recording.stages)
    assert "checking the options" in stages and "loading the model" in stages, stages
    assert "random (not meaningful) weights" in stages, stages
    counts = {k: v for k, v in _Recording.counts.items() if "(images)" in k}
    assert counts == {"forward passes (images)": 4, "drawing figures (images)": 4}
    quiet = cli("render", "-m", MODEL, *args, "-o", str(tmp_path / "c"), "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


# -- 3. a batch survives bad inputs ---------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("workers", ["0", "2"])  # read in this process, or a DataLoader's
def test_a_batch_survives_unreadable_images(cli, tmp_path: Path, workers: str) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(CAT, folder / "a_cat.jpg")
    (folder / "b_cut.jpg").write_bytes(CAT.read_bytes()[:3000])  # a header, then nothing
    _text_named_jpg(folder)
    shutil.copy(CAT, folder / "z_cat.jpg")
    out = tmp_path / "out"
    args = ["--figures", "head", "--batch-size", "2", "--jobs", "0", "--decode-workers", workers]
    result = cli("render", "-m", MODEL, "-i", str(folder), "-o", str(out), *args)
    assert result.exit_code == 3, result.stderr
    lines = result.stderr.splitlines()
    assert f"anycapture: skipped: {folder / 'notes.jpg'} is not an image Pillow can read" in lines
    assert any(
        ln.startswith(f"anycapture: skipped: {folder / 'b_cut.jpg'} is truncated") for ln in lines
    )
    assert 'skipped 2 inputs, listed in manifest.json under "skipped"' in lines[-1]
    manifest = read_manifest(out)
    assert manifest["complete"] is True
    assert sorted(s["image"] for s in manifest["skipped"]) == [
        str(folder / "b_cut.jpg"),
        str(folder / "notes.jpg"),
    ]
    assert all(s["reason"].startswith(s["image"]) for s in manifest["skipped"])
    drawn = sorted({Path(f["image"]).name for f in manifest["figures"]})
    assert drawn == ["a_cat.jpg", "z_cat.jpg"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["a_cat", "z_cat"]


# -- 5. the output directory lists exactly what is on disk --------------------------------
def _on_disk(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def _listed(out: Path) -> set[str]:
    data = read_manifest(out)
    files = [f["path"] for f in data["figures"]] + [m["path"] for m in data["maps"]]
    return {*files, *data["pages"], "manifest.json"}


@pytest.mark.slow
def test_a_rerun_replaces_the_previous_output(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("a file anycapture did not write")
    runs = [
        ["--figures", "head,heads", "--layer", "all", "--html", "--save-maps"],
        ["--figures", "cls", "--threshold", "0.5"],
        ["--figures", "cls,layers", "--scale", "each", "--html"],
    ]
    for args in runs:
        result = cli("render", "-m", MODEL, "-i", str(CAT), "-o", str(out), "-q", *args)
        assert result.exit_code == 0, result.stderr
        assert _on_disk(out) == _listed(out) | {"mine.txt"}, args
    names = sorted(Path(f["path"]).name for f in read_manifest(out)["figures"])
    assert names == ["cls_L01_T0_each.png", "layers_H0_q1-2_each.png"]


def test_a_rerun_never_deletes_its_own_inputs(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = ["-m", MODEL, "-i", str(CAT), "-o", str(out), "--save-maps", "--figures", "head"]
    assert cli("render", *first, "-q").exit_code == 0
    maps = out / "cat" / "maps.npz"
    again = cli("render", "--from-maps", str(maps), "-o", str(out), "--figures", "heads", "-q")
    assert again.exit_code == 0, again.stderr
    assert maps.is_file()  # listed by the previous run, read by this one: kept
    assert _on_disk(out) == _listed(out) | {"cat/maps.npz"}


def test_file_names_carry_the_options_that_change_content() -> None:
    defaults = FigureOptions()
    for kind in KINDS:
        assert file_tags(kind.uses, defaults, None) == "", kind.name  # old names stay valid
    threshold = FigureOptions(threshold=0.6)
    each = FigureOptions(scale=Scale.EACH)
    assert file_tags(KINDS["cls"].uses, threshold, None) == "_t0.6"
    assert file_tags(KINDS["grid"].uses, threshold, None) == ""  # grid ignores it
    for name in ("heads", "cls", "layers"):
        assert file_tags(KINDS[name].uses, each, None) == "_each"
    assert file_tags(KINDS["head"].uses, defaults, 3) == "_w3"


def test_default_names_are_unchanged(cli, tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ["--figures", "head,heads,grid,cls,rollout,layers", "-q"]
    assert cli("render", "-m", MODEL, "-i", str(CAT), "-o", str(out), *args).exit_code == 0
    assert [Path(f["path"]).name for f in read_manifest(out)["figures"]] == [
        "head_L01_H0.png",
        "heads_L01.png",
        "grid_L01_H0_q1-2.png",
        "cls_L01_T0.png",
        "rollout_T0_mean_d0.png",
        "layers_H0_q1-2.png",
    ]


# -- 6. --query-pixel -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "scale"), [("known", 4.0), ("known", 2.5), ("demo", 4.0), ("demo", 3.3)]
)
def test_query_pixel_is_floor_of_x_over_the_patch_width(model: str, scale: float) -> None:
    """Issue 14: on a 256 px image with 32 px patches (the demo model, scale 4), pixel
    128 starts patch 4 and pixel 127 ends patch 3; every pixel is checked."""
    from anycapture.demo import build_demo
    from anycapture.images import Preprocessor
    from anycapture.layout import TokenLayout
    from anycapture.run.selection import view_point

    module = known.build() if model == "known" else build_demo()
    preprocessor = Preprocessor.for_model(module)
    layout = TokenLayout(1, known.GRID if model == "known" else (8, 8), ("cls",))
    view_h, view_w = preprocessor.input_hw
    size = (round(view_w * scale), round(view_h * scale))
    patch = (size[0] / layout.grid[1], size[1] / layout.grid[0])  # in original pixels
    for x in range(size[0]):
        y = (x * 7) % size[1]
        point = view_point(preprocessor.view, size, (x, y))
        expected = (int(y // patch[1]), int(x // patch[0]))
        assert query_patch(layout, None, point, (view_h, view_w)) == expected, (x, y)


def test_query_pixel_through_a_view_that_wants_rgb() -> None:
    """An image processor may refuse float images: 8-bit steps, a hundredth of a view
    pixel off at most, so a pixel away from a patch edge still finds its patch."""
    from anycapture.images import Preprocessor
    from anycapture.layout import TokenLayout
    from anycapture.run.selection import view_point

    preprocessor = Preprocessor.for_model(known.build())

    def rgb_only(image: Image.Image) -> Image.Image:
        if image.mode != "RGB":
            raise ValueError("RGB only")
        return preprocessor.view(image)

    layout = TokenLayout(1, known.GRID, ("cls",))
    size = (known.GRID[1] * known.PATCH * 4, known.GRID[0] * known.PATCH * 4)
    for x in range(2, size[0], 64):  # 2 px inside each patch
        point = view_point(rgb_only, size, (x + 8, 40))
        assert query_patch(layout, None, point, preprocessor.input_hw) == (0, x // 64)


# -- 7. layers marks and --scale ----------------------------------------------------------
def test_layers_boxes_the_query_and_draws_prefix_cells(cli, tmp_path: Path) -> None:
    from anycapture.render.sheet import PREFIX_EDGE_RGB, QUERY_BOX_RGB

    out = tmp_path / "o"
    args = ["--figures", "layers", "--style", "bare", "--query", "1,3", "-q"]
    assert cli("render", "-m", MODEL, "-i", str(CAT), "-o", str(out), *args).exit_code == 0
    (figure,) = read_manifest(out)["figures"]
    sheet = np.asarray(Image.open(out / figure["path"]).convert("RGB"))
    cols = known.GRID[1]
    width, strip = cols * known.PATCH, round(known.PATCH * 1.25)
    for panel in range(2):  # two layers, one gap pixel between them
        left = panel * (width + 1)
        top_of_box = strip + 1 * known.PATCH
        box_left = left + 3 * known.PATCH
        assert tuple(sheet[top_of_box, box_left + 5]) == QUERY_BOX_RGB
        assert tuple(sheet[top_of_box + 5, box_left]) == QUERY_BOX_RGB
        assert tuple(sheet[0, left + 5]) == PREFIX_EDGE_RGB  # the CLS cell's edge
        inside = sheet[known.PATCH // 2, left + known.PATCH // 2]
        assert tuple(inside) not in {(255, 255, 255), PREFIX_EDGE_RGB}  # coloured by weight
        assert np.all(sheet[: strip - 1, left + known.PATCH + 4] == 255)  # one prefix cell


def _heads_request(scale: str):  # type: ignore[no-untyped-def]
    from anycapture.layout import TokenLayout
    from anycapture.render.request import FigureRequest

    tokens = 5
    maps = np.full((2, tokens, tokens), 0.2, dtype=np.float32)
    maps[0, 0, 0] = 0.75  # one outlier in head 0
    maps[1, 1, 1] = 0.3  # head 1's own maximum
    view = Image.new("RGB", (4, 4))
    layout = TokenLayout(1, (2, 2), ("cls",))
    return FigureRequest(maps, layout, view, "l", 0, scale=scale)


def test_scale_each_gives_every_panel_its_own_maximum() -> None:
    from anycapture.render.colour import colormap_lut

    top = tuple(colormap_lut("viridis")[-1])
    for scale, head1_reaches_top in (("shared", False), ("each", True)):
        png = KINDS["heads"].bare(_heads_request(scale))
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        head1 = pixels[:, 5 + 1 : 10 + 1]  # panels of 5 px, 1 px gaps
        reached = bool(np.any(np.all(head1 == top, axis=-1)))
        assert reached is head1_reaches_top, scale
    figure = KINDS["heads"].paper(_heads_request("each"))
    assert Image.open(io.BytesIO(figure)).width > 300


# -- 9. --help, completion, quick start ---------------------------------------------------
def test_help_reads_well(cli) -> None:
    render_help = cli("render", "--help").stdout
    assert "<bool>" not in render_help
    assert "[required]" in render_help and "*  --model" in render_help
    for panel in ("Model", "Input and output", "Figures", "Appearance", "Running"):
        assert f"─ {panel} " in render_help, panel
    top = cli("--help").stdout
    assert "Quick start" in top and "--model demo" in top and "--install-completion" in top
    assert len(top.splitlines()) <= 40  # one screen


def test_shell_completion(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer.completion

    # typer detects the shell from the parent process: not there when the suite runs
    # detached (CI started in the background), so the test names it
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    script = cli("--show-completion", "bash")
    assert script.exit_code == 0 and "_ANYCAPTURE_COMPLETE=complete_bash" in script.stdout
    monkeypatch.setenv("_ANYCAPTURE_COMPLETE", "complete_bash")
    for words, cword, expected in (
        ("anycapture render --sca", 2, {"--scale"}),
        ("anycapture render --scale ", 3, {"shared", "each"}),
        ("anycapture render -m de", 3, {"demo"}),
    ):
        monkeypatch.setenv("COMP_WORDS", words)
        monkeypatch.setenv("COMP_CWORD", str(cword))
        done = cli()
        assert done.exit_code == 0
        assert set(done.stdout.split()) >= expected, (words, done.stdout)


# -- 4. the offline fallback names --model demo -------------------------------------------
@pytest.mark.slow
def test_offline_fallback_points_to_the_demo_model(cli, tmp_path: Path) -> None:
    import anycapture

    result = cli(
        "render", "-m", "vit_tiny", "-i", str(CAT), "-o", str(tmp_path / "o"), "--figures", "head"
    )
    assert result.exit_code == 0, result.stderr
    warning = next(ln for ln in result.stderr.splitlines() if "warning:" in ln)
    assert "random weights" in warning and "--model demo" in warning
    assert read_manifest(tmp_path / "o")["model"]["pretrained"] is False
    with pytest.warns(UserWarning, match="demo"):
        offline = anycapture.attention_maps("vit_tiny", CAT)
    assert offline.pretrained is False
    demo = anycapture.attention_maps("demo", REPO / "assets" / "demo" / "scene0.png")
    assert demo.pretrained is True
