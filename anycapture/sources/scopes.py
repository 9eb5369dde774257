"""Which modules the softmax source watches beside the other sources, and their heads.

Where other sources found attention (timm's ``attn`` locals, HF eager weights,
``nn.MultiheadAttention``), the softmax source watches only the attention-like
modules none of them covers, so a model fully covered pays nothing for it.
"""

from __future__ import annotations

import re
import types
from typing import Any

__all__ = ["ATTENTION_LIKE", "heads_of", "uncovered_scopes"]

ATTENTION_LIKE = re.compile(r"att(entio)?n|attend", re.IGNORECASE)


def uncovered_scopes(model: Any, covered: list[Any]) -> list[tuple[str, Any]]:
    """Attention-like modules of ``model`` that no module of ``covered`` is, contains or
    is contained by: named like attention, holding an ``nn.Softmax``, or whose
    forward calls a softmax.  What the softmax source watches beside other sources."""
    from ..instrument import resolve_function

    covered_names = {name for name, module in model.named_modules() if module in covered}
    scopes = []
    for name, module in model.named_modules():
        cls = type(module)
        if cls.__module__.startswith("torch.nn.modules") or any(
            _nested(name, other) for other in covered_names
        ):
            continue
        forward = getattr(cls, "forward", None)
        calls_softmax = isinstance(forward, types.FunctionType) and "softmax" in (
            resolve_function(forward).__code__.co_names
        )
        holds_softmax = any(type(child).__name__ == "Softmax" for child in module.children())
        if calls_softmax or holds_softmax or ATTENTION_LIKE.search(cls.__name__):
            scopes.append((name, module))
    return scopes


def _nested(name: str, other: str) -> bool:
    """Whether module ``name`` is ``other``, inside it or holds it (dotted names)."""
    if name == other or not name or not other:
        return True
    return name.startswith(other + ".") or other.startswith(name + ".")


def heads_of(module: Any) -> int | None:
    """The module's head count, under the names the zoos give it (None: unknown)."""
    for attribute in ("num_heads", "heads", "num_attention_heads", "n_heads"):
        value = getattr(module, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
