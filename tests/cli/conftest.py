from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from typer.testing import CliRunner

from anycapture.cli import app
from anycapture.cli.errors import run_command

REPO = Path(__file__).resolve().parents[2]
CAT = REPO / "assets" / "cat.jpg"
KNOWN = REPO / "tests" / "models" / "known.py"


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest.json a render run wrote into ``out``."""
    return json.loads((out / "manifest.json").read_text())


class Result:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never reach for the network in tests
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        """Run the CLI as ``main()`` does: through its one error handler."""
        with runner.isolation() as (stdout, stderr, _output):
            code = run_command(app, list(args))
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
        return Result(code, out, err)

    return invoke
