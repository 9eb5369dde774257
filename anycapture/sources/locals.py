"""Final values of a local in the sites' functions, through ``capture()``."""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from ..scoped_capture import Capture
from ..storage import StoragePolicy
from .base import NotAttentionError, as_attention, is_half_float
from .sites import Site
from .transfer import to_host

__all__ = ["LocalsSource"]

_AS_NUMPY = StoragePolicy().converter()  # the default storage: tensors -> numpy


class LocalsSource:
    """Captures each site's local while started (composing with ``get_local``).

    timm-style modules with a ``fused_attn`` switch compute no map when fused: it is
    switched off while started and restored on stop.  What is taken must be
    attention; ``mode`` says what happens to a value that is not:

    - ``"strict"`` (names the user gave): refused, the run stops;
    - ``"skip"`` (sites found automatically): that layer is left out and said why in
      :attr:`skipped` (CaiT's talking-heads layers mix heads after the softmax); only
      when no layer is attention is it refused;
    - ``"pick"`` (``@get_local('attn_map', 'scores')``): per function, the first name
      whose values are attention.
    """

    def __init__(self, sites: list[Site], mode: str = "strict") -> None:
        self.sites = sites
        self.mode = mode
        self.skipped: dict[str, str] = {}
        self._names = {id(site.module): site.name for site in sites if site.module is not None}
        self._heads = {
            site.name: (site.heads, hasattr(site.module, "halo_size"))
            for site in sites
            if site.module is not None
        }
        by_var: dict[str, list[types.FunctionType]] = {}
        for site in sites:
            functions = by_var.setdefault(site.var, [])
            if site.function not in functions:
                functions.append(site.function)
        # tensors stay on the device until take(): one copy per forward pass (transfer.py)
        keep = StoragePolicy(keep_tensors=True)
        self._captures = [Capture(functions, [var], keep) for var, functions in by_var.items()]
        self._fused: list[tuple[Any, Any]] = []

    def start(self) -> None:
        modules = [s.module for s in self.sites if s.module is not None]
        self._fused = [
            (m, m.fused_attn) for m in dict.fromkeys(modules) if hasattr(m, "fused_attn")
        ]
        for module, _ in self._fused:
            module.fused_attn = False
        started: list[Capture] = []
        try:
            for cap in self._captures:
                cap.start()
                started.append(cap)
        except BaseException:
            for cap in started:
                cap.stop()
            self._restore()
            raise

    def stop(self) -> None:
        for cap in self._captures:
            cap.stop()
        self._restore()

    def _restore(self) -> None:
        for module, value in self._fused:
            module.fused_attn = value
        self._fused = []

    def take(self) -> list[tuple[str, Any]]:
        by_key: dict[str, list[tuple[str, Any]]] = {}  # 'Qualname.var' -> (layer, value)
        for cap in self._captures:
            for record in cap.records:
                layer = self._names.get(id(record.instance), record.function)
                for key, value in record.values.items():
                    by_key.setdefault(key, []).append((layer, value))
            cap.clear()
        on_host = _on_host(by_key)
        if self.mode == "pick":
            return self._pick(on_host)
        taken, refusal = [], None
        for key, items in on_host.items():
            for layer, value, half in items:
                value = unfold_heads(value, *self._heads.get(layer, (None, False)))
                try:
                    taken.append((layer, as_attention(value, f"{layer} ({key})", half)))
                except NotAttentionError as exc:
                    if self.mode == "strict":
                        raise
                    refusal = refusal or exc
                    self.skipped.setdefault(layer, str(exc))
        if not taken and refusal is not None:
            raise refusal
        return taken

    def _pick(self, by_key: dict[str, list[tuple[str, Any, bool]]]) -> list[tuple[str, Any]]:
        """Per function, the first captured name whose values are all attention."""
        chosen: dict[str, list[tuple[str, Any]]] = {}  # function -> its maps
        refusal: NotAttentionError | None = None
        for key, items in by_key.items():
            function = key.rsplit(".", 1)[0]
            if function in chosen:
                continue
            try:
                chosen[function] = [
                    (layer, as_attention(value, key, half)) for layer, value, half in items
                ]
            except NotAttentionError as exc:
                refusal = refusal or exc
        if not chosen and refusal is not None:
            raise refusal
        return [pair for maps in chosen.values() for pair in maps]


def unfold_heads(value: Any, heads: int | None, blocked: bool = False) -> Any:
    """A map whose heads are folded into its first axis, as ``(batch x heads, ...)``
    (einops' ``(b h)``), given back as ``(batch[ x blocks], heads, Q, K)``: timm's
    BoTNet ``(B*H, Q, K)``, HaloNet ``(B*H, blocks, Q, K)`` (blocks join the batch
    axis as windows do); NesT's ``(B, H, blocks, N, N)`` as ``(B*blocks, H, N, N)``
    (blocks as windows; MaxViT's ``(B, windows, H, N, N)`` as it is, which is also
    what a map with as many blocks as heads is taken for).  ``blocked``: the module
    is known to keep blocks second (HaloNet's ``halo_size``): the shapes alone cannot
    say so when there are as many blocks as heads.  Anything else, or no head count,
    is left as it is."""
    if not isinstance(heads, int) or heads < 1 or not isinstance(value, np.ndarray):
        return value
    if value.ndim == 5 and heads in value.shape[1:3]:  # NesT: (B, H, blocks, N, N)
        if value.shape[1] == heads != value.shape[2]:  # as many as heads: left in place
            value = value.swapaxes(1, 2)
        return value.reshape(-1, *value.shape[2:])
    if value.shape[0] % heads or value.ndim not in (3, 4):
        return value
    if value.ndim == 3 and heads > 1:
        return value.reshape(value.shape[0] // heads, heads, *value.shape[1:])
    if blocked:
        batch, blocks = value.shape[0] // heads, value.shape[1]
        unfolded = value.reshape(batch, heads, blocks, *value.shape[2:]).swapaxes(1, 2)
        return unfolded.reshape(batch * blocks, heads, *value.shape[2:])
    return value


def _on_host(by_key: dict[str, list[tuple[str, Any]]]) -> dict[str, list[tuple[str, Any, bool]]]:
    """Every recorded value as numpy with whether it was a 16-bit float (its rows are
    checked with that dtype's margin), the tensors in one transfer for them all;
    containers (a tuple of tensors) as the default storage converts them."""
    items = [item for items in by_key.values() for item in items]
    values = to_host([_AS_NUMPY(v) if isinstance(v, (tuple, list, dict)) else v for _, v in items])
    converted = iter(zip(values, (is_half_float(v) for _, v in items), strict=True))
    return {key: [(layer, *next(converted)) for layer, _ in pairs] for key, pairs in by_key.items()}
