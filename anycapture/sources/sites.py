"""Attention sites: the modules of a model and the function and local that hold a map."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any

from ..decorator import get_local
from ..instrument import InstrumentationError, resolve_function
from ..scoped_capture import resolve_target
from .base import NoAttentionError

__all__ = [
    "ATTENTION_VAR",
    "Site",
    "custom_sites",
    "decorated_sites",
    "find_sites",
    "is_multihead_attention",
]

ATTENTION_VAR = "attn"


@dataclass(frozen=True)
class Site:
    """One attention module: its dotted name, the module, and the function that runs."""

    name: str
    module: Any
    function: types.FunctionType
    var: str = ATTENTION_VAR

    @property
    def heads(self) -> int | None:
        return getattr(self.module, "num_heads", None)


def is_multihead_attention(module: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(module, torch.nn.MultiheadAttention)


def _forwards(model: Any) -> list[tuple[str, Any, types.FunctionType]]:
    found = []
    for name, module in model.named_modules():
        forward = getattr(type(module), "forward", None)
        if isinstance(forward, types.FunctionType):
            found.append((name, module, resolve_function(forward)))
    return found


def find_sites(model: Any) -> list[Site]:
    """Attention modules of ``model`` in definition (= execution, for ViTs) order:
    modules whose forward computes ``attn``, and ``nn.MultiheadAttention``."""
    sites = []
    for name, module, function in _forwards(model):
        if is_multihead_attention(module):
            sites.append(Site(name, module, function, "attn_output_weights"))
        elif ATTENTION_VAR in function.__code__.co_varnames and (
            hasattr(module, "num_heads") or hasattr(module, "fused_attn")
        ):
            sites.append(Site(name, module, function))
    return sites


def decorated_sites(model: Any) -> list[Site]:
    """Seed style: methods of the model's modules that its code decorates with
    ``@get_local`` (one site per captured name), else every decorated function
    (a plain function the model calls: its layers are named by call order)."""
    decorated = {id(f): f for f in get_local.functions}
    sites = []
    for name, module in model.named_modules():
        for attribute in vars(type(module)).values():
            if not isinstance(attribute, (types.FunctionType, staticmethod, classmethod)):
                continue
            try:
                function = resolve_function(attribute)
            except InstrumentationError:  # a generator method (iter_blocks): no locals
                continue
            if id(function) in decorated:
                sites += [Site(name, module, function, v) for v in get_local.names_of(function)]
    if sites:
        return sites
    return [
        Site(f.__qualname__, None, f, var)
        for f in decorated.values()
        for var in get_local.names_of(f)
    ]


def custom_sites(model: Any, spec: str) -> list[Site]:
    """Sites from ``--capture "package.module:Class.method:var"``."""
    target, sep, var = spec.rpartition(":")
    if not sep or ":" not in target or not var.isidentifier():
        raise NoAttentionError(
            f"--capture {spec!r} must look like 'package.module:Class.method:variable'"
        )
    try:
        function = resolve_function(resolve_target(target))
    except (ValueError, TypeError) as exc:
        raise NoAttentionError(f"--capture {spec}: {exc}") from None
    if var not in function.__code__.co_varnames + function.__code__.co_cellvars:
        locals_ = ", ".join(function.__code__.co_varnames) or "(none)"
        raise NoAttentionError(
            f"--capture {spec}: {function.__qualname__} has no local {var!r}; its locals: {locals_}"
        )
    sites = []
    for name, module in model.named_modules():
        method = getattr(type(module), function.__name__, None)
        if isinstance(method, types.FunctionType) and resolve_function(method) is function:
            sites.append(Site(name, module, function, var))
    # a plain function (no module runs it): layers are named by call order
    return sites or [Site(function.__qualname__, None, function, var)]
