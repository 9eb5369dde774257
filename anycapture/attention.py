"""Finding a model's attention and recording its maps, one array per layer.

Any module whose ``forward`` computes a local named ``attn`` (timm's
``Attention`` and most of its relatives) is an attention site.  Fused attention
(``scaled_dot_product_attention``) never materialises the map, so it is switched
off for the run and restored afterwards.  torch is imported lazily.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .decorator import get_local
from .instrument import resolve_function
from .layout import TokenLayout, default_prefix_names
from .scoped_capture import Capture, resolve_target

__all__ = ["AttentionRecorder", "NoAttentionError", "Site", "find_sites", "layout_of"]

ATTENTION_VAR = "attn"
MULTIHEAD_VAR = "attn_output_weights"  # torch.nn.MultiheadAttention.forward's local


class NoAttentionError(Exception):
    """Nothing to capture, or nothing was captured; the message says why."""


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


def find_sites(model: Any) -> list[Site]:
    """Attention modules of ``model`` in definition (= execution, for ViTs) order:
    modules whose forward computes ``attn``, and ``nn.MultiheadAttention``."""
    sites = []
    for name, module in model.named_modules():
        forward = getattr(type(module), "forward", None)
        if not isinstance(forward, types.FunctionType):
            continue
        function = resolve_function(forward)
        if _is_multihead_attention(module):
            sites.append(Site(name, module, function, MULTIHEAD_VAR))
        elif ATTENTION_VAR in function.__code__.co_varnames and (
            hasattr(module, "num_heads") or hasattr(module, "fused_attn")
        ):
            sites.append(Site(name, module, function))
    return sites


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
    sites = []
    for name, module in model.named_modules():
        method = getattr(type(module), function.__name__, None)
        if isinstance(method, types.FunctionType) and resolve_function(method) is function:
            sites.append(Site(name, module, function, var))
    # a plain function (no module runs it): layers are named by call order
    return sites or [Site(function.__qualname__, None, function, var)]


def layout_of(model: Any, input_hw: tuple[int, int], num_tokens: int) -> TokenLayout:
    """The token layout from timm metadata, else inferred from the token count."""
    prefix = getattr(model, "num_prefix_tokens", None)
    patch_embed = getattr(model, "patch_embed", None)
    patch_size = _pair(getattr(patch_embed, "patch_size", None))
    grid = _pair(getattr(patch_embed, "grid_size", None))
    if patch_size and getattr(model, "dynamic_img_size", False):
        grid = (input_hw[0] // patch_size[0], input_hw[1] // patch_size[1])
    if isinstance(prefix, int) and grid and prefix + grid[0] * grid[1] == num_tokens:
        return TokenLayout(prefix, grid, _prefix_names(model, prefix), patch_size)
    try:
        return TokenLayout.infer(num_tokens, input_hw)
    except ValueError as exc:
        raise NoAttentionError(str(exc)) from None


def _pair(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _prefix_names(model: Any, prefix: int) -> tuple[str, ...]:
    names = []
    if getattr(model, "cls_token", None) is not None:
        names.append("cls")
    if getattr(model, "dist_token", None) is not None:
        names.append("dist")
    names += [f"reg{i}" for i in range(getattr(model, "num_reg_tokens", 0) or 0)]
    if len(names) != prefix:
        return default_prefix_names(prefix)
    return tuple(names)


class AttentionRecorder:
    """Records one ``(B, heads, Q, N)`` array per attention layer per forward pass.

    Three sources, in this order: ``--capture`` sites, automatic sites (timm-style
    ``attn`` locals and ``nn.MultiheadAttention``), or functions decorated with
    ``@get_local`` (seed style) in the model's code.
    """

    def __init__(self, model: Any, capture_spec: str | None = None) -> None:
        self.model = model
        self.sites = custom_sites(model, capture_spec) if capture_spec else find_sites(model)
        self._names = {id(site.module): site.name for site in self.sites if site.module}
        self._captures: list[Capture] = []
        self.seed_style = not self.sites and bool(get_local.functions)
        if not self.sites and not self.seed_style:
            raise NoAttentionError(
                f"no attention found in {type(model).__name__}: no module's forward computes "
                f"a local named '{ATTENTION_VAR}' and none is an nn.MultiheadAttention; name "
                "the function and variable with --capture 'package.module:Class.forward:variable'"
            )

    @contextmanager
    def recording(self) -> Iterator[AttentionRecorder]:
        """Switch fused attention off and capture; restore everything on exit."""
        modules = [site.module for site in self.sites if site.module is not None]
        fused = [(m, m.fused_attn) for m in modules if hasattr(m, "fused_attn")]
        for module, _ in fused:
            module.fused_attn = False
        by_var: dict[str, list[types.FunctionType]] = {}
        for site in self.sites:
            functions = by_var.setdefault(site.var, [])
            if site.function not in functions:
                functions.append(site.function)
        self._captures = [Capture(functions, [var]) for var, functions in by_var.items()]
        mha = [m for m in modules if _is_multihead_attention(m)]
        try:
            with ExitStack() as stack:
                if mha:
                    stack.enter_context(_multihead_weights(mha))
                for cap in self._captures:
                    stack.enter_context(cap)
                if not self._captures and not get_local.is_active:
                    get_local.activate()
                yield self
        finally:
            for module, value in fused:
                module.fused_attn = value

    def take(self) -> dict[str, np.ndarray]:
        """The maps recorded since the last call, ``{layer name: (B, H, Q, N)}``, in the
        model's module order (a module called twice gives ``name``, ``name#1``)."""
        maps: dict[str, np.ndarray] = {}
        if self._captures:
            per_name: dict[str, list[Any]] = {}
            for cap in self._captures:
                for record in cap.records:
                    name = self._names.get(id(record.instance), record.function)
                    per_name.setdefault(name, []).extend(record.values.values())
                cap.clear()
            order = {site.name: i for i, site in enumerate(self.sites)}
            for name in sorted(per_name, key=lambda n: order.get(n, len(order))):
                for i, value in enumerate(per_name[name]):
                    maps[name if i == 0 else f"{name}#{i}"] = _as_maps(value)
        else:
            for key, values in get_local.cache.items():
                for i, value in enumerate(values):
                    maps[f"{key}[{i}]" if len(values) > 1 else key] = _as_maps(value)
            get_local.clear()
        if not maps:
            raise NoAttentionError(
                "the forward pass ran but no attention map was recorded: the attention code "
                "took a path that never assigns the variable (fused attention?), or --capture "
                "names a function the model does not call"
            )
        return maps


