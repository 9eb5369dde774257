"""Typed options check themselves the same way from the CLI and from Python, and the
CLI's one error handler maps exceptions to exit codes (2 only for recognised usage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycapture.errors import AnycaptureError, UsageError
from anycapture.options import (
    CaptureOptions,
    FigureOptions,
    Fusion,
    RenderOptions,
    RunOptions,
    Style,
    Upsample,
)

from .conftest import CAT, KNOWN, read_manifest


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: FigureOptions(alpha=5), "--alpha 5 must be between 0 and 1"),
        (lambda: FigureOptions(style="glossy"), "--style 'glossy': choose paper or bare"),
        (lambda: FigureOptions(upsample="lanczos"), "choose nearest, bilinear or bicubic"),
        (lambda: FigureOptions(fusion="median"), "--fusion 'median': choose mean, max or min"),
        (lambda: FigureOptions(discard_ratio=1.0), "--discard-ratio 1.0 must be in [0, 1)"),
        (lambda: FigureOptions(threshold=0.0), "--threshold 0.0 must be in (0, 1]"),
        (lambda: FigureOptions(token=-1), "--token -1 must be 0 or more"),
        (lambda: FigureOptions(head=-2), "--head -2 must be 0 or more"),
        (lambda: FigureOptions(cmap="nocmap"), "unknown colormap 'nocmap'"),
        (lambda: FigureOptions.from_kwargs(colour="red"), "unknown figure option colour"),
        (lambda: RunOptions(figures=("pie",)), "unknown kind pie"),
        (lambda: RunOptions(figures=()), "unknown kind (none)"),
        (lambda: RunOptions(layer="last"), "--layer 'last' must be an integer or 'all'"),
        (lambda: RunOptions(batch_size=0), "--batch-size 0 must be at least 1"),
        (lambda: RunOptions(jobs=-1), "--jobs -1 must be 0"),
        (lambda: CaptureOptions(img_size=(0, 224)), "--img-size 0,224 must be positive"),
        (
            lambda: RenderOptions(FigureOptions(query=(1, 1)), RunOptions(query_pixel=(3, 3))),
            "give --query or --query-pixel, not both",
        ),
    ],
)
def test_options_check_themselves(make, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as raised:
        make()
    assert needle in str(raised.value) and "\n" not in str(raised.value)
    assert isinstance(raised.value, AnycaptureError) and isinstance(raised.value, ValueError)


def test_options_are_typed_and_frozen() -> None:
    figure = FigureOptions(style="bare", upsample="nearest", fusion="max")
    assert (figure.style, figure.upsample, figure.fusion) == (
        Style.BARE,
        Upsample.NEAREST,
        Fusion.MAX,
    )
    assert RunOptions(layer="-2").layer == -2 and RunOptions(layer="all").all_layers
    with pytest.raises(AttributeError):
        figure.alpha = 0.1  # type: ignore[misc]


def test_public_base_exceptions() -> None:
    import anycapture
    from anycapture.attention import NoAttentionError
    from anycapture.images import ImageInputError
    from anycapture.instrument import InstrumentationError
    from anycapture.loading import ModelLoadError
    from anycapture.run.outdir import OutputDirError
    from anycapture.run.selection import SelectionError

    assert anycapture.AnycaptureError is AnycaptureError and anycapture.UsageError is UsageError
    for usage in (
        ImageInputError,
        ModelLoadError,
        OutputDirError,
        SelectionError,
        NoAttentionError,
    ):
        assert issubclass(usage, UsageError)
    assert issubclass(InstrumentationError, AnycaptureError)
    assert not issubclass(InstrumentationError, UsageError)


BAD_FORWARD = """
import torch
from tests.models.known import KnownModel

class Broken(KnownModel):
    def forward(self, images):
        raise ValueError("shapes do not broadcast (raised inside the model)")

def build():
    return Broken()
