"""Shared fixtures: every test starts with a fresh, inactive ``get_local``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import anycapture
from anycapture.decorator import GetLocal


@pytest.fixture
def gl(monkeypatch: pytest.MonkeyPatch) -> Iterator[GetLocal]:
    """A private GetLocal, also installed as ``anycapture.get_local`` for the test."""
    fresh = GetLocal()
    monkeypatch.setattr(anycapture, "get_local", fresh)
    yield fresh
    fresh.deactivate()
