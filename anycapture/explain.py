"""Class-specific relevance maps: Chefer, Gur & Wolf, "Generic Attention-model
Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV 2021.

With ``R = I`` (tokens x tokens), for each attention layer in the order it ran,
``R += mean_heads(max(0, dy/dA * A)) @ R``, where ``A`` is the layer's attention and
``y`` the target class's logit; the map is the CLS row of ``R`` over the patches.

Gradients need the attention inside the autograd graph: the maps are captured with
``anycapture.capture(..., keep_tensors=True, keep_grad=True)`` in one forward pass
(fused attention, which never materialises ``A``, is switched off for that pass and
restored), and ``torch.autograd.grad`` differentiates each target logit with respect
to them.  torch is imported lazily.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .attention import AttentionRecorder, layout_of
from .errors import UsageError
from .layout import TokenLayout
from .scoped_capture import capture
from .sources.multihead import ask_for_weights
from .sources.sites import Site, is_multihead_attention

__all__ = ["ClassChoice", "ExplainResult", "Explanation", "class_names", "explain", "pick_classes"]

_TOP = re.compile(r"top([1-9][0-9]?)")


@dataclass(frozen=True)
class ClassChoice:
    """One explained class: its index, its name (None without label names), the
    model's softmax probability for it and its rank (1 = the prediction)."""

    index: int
    name: str | None
    probability: float
    rank: int = 1

    def label(self) -> str:
        """The name's first synonym (``goldfish``), or ``class 7``."""
        return self.name.split(",")[0].strip() if self.name else f"class {self.index}"


@dataclass(frozen=True)
class Explanation:
    """The relevance of every token for one class, as seen from the CLS token."""

    target: ClassChoice
    row: np.ndarray  # (N,): the CLS row of R (or the patch rows' mean without prefix tokens)

    def patch_map(self, layout: TokenLayout) -> np.ndarray:
        """The relevance over the patches, ``(rows, cols)``."""
        return layout.split(self.row)[1]


@dataclass
class ExplainResult:
    """Per image, one :class:`Explanation` per chosen class (best first for ``topK``)."""

    images: list[list[Explanation]]
    notes: list[str] = field(default_factory=list)


