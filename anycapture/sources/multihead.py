"""Per-head weights of ``torch.nn.MultiheadAttention``, callers none the wiser."""

from __future__ import annotations

from typing import Any

from .sites import Site

__all__ = ["MultiheadSource", "ask_for_weights"]


class MultiheadSource:
    """Records ``nn.MultiheadAttention`` weights ``(batch, heads, queries, keys)``.

    While started, a pre-hook asks each module for ``need_weights=True,
    average_attn_weights=False`` (the fast path, which has no weights, is off) and a
    post-hook records the weights and gives the caller exactly the output it asked for.
    """

    def __init__(self, sites: list[Site]) -> None:
        self.sites = sites
        self._records: list[tuple[str, Any]] = []
        self._handles: list[Any] = []
        self._fastpath: bool | None = None

    def start(self) -> None:
        import torch

        if self._handles:
            return
        self._fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        for site in self.sites:
            asked: list[tuple[bool, bool]] = []  # per module: re-entrant calls nest
            self._handles.append(
                site.module.register_forward_pre_hook(ask_for_weights(asked), with_kwargs=True)
            )
            self._handles.append(site.module.register_forward_hook(self._answer(site.name, asked)))

    def stop(self) -> None:
        import torch

        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._fastpath is not None:
            torch.backends.mha.set_fastpath_enabled(self._fastpath)
            self._fastpath = None

    def take(self) -> list[tuple[str, Any]]:
        records, self._records = self._records, []
        return records

    def _answer(self, name: str, asked: list[tuple[bool, bool]]) -> Any:
        def after(_module: Any, _args: Any, output: Any) -> Any:
            need, average = asked.pop()
            result, weights = output
            self._records.append((name, weights.detach().float().cpu().numpy()))
            if not need:
                return result, None
            return result, (weights.mean(dim=-3) if average else weights)

        return after


def ask_for_weights(asked: list[tuple[bool, bool]]) -> Any:
    """A forward pre-hook for ``nn.MultiheadAttention``: every call asks for per-head
    weights (``need_weights=True, average_attn_weights=False``); what the caller asked
    for is appended to ``asked`` so the result can be given back as it expected."""

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

    return before
