"""Attention maps of ``torch.nn.MultiheadAttention`` calls, computed beside them.

Asking a ``MultiheadAttention`` for its weights (``need_weights=True``) moves it
off its fused path and changes its outputs in the last bits (~1e-6).  This
source leaves every call as the caller made it (fast path included, so outputs
are bit-identical) and, in a forward hook, recomputes the per-head weights from
the same inputs and the module's own projection weights, exactly as
``F.multi_head_attention_forward`` does: in-projection, ``bias_k``,
``add_zero_attn``, ``key_padding_mask`` and ``attn_mask`` (boolean: ``True`` is
masked, as MultiheadAttention means it; float: added).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .transfer import named_to_host

__all__ = ["MhaSource", "multihead_weights"]

_ARG_NAMES = (
    "query",
    "key",
    "value",
    "key_padding_mask",
    "need_weights",
    "attn_mask",
    "average_attn_weights",
    "is_causal",
)


def _additive(mask: Any, dtype: Any) -> Any:
    import torch

    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf")
        )
    return mask.to(dtype)


def multihead_weights(module: Any, query: Any, key: Any, **kwargs: Any) -> Any:
    """Per-head weights ``(B, H, L, S)`` float32 of ``module(query, key, ...)``."""
    import torch
    import torch.nn.functional as F

    batched = query.dim() == 3
    if not batched:
        query, key = query.unsqueeze(1), key.unsqueeze(1)
    elif module.batch_first:
        query, key = query.transpose(0, 1), key.transpose(0, 1)
    query, key = query.float(), key.float()
    length, batch, embed = query.shape
    heads = module.num_heads
    head_dim = embed // heads
    if module._qkv_same_embed_dim:
        w_q, w_k, _ = module.in_proj_weight.float().chunk(3)
    else:
        w_q, w_k = module.q_proj_weight.float(), module.k_proj_weight.float()
    bias = module.in_proj_bias
    b_q, b_k = (None, None) if bias is None else bias.float().chunk(3)[:2]
    q, k = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k)
    float_dtype = torch.float32
    attn_mask = _additive(kwargs.get("attn_mask"), float_dtype)
    padding = _additive(kwargs.get("key_padding_mask"), float_dtype)
    if padding is not None and not batched:
        padding = padding.unsqueeze(0)
    if module.bias_k is not None:
        k = torch.cat([k, module.bias_k.float().repeat(1, batch, 1)])
        attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
        padding = None if padding is None else F.pad(padding, (0, 1))
    q = q.reshape(length, batch * heads, head_dim).transpose(0, 1)
    k = k.reshape(k.shape[0], batch * heads, head_dim).transpose(0, 1)
    if module.add_zero_attn:
        k = torch.cat([k, k.new_zeros(batch * heads, 1, head_dim)], dim=1)
        attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
        padding = None if padding is None else F.pad(padding, (0, 1))
    scores = (q * math.sqrt(1.0 / head_dim)) @ k.transpose(-2, -1)
    if attn_mask is not None:
        scores = scores + (attn_mask if attn_mask.dim() == 3 else attn_mask.unsqueeze(0))
    if padding is not None:
        source = padding.shape[-1]
        padding = padding.view(batch, 1, 1, source).expand(-1, heads, -1, -1)
        scores = scores + padding.reshape(batch * heads, 1, source)
    weights = torch.softmax(scores, dim=-1)
    return torch.nan_to_num(weights, nan=0.0).view(batch, heads, length, -1)


class MhaSource:
    """Records the per-head weights of every ``nn.MultiheadAttention`` in ``model``.

    ``modules`` (``[(name, module)]``) limits it to those.  ``start()`` adds a
    forward hook to each (removed by ``stop()``, idempotent);
    ``take()`` returns ``[(module name, (B, H, L, S) float32), ...]`` in call
    order since the last take.  The calls themselves are not changed.
    """

    def __init__(self, model: Any, modules: list[tuple[str, Any]] | None = None) -> None:
        import torch

        self.model = model
        self.modules = modules or [
            (name, module)
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.MultiheadAttention)
        ]
        self._handles: list[Any] = []
        self._records: list[tuple[str, Any]] = []

    def start(self) -> MhaSource:
        if self._handles:
            return self
        for name, module in self.modules:
            self._handles.append(module.register_forward_hook(self._hook(name), with_kwargs=True))
        return self

    def stop(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> MhaSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take(self) -> list[tuple[str, np.ndarray]]:
        records, self._records = self._records, []
        return named_to_host(records)  # one copy for the batch

    def _hook(self, name: str) -> Any:
        def after(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], _out: Any) -> None:
            import torch

            bound = dict(zip(_ARG_NAMES, args, strict=False))
            bound.update(kwargs)
            query, key = bound.pop("query"), bound.pop("key")
            with torch.no_grad():
                weights = multihead_weights(module, query, key, **bound)
            self._records.append((name, weights))

        return after