def class_names(model: Any) -> list[str] | None:
    """The model's label names: timm's ``pretrained_cfg['label_names']``, a Hugging
    Face config's ``id2label``, or timm's ImageNet info for a 1k/21k-class head."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("label_names") if isinstance(cfg, dict) else None
    if names:
        return [str(n) for n in names]
    id2label = getattr(getattr(model, "config", None), "id2label", None)
    if isinstance(id2label, dict) and id2label:
        return [str(id2label[i]) for i in sorted(id2label, key=int)]
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset
    except ImportError:
        return None
    subset = infer_imagenet_subset(model)
    if subset is None:
        return None
    info = ImageNetInfo(subset)
    return [info.index_to_description(i) for i in range(info.num_classes())]


def pick_classes(
    spec: str | int | None, probabilities: np.ndarray, names: Sequence[str] | None
) -> list[int]:
    """The class indices ``spec`` names for one image: ``None`` or ``top1`` (the
    prediction), ``topK`` (the K best), an index, or a label name (case-insensitive;
    any comma-separated synonym of an ImageNet description matches)."""
    count = int(probabilities.shape[-1])
    text = "top1" if spec is None else str(spec).strip()
    best = np.argsort(-probabilities, kind="stable")
    top = _TOP.fullmatch(text.lower())
    if top:
        k = int(top.group(1))
        if k > count:
            raise UsageError(f"--class {text}: the model has only {count} classes")
        return [int(i) for i in best[:k]]
    if re.fullmatch(r"-?[0-9]+", text):
        index = int(text)
        if not 0 <= index < count:
            raise UsageError(
                f"--class {index} is out of range: the model has classes 0..{count - 1}"
            )
        return [index]
    if not names:
        raise UsageError(
            f"--class {text!r}: the model has no label names; give a class index 0..{count - 1} "
            "or top1/top3"
        )
    wanted = text.lower()
    for index, name in enumerate(names):
        if wanted == name.lower() or wanted in (s.strip().lower() for s in name.split(",")):
            return [index]
    raise UsageError(
        f"--class {text!r} is not one of the model's {len(names)} label names; give an index "
        "or an exact name (e.g. " + ", ".join(repr(n) for n in names[:3]) + ")"
    )


def explain(
    model: Any,
    inputs: Any,
    classes: str | int | None = None,
    sites: Sequence[Site] | None = None,
    layout: TokenLayout | None = None,
) -> ExplainResult:
    """Chefer et al. relevance of ``inputs`` (a ``(B, 3, H, W)`` tensor) for the
    classes ``classes`` names (see :func:`pick_classes`), one forward pass for all.

    Raises :class:`UsageError` (one line) where gradients cannot be had: no class
    logits, windowed or class-attention layers, attention outside the graph.
    """
    import torch

    sites = list(sites) if sites is not None else AttentionRecorder(model).sites
    notes: list[str] = []
    with torch.inference_mode(False), torch.enable_grad():
        with _explicit(sites, notes) as tensors:
            # the input carries the graph even when the parameters are frozen
            x = inputs.detach().clone().requires_grad_(True)
            logits = _logits(model(x), model)
        _check_tensors(tensors)
        _check_square(tensors, x.shape[0])
        if layout is None:
            layout = layout_of(model, (x.shape[-2], x.shape[-1]), tensors[0].shape[-1])
        probabilities = torch.softmax(logits.detach().double(), dim=-1).cpu().numpy()
        names = class_names(model)
        chosen = [pick_classes(classes, p, names) for p in probabilities]
        rows: list[list[Explanation]] = [[] for _ in chosen]
        for position in range(len(chosen[0])):
            targets = [c[position] for c in chosen]
            y = logits[torch.arange(len(targets)), torch.tensor(targets)].sum()
            relevance = _relevance(tensors, _gradients(y, tensors), layout).cpu().numpy()
            for b, index in enumerate(targets):
                target = _choice(index, probabilities[b], names)
                rows[b].append(Explanation(target, relevance[b]))
    return ExplainResult(rows, notes)


def _choice(index: int, probabilities: np.ndarray, names: Sequence[str] | None) -> ClassChoice:
    name = names[index] if names and index < len(names) else None
    rank = 1 + int((probabilities > probabilities[index]).sum())
    return ClassChoice(index, name, float(probabilities[index]), rank)


@contextmanager
def _explicit(sites: Sequence[Site], notes: list[str]) -> Iterator[list[Any]]:
    """Collect every site's attention, in the order the layers run, as tensors in the
    graph: fused attention is off and ``nn.MultiheadAttention`` is asked for per-head
    weights while the block runs; everything is restored on exit."""
    multihead = [s for s in sites if is_multihead_attention(s.module)]
    local = [s for s in sites if not is_multihead_attention(s.module)]
    if multihead and local:
        raise UsageError(
            "explain: the model mixes nn.MultiheadAttention with other attention modules, "
            "whose order of calls cannot be told apart; name one with --capture"
        )
    collected: list[Any] = []
    with ExitStack() as stack:
        if multihead:
            stack.enter_context(_multihead_tensors(multihead, collected))
        else:
            stack.enter_context(_local_tensors(local, notes, collected))
        yield collected


@contextmanager
def _local_tensors(sites: Sequence[Site], notes: list[str], out: list[Any]) -> Iterator[None]:
    """``capture(..., keep_tensors=True, keep_grad=True)`` of the sites' local."""
    variables = sorted({s.var for s in sites})
    if len(variables) > 1:
        raise UsageError(
            f"explain: the attention sites capture different variables ({', '.join(variables)}); "
            "name the one holding the weights with --capture 'module:Class.method:variable'"
        )
    functions = list(dict.fromkeys(s.function for s in sites))
    modules = {id(s.module) for s in sites if s.module is not None}
    fused = [
        (m, m.fused_attn)
        for m in dict.fromkeys(s.module for s in sites if s.module is not None)
        if getattr(m, "fused_attn", False)
    ]
    if fused:
        notes.append(
            f"explain: fused attention (SDPA) was switched off in {len(fused)} module(s) for "
            "the explained forward pass (gradients need the attention weights), and restored"
        )
    try:
        for module, _ in fused:
            module.fused_attn = False
        with capture(functions, variables[0], keep_tensors=True, keep_grad=True) as cap:
            yield
            for record in cap.records:  # in the order the calls returned
                if not modules or id(record.instance) in modules:
                    out.extend(record.values.values())
    finally:
        for module, value in fused:
            module.fused_attn = value


