"""Attention maps from ``softmax`` calls whose output is then applied to values.

A family-agnostic source: while started, a ``TorchFunctionMode`` sees the torch
calls of the forward pass (the whole model, or only the modules of ``scopes``).
Every ``softmax`` over the last axis (``torch.softmax``, ``F.softmax``,
``Tensor.softmax``, ``nn.Softmax``) becomes a candidate map, named after the
innermost module of the model on the call stack that made it (``torch.nn``'s own
containers and layers, such as the ``nn.Softmax`` itself, are skipped).  A
candidate is kept only once it, or a tensor computed from it (dropout, a cast,
talking-heads mixing), is the *left* operand of a matrix product that sums over
its last axis (``matmul``, ``@``, ``bmm``, ``einsum``): a distribution over keys
weighting values.  A classification head's softmax (never multiplied) or a softmax
applied from the right is not attention and is not kept.

The mode only looks: every call runs as the model made it, so outputs are
bit-identical.  Each call made under the mode passes through Python, so the
recorder narrows the scope after the first forward pass to the modules that made
maps (:meth:`SoftmaxSource.narrowed`).  torch is imported when started.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import sdpa
from .base import NotAttentionError, as_attention, is_half_float
from .locals import unfold_heads
from .scopes import heads_of, uncovered_scopes
from .transfer import named_to_host

__all__ = ["SoftmaxSource", "uncovered_scopes"]

_FRAMES_UP = 40  # how far up the stack a softmax call's module is looked for


@dataclass
class _Candidate:
    """One softmax output, and whether a product with values confirmed it."""

    name: str
    value: Any
    forward_on_stack: bool  # the naming module's forward was running: hooks would see it
    heads: int | None = None  # the module's head count: (batch x heads, Q, K) unfolds
    confirmed: bool = False
    holders: list[int] = field(default_factory=list)  # ids of tensors derived from it


class SoftmaxSource:
    """Records confirmed softmax attention maps during a forward pass of ``model``.

    ``scopes`` (``[(name, module)]``) limits the watching to those modules' forward
    calls; None watches the whole forward pass.  ``take()`` returns
    ``[(module name, (B, H, Q, K) float32), ...]`` in call order since the last take;
    candidates that are not attention weights are left out and listed in
    :attr:`skipped` with why.
    """

    def __init__(self, model: Any, scopes: list[tuple[str, Any]] | None = None) -> None:
        self.model = model
        self.scopes = scopes
        self.skipped: dict[str, str] = {}
        # softmax calls over the last axis never applied to values, per module: a
        # classification head, a gate, linear attention (said when nothing is found)
        self.unapplied: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._candidates: list[_Candidate] = []
        self._tainted: dict[int, tuple[_Candidate, Any, bool]] = {}  # id -> (.., flipped)
        self._thread: int | None = None
        self._mode: Any = None
        self._depth = 0
        self._handles: list[Any] = []

    @property
    def active(self) -> bool:
        return self._thread is not None

    def start(self) -> SoftmaxSource:
        if self.active:
            return self
        self._names = _own_modules(self.model)
        self._thread = threading.get_ident()
        self._mode = _mode_class()(self)
        if self.scopes is None:
            self._enter()
        else:
            for _, module in self.scopes:
                self._handles.append(module.register_forward_pre_hook(self._before))
                self._handles.append(module.register_forward_hook(self._after, always_call=True))
        return self

    def stop(self) -> None:
        if not self.active:
            return
        for handle in self._handles:
            handle.remove()
        self._handles = []
        while self._depth:
            self._exit()
        self._depth = 0
        self._tainted.clear()
        self._thread = None

    def __enter__(self) -> SoftmaxSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take(self) -> list[tuple[str, np.ndarray]]:
        self._forget_unapplied()
        kept, self._candidates, self._tainted = self._candidates, [], {}
        taken = []
        for (name, value), candidate in zip(
            named_to_host([(c.name, c.value) for c in kept]), kept, strict=True
        ):
            maps = _as_maps(value, candidate.heads)
            try:
                taken.append((name, as_attention(maps, name, is_half_float(value))))
            except NotAttentionError as exc:
                self.skipped.setdefault(name, str(exc))
        return taken

    def narrowed(self, taken: list[tuple[str, Any]]) -> SoftmaxSource | None:
        """A source watching only the modules that made ``taken`` (the maps of a first
        forward pass), when their forward calls are where every map was made; None
        when there were none; itself when the maps came from elsewhere."""
        names = dict.fromkeys(name for name, _ in taken)
        if not names:
            return None
        if not self._all_in_forwards:
            return self
        modules = dict(self.model.named_modules())
        return SoftmaxSource(self.model, [(n, modules[n]) for n in names if n in modules])

    _all_in_forwards = True  # set per take by _record: every map made inside a forward

    # -- scope hooks ------------------------------------------------------------------
    def _before(self, _module: Any, _args: Any) -> None:
        if threading.get_ident() == self._thread:
            if self._depth == 0:
                self._enter()
            else:
                self._depth += 1

    def _after(self, _module: Any, _args: Any, _out: Any) -> None:
        if threading.get_ident() == self._thread and self._depth:
            if self._depth == 1:
                self._exit()
            else:
                self._depth -= 1

    def _enter(self) -> None:
        self._mode.__enter__()
        self._depth = 1

    def _exit(self) -> None:
        self._mode.__exit__(None, None, None)
        self._depth = 0
        # what was not multiplied by values in its scope will not be: forget it
        self._tainted = {}
        self._forget_unapplied()

    def _forget_unapplied(self) -> None:
        for candidate in self._candidates:
            if not candidate.confirmed:
                self.unapplied[candidate.name] = self.unapplied.get(candidate.name, 0) + 1
        self._candidates = [c for c in self._candidates if c.confirmed]

    # -- called by the mode -----------------------------------------------------------
    def _seen(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if threading.get_ident() != self._thread:
            return
        kind = _KINDS.get(func)
        if kind == "softmax":
            self._softmax(args, kwargs, out)
        elif not self._tainted:
            return
        elif kind == "matmul":
            self._product(args, kwargs)
        elif kind == "einsum":
            self._einsum(args, out)
        else:
            self._follow(func, args, kwargs, out)

    def _softmax(self, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        ndim = getattr(out, "ndim", 0)
        if ndim < 2 or dim is None or dim not in (-1, ndim - 1):
            return
        name, in_forward, heads = self._caller(sys._getframe(3))
        candidate = _Candidate(name, out, in_forward, heads)
        self._candidates.append(candidate)
        self._taint(candidate, out, flipped=False)

    def _held(self, value: Any) -> tuple[_Candidate, Any, bool] | None:
        held = self._tainted.get(id(value))
        return held if held is not None and held[1] is value else None

    def _product(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """``a @ b`` sums over ``a``'s last axis and ``b``'s second to last: attention
        when that is the map's key axis (``attn @ v``, or ``v @ attn.mT`` as SHViT)."""
        left = args[0] if args else kwargs.get("input")
        right = args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("mat2"))
        for operand, summed_flipped in ((left, False), (right, True)):
            held = self._held(operand)
            if held is not None and held[2] == summed_flipped and _whole_map(*held):
                self._confirm(held[0])
                return

    def _einsum(self, args: tuple[Any, ...], out: Any) -> None:
        if not args or not isinstance(args[0], str):
            return
        operands = args[1:] if len(args) > 2 else tuple(args[1]) if len(args) == 2 else ()
        inputs, _, output = args[0].replace(" ", "").partition("->")
        for subscript, operand in zip(inputs.split(","), operands, strict=False):
            held = self._held(operand)
            if held is None or len(subscript) < 2 or "." in subscript or not output:
                continue
            key = subscript[-2] if held[2] else subscript[-1]
            if key not in output:  # summed over keys: weighting values
                if _whole_map(*held):
                    self._confirm(held[0])
            elif key in output[-2:]:  # mixed across heads (DeepViT, CaiT): followed
                self._taint(held[0], out, flipped=output[-1] != key)
            return

    def _follow(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """Tensors computed from a candidate are followed to its product with values."""
        for value in (*args, *kwargs.values()):
            items = value if isinstance(value, (list, tuple)) else (value,)
            for item in items:
                held = self._held(item)
                if held is not None:
                    swapped = _swaps_last_axes(func, args, item)
                    self._taint(held[0], out, flipped=held[2] != swapped)
                    return

    def _taint(self, candidate: _Candidate, out: Any, flipped: bool) -> None:
        """Follow ``out`` as the candidate's map (``flipped``: keys x queries)."""
        import torch

        outputs = out if isinstance(out, (list, tuple)) else (out,)
        size = candidate.value.numel()
        for tensor in outputs:
            # followed while it holds the whole map (mixed, permuted, cast): a slice, a
            # gate's product or the next layer's projection is no longer the map
            if (
                isinstance(tensor, torch.Tensor)
                and id(tensor) not in self._tainted
                and tensor.numel() == size
            ):
                self._tainted[id(tensor)] = (candidate, tensor, flipped)
                candidate.holders.append(id(tensor))

    def _confirm(self, candidate: _Candidate) -> None:
        candidate.confirmed = True
        if not candidate.forward_on_stack:
            self._all_in_forwards = False
        for held in candidate.holders:  # its followers are of no further interest
            self._tainted.pop(held, None)
        candidate.holders = []

    def _caller(self, frame: Any) -> tuple[str, bool, int | None]:
        """The innermost module of the model on the stack (``self``, or HF's
        ``module``), whether its own ``forward`` is running, and its head count."""
        names = self._names
        found: Any = None
        for _ in range(_FRAMES_UP):
            if frame is None:
                break
            code = frame.f_code
            if code.co_argcount:
                first = frame.f_locals.get(code.co_varnames[0])
                if found is None and id(first) in names:
                    found = first
                if found is not None and first is found and code.co_name == "forward":
                    return names[id(found)], True, heads_of(found)
            frame = frame.f_back
        if found is None:
            return "softmax", False, None
        return names[id(found)], False, heads_of(found)


def _own_modules(model: Any) -> dict[int, str]:
    """The model's modules by id, except torch.nn's own building blocks (an
    ``nn.Softmax``, ``nn.Sequential``, ``nn.Dropout`` never names a layer)."""
    own = {}
    for name, module in model.named_modules():
        if not type(module).__module__.startswith("torch.nn.modules"):
            own[id(module)] = name or type(module).__name__
    return own


def _whole_map(candidate: _Candidate, operand: Any, flipped: bool) -> bool:
    """Whether ``operand`` is the candidate's whole map, keys last (or second to last
    when ``flipped``)."""
    keys = candidate.value.shape[-1]
    if operand.numel() != candidate.value.numel() or operand.ndim < 2:
        return False
    return operand.shape[-2 if flipped else -1] == keys


def _swaps_last_axes(func: Any, args: tuple[Any, ...], tensor: Any) -> bool:
    """Whether ``func(*args)`` swaps ``tensor``'s last two axes (``transpose(-2, -1)``,
    ``.mT``, a ``permute`` doing so), which turns a map's keys to the rows."""
    kind = _KINDS.get(func)
    ndim = tensor.ndim
    if kind == "transpose" and len(args) >= 3:
        return {args[1] % ndim, args[2] % ndim} == {ndim - 2, ndim - 1}
    if kind == "mT":
        return True
    if kind == "permute":
        dims = args[1:] if len(args) > 2 else args[1] if len(args) == 2 else ()
        order = [d % ndim for d in dims]
        return len(order) == ndim and order[-2:] == [ndim - 1, ndim - 2]
    return False


def _as_maps(weights: np.ndarray, heads: int | None = None) -> np.ndarray:
    """``(B, H, Q, K)``.  Heads folded into the first axis (``(b h)``), or blocks
    beside the heads axis (Hiera's ``(B, H, windows, Q, K)``, MaxViT's ``(B, windows,
    H, Q, K)``), are unfolded by the module's head count (:func:`unfold_heads`); a
    3-D map without one is one head; other windows join the batch axis."""
    array = unfold_heads(np.asarray(weights), heads)
    if array.ndim == 2:
        return array[None, None]
    if array.ndim == 3:
        return array[:, None]
    if array.ndim > 4:
        return array.reshape(-1, *array.shape[-3:])
    return array


_KINDS: dict[Any, str] = {}
_MODE: Any = None


def _mode_class() -> Any:
    """The TorchFunctionMode class, and the calls it tells apart (built on first use)."""
    global _MODE
    if _MODE is not None:
        return _MODE
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    for func in (torch.softmax, F.softmax, torch.Tensor.softmax, torch.special.softmax):
        _KINDS[func] = "softmax"
    for func in (torch.matmul, torch.Tensor.matmul, torch.bmm, torch.Tensor.bmm):
        _KINDS[func] = "matmul"
    _KINDS[torch.Tensor.__matmul__] = "matmul"
    _KINDS[torch.einsum] = "einsum"
    for func in (torch.transpose, torch.Tensor.transpose, torch.swapaxes, torch.Tensor.swapaxes):
        _KINDS[func] = "transpose"
    _KINDS[torch.Tensor.mT.__get__] = "mT"
    _KINDS[torch.Tensor.permute] = "permute"
    _KINDS[torch.permute] = "permute"

    class _Watch(TorchFunctionMode):
        def __init__(self, source: SoftmaxSource) -> None:
            super().__init__()
            self.source = source

        def __torch_function__(
            self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            if func is sdpa._WRAPPER:  # torch names the SDPA source's wrapper: call it once
                func = func.__wrapped__
            out = func(*args, **kwargs)  # the model gets exactly this
            self.source._seen(func, args, kwargs, out)
            return out

    _MODE = _Watch
    return _MODE
