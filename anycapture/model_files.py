"""Telling what a ``--model`` spec that names a Python file is missing, without
importing it (or torch): the CLI checks this before the model loads."""

from __future__ import annotations

import ast
from pathlib import Path

__all__ = ["python_file_without_factory"]


def python_file_without_factory(path: Path) -> str:
    """``--model good_model.py`` without ``:factory``: what the file defines (read, not
    imported), and the form to use; it was "unknown model" 13 s later (timm loaded)."""
    if path.is_dir():
        return f"--model {path} is a folder, not a Python file: give file.py:factory"
    if not path.is_file():
        return f"--model {path}: no such Python file"
    try:
        tree = ast.parse(path.read_text(errors="replace"), str(path))
    except (SyntaxError, ValueError) as exc:
        return f"--model {path} is a Python file that does not parse ({exc})"
    names = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
    ]
    example = next((n for n in names if n[:1].islower()), names[0] if names else "build")
    defined = f"; it defines {', '.join(names[:12])}" if names else ""
    return (
        f"--model {path} is a Python file: name the function (or class) that builds the "
        f"model, e.g. --model {path}:{example}{defined}"
    )