@contextmanager
def _multihead_tensors(sites: Sequence[Site], out: list[Any]) -> Iterator[None]:
    """Hooks ask each ``nn.MultiheadAttention`` for per-head weights, keep them (in the
    graph) and give the caller exactly the output it asked for."""
    import torch

    def answer(asked: list[tuple[bool, bool]]) -> Any:
        def after(_module: Any, _args: Any, output: Any) -> Any:
            need, average = asked.pop()
            result, weights = output
            out.append(weights)
            if not need:
                return result, None
            return result, (weights.mean(dim=-3) if average else weights)

        return after

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fast path computes no weights
    handles = []
    try:
        for site in sites:
            asked: list[tuple[bool, bool]] = []
            handles.append(
                site.module.register_forward_pre_hook(ask_for_weights(asked), with_kwargs=True)
            )
            handles.append(site.module.register_forward_hook(answer(asked)))
        yield
    finally:
        for handle in handles:
            handle.remove()
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _logits(output: Any, model: Any) -> Any:
    import torch

    logits = getattr(output, "logits", output)
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    if getattr(model, "num_classes", None) == 0 or not (
        isinstance(logits, torch.Tensor) and logits.ndim == 2
    ):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise UsageError(
            f"explain needs class logits (batch, classes) but {type(model).__name__} returns "
            f"{shape} (no classifier head?); use a model with a classification head"
        )
    return logits


def _check_tensors(tensors: Sequence[Any]) -> None:
    import torch

    if not tensors:
        raise UsageError("explain: the forward pass ran but no attention was captured")
    for value in tensors:
        if not isinstance(value, torch.Tensor) or not value.requires_grad:
            raise UsageError(
                "explain: the captured attention is not in the autograd graph (computed "
                "under no_grad, detached, or not a tensor), so it has no gradient"
            )


def _check_square(tensors: Sequence[Any], batch: int) -> None:
    tokens = tensors[0].shape[-1]
    for i, t in enumerate(tensors):
        shape = tuple(t.shape)
        if t.ndim == 3 and batch == 1:
            continue  # unbatched nn.MultiheadAttention
        if t.ndim != 4 or shape[0] != batch:
            raise UsageError(
                f"explain: attention layer {i} has maps of shape {shape} for {batch} image(s) "
                "(windowed attention?); Chefer et al.'s rule needs image-wide attention"
            )
        if shape[-2:] != (tokens, tokens):
            raise UsageError(
                f"explain: attention layer {i} maps {shape[-2]} queries to {shape[-1]} tokens; "
                f"Chefer et al.'s rule needs every layer square over the same {tokens} tokens "
                "(class-attention or patch-only layers, as in CaiT, are not covered)"
            )


def _gradients(y: Any, tensors: Sequence[Any]) -> list[Any]:
    """dy/dA per layer.  Where the captured value is a reshaped view of the tensor the
    layer used (``nn.MultiheadAttention``'s per-head weights), its base is used."""
    import torch

    grads = list(torch.autograd.grad(y, tensors, retain_graph=True, allow_unused=True))
    for i, (tensor, grad) in enumerate(zip(tensors, grads, strict=True)):
        if grad is not None:
            continue
        base = tensor._base
        if base is not None and base.numel() == tensor.numel() and base.requires_grad:
            (grad,) = torch.autograd.grad(y, [base], retain_graph=True, allow_unused=True)
        if grad is None:
            raise UsageError(
                f"explain: the logit does not depend on the captured attention of layer {i} "
                "(the model uses another tensor), so there is no gradient to weight it by"
            )
        grads[i] = grad.reshape(tensor.shape)
    return grads


def _relevance(tensors: Sequence[Any], grads: Sequence[Any], layout: TokenLayout) -> Any:
    """``(B, N)``: the CLS row of R (mean of the patch rows when there is no prefix token)."""
    import torch

    first = tensors[0] if tensors[0].ndim == 4 else tensors[0][None]
    batch, tokens = first.shape[0], first.shape[-1]
    relevance = torch.eye(tokens, dtype=torch.float64, device=first.device)
    relevance = relevance.expand(batch, tokens, tokens)
    for attention, grad in zip(tensors, grads, strict=True):
        attention, grad = attention.detach().double(), grad.double()
        if attention.ndim == 3:
            attention, grad = attention[None], grad[None]
        cam = (grad * attention).clamp(min=0).mean(dim=1)
        relevance = relevance + cam @ relevance
    if layout.prefix_tokens == 0:
        return relevance.mean(dim=1)
    return relevance[:, 0]
