"""Candidates for ``--capture`` when no attention is found: ready-to-paste specs.

Looks at the forward of each module class in the model (each class once, in
module order) for locals whose names suggest attention weights, and at modules
named like attention whose forward keeps no such local.  Given a forward pass to
replay, only the candidates whose values pass the attention check are offered.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from typing import Any

from ..instrument import resolve_function

__all__ = ["capture_candidates", "describe_candidates", "working_candidates"]

LIKELY_LOCAL = re.compile(r"attn|attention|weights?$|probs|scores|softmax|affinity", re.I)
NOT_WEIGHTS = re.compile(
    r"(output|out|interface|bias|mask|drop|dropout|impl|implementation|fn|func|proj|layer)$",
    re.I,
)
LIKELY_MODULE = re.compile(r"attention", re.I)


def capture_candidates(model: Any, limit: int = 6) -> tuple[list[str], list[str]]:
    """(``--capture`` specs ``module:Class.forward:local``, attention-like module names
    whose forward keeps no likely local), each at most ``limit`` long."""
    specs: list[str] = []
    bare: list[str] = []
    seen: set[type] = set()
    for name, module in model.named_modules():
        cls = type(module)
        forward = getattr(cls, "forward", None)
        if not isinstance(forward, types.FunctionType):
            continue
        function = resolve_function(forward)
        code = function.__code__
        arguments = set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
        local_names = [
            v
            for v in (*code.co_varnames, *code.co_cellvars)
            if v not in arguments and LIKELY_LOCAL.search(v) and not NOT_WEIGHTS.search(v)
        ]
        if cls not in seen:
            seen.add(cls)
            where = f"{function.__module__}:{function.__qualname__}"
            specs += [f"{where}:{v}" for v in dict.fromkeys(local_names)]
        if not local_names and LIKELY_MODULE.search(cls.__name__):
            bare.append(name)
    return specs[:limit], bare[:limit]


def working_candidates(model: Any, specs: list[str], forward: Callable[[], Any]) -> list[str]:
    """The ``specs`` whose values, in one replayed forward pass, are attention weights
    (rows of non-negative weights summing to 1): what ``--capture`` would accept."""
    from .base import NoAttentionError
    from .locals import LocalsSource
    from .sites import custom_sites

    sources: dict[str, LocalsSource] = {}
    for spec in specs:
        try:
            sources[spec] = LocalsSource(custom_sites(model, spec), mode="skip")
        except NoAttentionError:
            continue
    started = []
    try:
        for source in sources.values():
            source.start()
            started.append(source)
        forward()
    except Exception:  # a replay that fails offers nothing: none is known to work
        return []
    finally:
        for source in started:
            source.stop()
    working = []
    for spec, source in sources.items():
        try:
            if source.take():
                working.append(spec)
        except NoAttentionError:
            continue
    return working


def describe_candidates(model: Any, forward: Callable[[], Any] | None = None) -> str:
    """One sentence for the "no attention found" error naming the candidates; with
    ``forward`` (a replay of the pass that found nothing), only those that hold
    attention weights."""
    specs, bare = capture_candidates(model)
    tried = len(specs)
    if forward is not None and specs:
        specs = working_candidates(model, specs, forward)
    parts = []
    if specs:
        parts.append("candidates: " + ", ".join(f"--capture '{s}'" for s in specs))
    elif tried:
        parts.append(
            f"none of the {tried} locals named like attention holds attention weights "
            "(rows summing to 1)"
        )
    if bare:
        parts.append(
            "attention-like modules computing no such local (fused or external kernels?): "
            + ", ".join(bare)
        )
    return "; ".join(parts) if parts else "no module's forward has an attention-like local"