def _is_multihead_attention(module: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(module, torch.nn.MultiheadAttention)


@contextmanager
def _multihead_weights(modules: list[Any]) -> Iterator[None]:
    """Make ``nn.MultiheadAttention`` compute per-head weights, callers none the wiser.

    A pre-hook asks for ``need_weights=True, average_attn_weights=False`` (and the
    fast path, which has no weights, is off); a post-hook gives the caller the
    output it asked for.  All restored on exit.
    """
    import torch

    asked: list[tuple[bool, bool]] = []

    def before(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        args, kwargs = list(args), dict(kwargs)
        need = args[4] if len(args) > 4 else kwargs.get("need_weights", True)
        average = args[6] if len(args) > 6 else kwargs.get("average_attn_weights", True)
        asked.append((bool(need), bool(average)))
        for position, key, value in ((4, "need_weights", True), (6, "average_attn_weights", False)):
            if len(args) > position:
                args[position] = value
            else:
                kwargs[key] = value
        return tuple(args), kwargs

    def after(_module: Any, _args: Any, output: Any) -> Any:
        need, average = asked.pop()
        result, weights = output
        if not need:
            return result, None
        return result, (weights.mean(dim=-3) if average else weights)

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    handles = []
    try:
        for module in modules:
            handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
            handles.append(module.register_forward_hook(after))
        yield
    finally:
        for handle in handles:
            handle.remove()
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _as_maps(value: Any) -> np.ndarray:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise NoAttentionError(
            f"a captured value has shape {array.shape}; attention maps must be "
            "(batch, heads, queries, tokens)"
        )
    return array
