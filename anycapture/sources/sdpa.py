"""Attention maps from ``F.scaled_dot_product_attention`` calls, computed beside them.

Fused attention (``torch.nn.functional.scaled_dot_product_attention``) never
materialises its weights.  While an :class:`SdpaSource` is started, every call of
that function made by the starting thread is passed through untouched (so the
model's outputs are bit-identical) and, beside it, the weights
``softmax(q k^T * scale + mask)`` are computed in float32 from the same
arguments and attributed to the model's module that made the call.

Why a scoped patch and not a ``TorchFunctionMode``: a mode is suspended while it
handles a call, so an SDPA call nested in another overridable function
(``F.multi_head_attention_forward`` calls it) would be missed, and a mode sends
every other torch call of the forward through Python.  The patch replaces the
function where it is reachable by name (``torch.nn.functional``,
``torch._C._nn``, and any module that imported it by name), and only while
started; ``stop()`` puts every original back.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

import numpy as np

from .transfer import named_to_host

__all__ = ["SdpaSource", "attention_weights"]

_LOCK = threading.Lock()
_ACTIVE: list[SdpaSource] = []  # started sources, all fed by one installed wrapper
_PATCHED: list[tuple[dict[str, Any], str]] = []  # (module dict, name) holding the wrapper
_ORIGINAL: Any = None
_WRAPPER: Any = None
_SCANNED: set[str] = set()  # modules already searched for the function imported by name
_HOLDERS: list[tuple[dict[str, Any], str]] = []  # where they found it


def attention_weights(
    query: Any,
    key: Any,
    attn_mask: Any = None,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Any:
    """The weights SDPA applies to ``value``: float32, ``(..., heads, L, S)``.

    Same semantics as ``scaled_dot_product_attention``: a boolean mask keeps
    ``True`` positions, any other mask is added to the scores; ``is_causal`` keeps
    the lower triangle; ``scale`` defaults to ``1/sqrt(E)``; ``enable_gqa`` repeats
    key heads for grouped-query attention.  Rows masked entirely give zeros.
    """
    import torch

    q, k = query.float(), key.float()
    if enable_gqa and q.dim() >= 3 and k.shape[-3] != q.shape[-3]:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)
    factor = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    scores = (q @ k.transpose(-2, -1)) * factor
    length, source = scores.shape[-2], scores.shape[-1]
    if is_causal:
        keep = torch.ones(length, source, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.float()
    weights = torch.softmax(scores, dim=-1)
    return torch.nan_to_num(weights, nan=0.0)  # fully masked rows: 0, not NaN


def _bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """SDPA's arguments by name (positional order of its signature)."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


class SdpaSource:
    """Records SDPA attention weights during a forward pass of ``model``.

    ``start()`` begins intercepting, ``stop()`` restores everything (idempotent),
    ``take()`` returns ``[(module name, (B, H, Q, K) float32 array), ...]`` in call
    order since the last take.  Only calls made by the thread that called
    ``start()`` are recorded; other threads' calls pass through untouched.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self._names: dict[int, str] = {}
        self._records: list[tuple[str, Any]] = []
        self._thread: int | None = None
        self.skipped = 0  # calls whose weights could not be computed (nested tensors)

    @property
    def active(self) -> bool:
        return self._thread is not None

    def start(self) -> SdpaSource:
        if self.active:
            return self
        self._names = {id(m): n for n, m in self.model.named_modules()}
        self._thread = threading.get_ident()
        with _LOCK:
            if not _ACTIVE:
                _install()
            _ACTIVE.append(self)
        return self

    def stop(self) -> None:
        if not self.active:
            return
        with _LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            if not _ACTIVE:
                _uninstall()
        self._thread = None

    def __enter__(self) -> SdpaSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take(self) -> list[tuple[str, np.ndarray]]:
        records, self._records = self._records, []
        return [(name, _as_maps(array)) for name, array in named_to_host(records)]  # one copy

    # -- called by the wrapper ------------------------------------------------------
    def _record(self, frame: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        import torch

        bound = _bind(args, kwargs)
        query, key = bound["query"], bound["key"]
        if getattr(query, "is_nested", False) or getattr(key, "is_nested", False):
            self.skipped += 1
            return
        with torch.no_grad():
            weights = attention_weights(
                query,
                key,
                bound.get("attn_mask"),
                bool(bound.get("is_causal", False)),
                bound.get("scale"),
                bool(bound.get("enable_gqa", False)),
            )
        self._records.append((self._caller(frame), weights))

    def _caller(self, frame: Any) -> str:
        """The innermost module of the model on the call stack: the first argument
        (``self``, or HF's ``module``) of the nearest frame that is one."""
        names = self._names
        while frame is not None:
            code = frame.f_code
            if code.co_argcount:
                first = frame.f_locals.get(code.co_varnames[0])
                name = names.get(id(first))
                if name is not None:
                    return name
            frame = frame.f_back
        return "scaled_dot_product_attention"


def _as_maps(weights: np.ndarray) -> np.ndarray:
    array = weights.astype(np.float32, copy=False)
    if array.ndim == 2:
        return array[None, None]
    if array.ndim == 3:
        return array[:, None]
    if array.ndim > 4:
        return array.reshape(-1, *array.shape[-3:])
    return array


def _install() -> None:
    """Put the wrapper wherever the original is reachable by name."""
    global _ORIGINAL, _WRAPPER
    import torch.nn.functional as F

    original = F.scaled_dot_product_attention

    def scaled_dot_product_attention(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)  # the model gets exactly this
        thread = threading.get_ident()
        for source in tuple(_ACTIVE):
            if source._thread == thread:
                source._record(sys._getframe(1), args, kwargs)
        return result

    scaled_dot_product_attention.__wrapped__ = original  # type: ignore[attr-defined]
    scaled_dot_product_attention.__doc__ = original.__doc__
    _ORIGINAL, _WRAPPER = original, scaled_dot_product_attention
    for namespace, name in _holders(original):
        if namespace.get(name) is original:
            namespace[name] = scaled_dot_product_attention
            _PATCHED.append((namespace, name))


def _holders(original: Any) -> list[tuple[dict[str, Any], str]]:
    """Module globals bound to the original function.  Each module is searched once
    (a full search takes ~10-70 ms with torch and transformers loaded); later
    installs search only modules imported since."""
    if len(_SCANNED) >= len(sys.modules) and all(n in _SCANNED for n in tuple(sys.modules)[-8:]):
        return _HOLDERS  # nothing imported since the last search
    for module_name, module in list(sys.modules.items()):
        if module_name in _SCANNED:
            continue
        _SCANNED.add(module_name)
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict) or namespace is globals():
            continue
        for name, value in list(namespace.items()):
            if value is original:
                _HOLDERS.append((namespace, name))
    return _HOLDERS


def _uninstall() -> None:
    global _ORIGINAL, _WRAPPER
    for namespace, name in _PATCHED:
        if namespace.get(name) is _WRAPPER:  # leave anything set since then alone
            namespace[name] = _ORIGINAL
    _PATCHED.clear()
    _ORIGINAL = _WRAPPER = None
