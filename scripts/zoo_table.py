"""Run the model-zoo matrix (tests/models_zoo/zoo.py) and write the docs' models table.

    python scripts/zoo_table.py            # run, print, rewrite docs/models.md's table
    python scripts/zoo_table.py --check    # exit 1 if docs/models.md's table differs

The table sits between ``<!-- zoo-table:start -->`` and ``<!-- zoo-table:end -->``;
each row is one family's result as the matrix found it.  A family not in the matrix
is not in the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "docs" / "models.md"  # the models page of the docs site
START, END = "<!-- zoo-table:start -->", "<!-- zoo-table:end -->"


def table(results: list) -> str:
    lines = [
        "| library | family | result | layers | max abs diff | how checked / why refused |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        diff = "" if result.max_diff is None else f"{result.max_diff:.1g}"
        note = result.note.replace("|", "\\|")
        note = _shorten(note.replace(str(REPO) + "/", ""))
        layers = str(result.layers) if result.layers else ""
        lines.append(
            f"| {result.family.library} | {result.family.name} | {result.status} | "
            f"{layers} | {diff} | {note} |"
        )
    return "\n".join(lines)


def _shorten(note: str, limit: int = 160) -> str:
    if note.startswith("no attention found"):  # the error's head and what it found
        head = note.split(":", 1)[0]
        found = note.rsplit("); ", 1)[1] if "); " in note else ""
        offered = "; a --capture candidate is offered" if "candidates: --capture" in note else ""
        note = f"{head}: {found}{offered}" if found else f"{head}{offered}"
    if "/tmp" in note:  # a temporary folder's path means nothing in the README
        note = " ".join(w for w in note.split() if "/tmp" not in w).lstrip(": ")
    return note if len(note) <= limit else note[: limit - 3].rstrip() + "..."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    options = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    warnings.filterwarnings("ignore")
    from tests.models_zoo.zoo import FAMILIES, run

    started = time.perf_counter()
    results = []
    for family in FAMILIES:
        result = run(family)
        results.append(result)
        print(f"{family.library:12} {family.name:32} {result.status:8} {result.seconds:5.1f}s")
    print(f"{len(results)} families in {time.perf_counter() - started:.0f} s")
    wrong = [r for r in results if r.status != r.family.expected]
    for result in wrong:
        print(f"unexpected: {result.family.name}: {result.status} ({result.note})")
    text = README.read_text()
    if START not in text or END not in text:
        print(f"{README} has no {START} ... {END} markers", file=sys.stderr)
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{table(results)}\n{END}{tail}"
    if options.check:
        same = _rows(updated) == _rows(text)
        print("models table up to date" if same else "models table differs: run this script")
        return 0 if same and not wrong else 1
    README.write_text(updated)
    return 1 if wrong else 0


def _rows(text: str) -> list[str]:
    """The table's rows without the timing-dependent cells (none at present)."""
    return text.split(START, 1)[1].split(END, 1)[0].strip().splitlines()


if __name__ == "__main__":
    raise SystemExit(main())
