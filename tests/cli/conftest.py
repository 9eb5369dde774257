from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from typer.testing import CliRunner

from anycapture.cli import app

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
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return invoke