"""


@pytest.mark.slow
def test_value_error_while_running_is_exit_1(cli, tmp_path: Path) -> None:
    model = tmp_path / "broken.py"
    model.write_text(BAD_FORWARD)
    result = cli("render", "-m", f"{model}:build", "-i", str(CAT), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1, result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert line.startswith(
        "anycapture: error: ValueError: shapes do not broadcast (raised inside the model) "
        f"(in {model}:"
    )
    assert line.endswith("(run with --debug for the traceback)")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_shows_the_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    from anycapture.cli import app
    from anycapture.cli.errors import run_command

    model = tmp_path / "broken.py"
    model.write_text(BAD_FORWARD)
    args = ["render", "-m", f"{model}:build", "-i", str(CAT), "-o", str(tmp_path / "o")]
    if how == "flag":
        args.append("--debug")
    else:
        monkeypatch.setenv("ANYCAPTURE_DEBUG", "1")
    with pytest.raises(ValueError, match="raised inside the model"):
        run_command(app, args)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--alpha", "5"], "Invalid value for '--alpha'"),
        (["--style", "glossy"], "Invalid value for '--style'"),
        (["--batch-size", "0"], "Invalid value for '--batch-size'"),
        (["--no-such-option"], "No such option: --no-such-option"),
        (["--head", "x"], "--head 'x' must be an integer or 'mean'"),
        (["--query", "1,1", "--query-pixel", "2,2"], "give --query or --query-pixel, not both"),
    ],
)
def test_parameter_errors_are_one_line_exit_2(cli, tmp_path: Path, args: list[str], needle: str):
    out = tmp_path / "o"
    result = cli("render", "-m", f"{KNOWN}:build", "-i", str(CAT), "-o", str(out), *args)
    assert result.exit_code == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("anycapture: error: "), result.stderr
    assert needle in lines[0]
    assert not out.exists()


def test_render_help_groups_options(cli) -> None:
    result = cli("render", "--help")
    assert result.exit_code == 0
    for panel in ("Model", "Input and output", "Figures", "Appearance", "cls and rollout"):
        assert panel in result.stdout, panel
    text = " ".join(w for w in result.stdout.split() if w != "│")
    assert "rollout (attention rollout" in text  # --figures help comes from the registry


def test_version_and_no_arguments(cli) -> None:
    assert cli("--version").exit_code == 0
    assert cli().exit_code == 2  # no command: the help, as before


def test_a_layout_that_cannot_be_told_is_a_usage_error() -> None:
    from anycapture.layout import TokenLayout
    from anycapture.run.selection import SelectionError, layer_layout

    model = TokenLayout(1, (3, 5))
    assert layer_layout(model, 16) == model  # the model's own
    assert layer_layout(model, 49) == TokenLayout(0, (7, 7))  # a 7x7 window, guessed
    with pytest.raises(SelectionError, match="cannot tell the token layout of 34 tokens"):
        layer_layout(model, 34)


def test_options_no_chosen_kind_reads_are_named() -> None:
    options = RenderOptions(
        FigureOptions(threshold=0.5, target_class="top3", head=None, fusion="max"),
        RunOptions(figures=("head", "heads"), query_pixel=(3, 4)),
    )
    assert options.ignored() == [
        "--threshold has no effect on head, heads (it is read by cls)",
        "--fusion has no effect on head, heads (it is read by rollout)",
        "--class has no effect on head, heads (it is read by explain)",
        "--query-pixel has no effect on head, heads (it is read by grid, layers)",
    ]
    assert RenderOptions(FigureOptions(threshold=0.5), RunOptions(figures=("cls",))).ignored() == []
    assert RenderOptions().ignored() == []  # defaults are never "given"


@pytest.mark.slow
def test_an_option_without_effect_is_a_note(cli, tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ("-m", "demo", "-i", str(CAT), "--figures", "head", "--threshold", "0.5")
    result = cli("render", *args, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    note = "--threshold has no effect on head (it is read by cls)"
    assert f"note: {note}" in result.stderr
    assert note in read_manifest(out)["notes"]
