"""``render --help`` at 80 columns: every exit code, and --capture's format uncut."""

from __future__ import annotations

import os
import subprocess
import sys


def test_render_help_at_80_columns_names_every_exit_code_and_the_capture_format() -> None:
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    done = subprocess.run(
        [sys.executable, "-m", "anycapture", "render", "--help"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    for code in ("0 done", "2 bad usage", "3 finished", "1 failure", "130 interrupted",
                 "143 terminated", "129 hung up"):  # fmt: skip
        assert code in text, code
    assert "MODULE:CLASS.METHOD:VARIABLE" in done.stdout
    assert "…" not in done.stdout.split("--capture", 1)[1].split("--device", 1)[0]


def test_a_long_stage_wraps_at_80_columns_instead_of_being_cut() -> None:
    import io

    from rich.console import Console

    from anycapture.cli.progress import RunProgress

    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    stage = "vit_small_patch16_224 loaded, random (not meaningful) weights; first forward pass"
    with RunProgress(False, console) as progress:
        progress.stage(stage)
        progress._bar.refresh()
    shown = " ".join(buffer.getvalue().replace("\x1b[2K", " ").split())
    assert "weights; first forward pass" in shown and "first forward p…" not in shown


def test_the_console_script_flushes_before_it_ends_without_teardown() -> None:
    """main() ends the process with os._exit once the run is done (the interpreter's
    teardown of torch and matplotlib took 1-4 s after the last line): what it printed
    to a pipe arrives whole, and the exit code is the run's."""
    done = subprocess.run(
        [sys.executable, "-m", "anycapture", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("anycapture ")
    bad = subprocess.run(
        [sys.executable, "-m", "anycapture", "render", "--figures", "nope", "-m", "demo"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("anycapture: error: ")
