"""README.md is the landing page: every relative link and picture it shows exists (the
docs site itself is built with ``mkdocs build --strict`` in .ci/run, which fails on a
broken link there)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_relative_link_of_the_readme_exists() -> None:
    text = (REPO / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))]
    assert local, "the README links its docs pages"
    missing = [t for t in local if not (REPO / t).exists()]
    assert missing == []


def test_the_docs_site_lists_every_page() -> None:
    nav = (REPO / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    assert [p for p in pages if f": {p}" not in nav] == []
