"""Finding a model's attention and recording its maps, one array per layer.

:class:`AttentionRecorder` picks the capture sources for a model (see
:mod:`anycapture.sources`): ``--capture`` sites; else every module whose
``forward`` computes a local named ``attn`` (timm's ``Attention`` and most of its
relatives), HuggingFace attention modules under eager attention (their local
``attn_weights``) and every ``nn.MultiheadAttention`` (weights computed beside the
call); else the functions the model's own code decorates with ``@get_local``
(seed style); else every ``scaled_dot_product_attention`` call, its weights
computed beside it.  ``get_local`` is left as the user had it: the render's
capture composes with it.  torch is imported lazily.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np

from .layout import TokenLayout, default_prefix_names
from .sources import (
    CaptureSource,
    LocalsSource,
    Site,
    custom_sites,
    decorated_sites,
    find_sites,
)
from .sources.base import NoAttentionError
from .sources.sites import is_multihead_attention

__all__ = [
    "AttentionRecorder",
    "NoAttentionError",
    "Site",
    "find_sites",
    "is_channel_attention",
    "layout_of",
]


MAX_PREFIX_QUERIES = 8  # class attention: CLS (and distillation, registers) query alone


def layout_of(model: Any, input_hw: tuple[int, int], maps: int | Mapping[str, Any]) -> TokenLayout:
    """The image's token layout: from a HuggingFace config or timm metadata, else
    inferred from the token count of the self-attention layers.

    ``maps``: the forward pass's ``{layer: (B, H, Q, N)}`` maps (or a token count).
    Only layers whose queries are their keys (self-attention) tell the image's token
    count: a cross-attention layer's keys (77 text tokens) never make the layout.
    """
    from .hf import layout_from_config

    if not isinstance(maps, int):  # XCiT's channel x channel maps say nothing of tokens
        modules = dict(model.named_modules()) if hasattr(model, "named_modules") else {}
        maps = {
            name: m
            for name, m in maps.items()
            if not is_channel_attention(modules.get(name.split("#")[0]), m)
        } or maps
    counts = _self_attention_counts(maps)
    keys = {int(m.shape[-1]) for m in maps.values()} if not isinstance(maps, int) else {maps}
    candidates = (layout_from_config(model, input_hw), _metadata_layout(model, input_hw))
    known = [layout for layout in candidates if layout is not None]
    for layout in known:  # the last self-attention layer's tokens (or no such layer)
        if not counts or layout.for_tokens(counts[-1]) is not None:
            return layout
    for layout in known:  # another layer's keys: XCiT's last token layers are class attention
        if any(layout.for_tokens(count) is not None for count in keys):
            return layout
    if not counts:  # class attention (a few prefix queries) still has the image's keys
        counts = [int(m.shape[-1]) for m in maps.values() if m.shape[-2] <= MAX_PREFIX_QUERIES]
    if not counts:
        raise NoAttentionError(_only_cross_message(model, maps))
    try:
        return TokenLayout.infer(counts[-1], input_hw)
    except ValueError as exc:
        raise NoAttentionError(str(exc)) from None


def is_channel_attention(module: Any, maps: Any) -> bool:
    """XCiT's cross-covariance attention: a head's channels attend to each other (the
    map is head width x head width, tokens summed over), told by the module's ``qkv``."""
    width = getattr(getattr(module, "qkv", None), "in_features", None)
    heads, queries, keys = int(maps.shape[-3]), int(maps.shape[-2]), int(maps.shape[-1])
    return isinstance(width, int) and queries == keys == width // heads


def _self_attention_counts(maps: int | Mapping[str, Any]) -> list[int]:
    """The token counts of the self-attention layers (queries = keys), last layer last;
    a bare count stands for a self-attention layer's."""
    if isinstance(maps, int):
        return [maps]
    return [int(m.shape[-1]) for m in maps.values() if m.shape[-2] == m.shape[-1]]


def _metadata_layout(model: Any, input_hw: tuple[int, int]) -> TokenLayout | None:
    """timm's ``num_prefix_tokens`` and ``patch_embed.grid_size`` (or patch size on a
    dynamic image size), when the model has them."""
    prefix = getattr(model, "num_prefix_tokens", None)
    patch_embed = getattr(model, "patch_embed", None)
    patch_size = _pair(getattr(patch_embed, "patch_size", None))
    grid = _pair(getattr(patch_embed, "grid_size", None))
    if patch_size and getattr(model, "dynamic_img_size", False):
        grid = (input_hw[0] // patch_size[0], input_hw[1] // patch_size[1])
    if not isinstance(prefix, int) or grid is None:
        return None
    return TokenLayout(prefix, grid, _prefix_names(model, prefix), patch_size)


def _only_cross_message(model: Any, maps: int | Mapping[str, Any]) -> str:
    assert not isinstance(maps, int)
    name, value = next(iter(maps.items()))
    queries, keys = int(value.shape[-2]), int(value.shape[-1])
    from .sources.candidates import describe_candidates

    return (
        f"{type(model).__name__} has only cross-attention (queries and keys of different "
        f"lengths, e.g. {name}: {queries} queries x {keys} keys), so the image's token "
        "layout cannot be told from it: capture a self-attention layer of the image with "
        f"--capture 'package.module:Class.method:variable' (what it can pick here: "
        f"{describe_candidates(model)}), "
        "or give the model `num_prefix_tokens` and `patch_embed.grid_size`"
    )


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

    ``kind`` says which sources were chosen: ``"capture"`` (``--capture``),
    ``"auto"`` (``attn`` / HF ``attn_weights`` locals and ``nn.MultiheadAttention``),
    ``"get_local"``, ``"sdpa"`` (``scaled_dot_product_attention`` calls, known
    once a forward pass made them) or ``"softmax"`` (softmax outputs applied to
    values, :mod:`anycapture.sources.softmax`, known once a forward pass made them).
    """

    def __init__(self, model: Any, capture_spec: str | None = None) -> None:
        self.model = model
        self.sources: list[CaptureSource] = []
        self._fallback: CaptureSource | None = None  # see below
        self._softmax: Any = None  # SoftmaxSource: softmax outputs applied to values
        self._softmax_unapplied: dict[str, int] = {}  # its softmaxes never weighting values
        self._last_input: tuple[Any, Any] = ((), {})  # replayed to test --capture candidates
        self._narrowed = True
        self._merge = False
        if capture_spec:
            self.kind, self.sites = "capture", custom_sites(model, capture_spec)
            self.sources.append(LocalsSource(self.sites))
            return
        found = find_sites(model) + _hf_sites(model)
        self.kind, self.sites = "auto", _in_module_order(model, found)
        local = [s for s in self.sites if not is_multihead_attention(s.module)]
        multihead = [s for s in self.sites if is_multihead_attention(s.module)]
        if local:
            self.sources.append(LocalsSource(local, mode="skip"))
        if multihead:
            from .sources.mha import MhaSource

            self.sources.append(MhaSource(model, [(s.name, s.module) for s in multihead]))
        if not self.sources:
            self.kind, self.sites = "get_local", decorated_sites(model)
            if self.sites:
                self.sources.append(LocalsSource(self.sites, mode="pick"))
        # SDPA calls are recorded beside the other sources when nothing else is found,
        # when decorated plain functions may be anyone's (used only if they record
        # nothing), and in a HuggingFace model not in eager attention (its attention
        # modules keep no weights: their SDPA maps join the others').
        self._merge = _fused_hf(model)
        if not self.sources or self._merge or all(s.module is None for s in self.sites):
            from .sources.sdpa import SdpaSource

            self._fallback = SdpaSource(model)
            if not self.sources:
                self.kind = "sdpa"
        self._softmax = _softmax_source(model, self.sites if self.sources else None)
        self._narrowed = False

    @property
    def skipped(self) -> dict[str, str]:
        """Layers found automatically but left out because their value is not
        attention, with why: ``{layer name: reason}``."""
        sources = [*self.sources, *([self._softmax] if self._softmax else [])]
        return {k: v for s in sources for k, v in getattr(s, "skipped", {}).items()}

    def _unapplied(self) -> str:
        """Where softmax outputs were made but never weighted values, if anywhere."""
        unapplied = list(self._softmax_unapplied)
        if not unapplied:
            return ""
        where = ", ".join(unapplied[:3]) + (", ..." if len(unapplied) > 3 else "")
        return (
            f"; the softmax outputs of {where} are not applied to values by a matrix "
            "product (linear or gated attention has no query x key map)"
        )

    def _keep_input(self, _model: Any, args: Any, kwargs: Any) -> None:
        self._last_input = (args, kwargs)

    def _replay(self) -> None:
        """The last forward pass again (no gradients): ``--capture`` candidates are
        offered only when their values are attention."""
        import torch

        args, kwargs = self._last_input
        with torch.inference_mode():
            self.model(*args, **kwargs)

    def _add_softmax_maps(self, per_name: dict[str, list[np.ndarray]]) -> None:
        """The softmax source's maps of layers no other source recorded.  After its
        first forward pass it watches only the modules that made maps (or stops)."""
        if self._softmax is None:
            return
        found = self._softmax.take()
        self._softmax_unapplied = dict(self._softmax.unapplied)
        if not self._narrowed:
            self._narrowed = True
            self._softmax = self._softmax.narrowed(found)
        if found and not per_name:
            self.kind, self.sites = "softmax", []  # layers named by the modules making them
        covered = set(per_name)
        for name, value in found:
            if name not in covered:
                per_name.setdefault(name, []).append(value)

    @property
    def seed_style(self) -> bool:
        """Whether the maps come from the names the model's code gives ``@get_local``."""
        return self.kind == "get_local"

    @contextmanager
    def recording(self) -> Iterator[AttentionRecorder]:
        """Capture while the block runs; everything is restored on exit."""
        with ExitStack() as stack:
            if self.kind != "capture":  # a pass that finds nothing is replayed to test candidates
                handle = self.model.register_forward_pre_hook(self._keep_input, with_kwargs=True)
                stack.callback(handle.remove)
            beside = [self._fallback, self._softmax]
            for source in [*self.sources, *(s for s in beside if s is not None)]:
                source.start()
                stack.callback(source.stop)
            yield self

    def take(self) -> dict[str, np.ndarray]:
        """The maps recorded since the last call, ``{layer name: (B, H, Q, N)}``, in the
        model's module order (a module called twice gives ``name``, ``name#1``)."""
        per_name: dict[str, list[np.ndarray]] = {}
        for source in self.sources:
            for name, value in source.take():
                per_name.setdefault(name, []).append(value)
        beside = self._fallback.take() if self._fallback else []
        if beside and (self._merge or not per_name):
            if not per_name:
                self.kind, self.sites = "sdpa", []  # layers named by the modules calling it
            covered = set(per_name)
            for name, value in beside:
                if name not in covered:
                    per_name.setdefault(name, []).append(value)
        self._add_softmax_maps(per_name)
        order = {name: i for i, (name, _) in enumerate(self.model.named_modules())}
        maps: dict[str, np.ndarray] = {}
        for name in sorted(per_name, key=lambda n: order.get(n, len(order))):
            for i, value in enumerate(per_name[name]):
                maps[name if i == 0 else f"{name}#{i}"] = value
        if not maps and self._fallback is not None:
            from .sources.candidates import describe_candidates

            raise NoAttentionError(
                f"no attention found in {type(self.model).__name__}: no module's forward "
                "computes a local named 'attn', none is an nn.MultiheadAttention, no function "
                "is decorated with @get_local and the forward pass made no "
                "scaled_dot_product_attention call and no softmax applied to values; name the "
                "function and variable with "
                "--capture 'package.module:Class.forward:variable' "
                f"({describe_candidates(self.model, self._replay)}){self._unapplied()}"
            )
        if not maps:
            raise NoAttentionError(
                "the forward pass ran but no attention map was recorded: the attention code "
                "took a path that never assigns the variable (fused attention?), or --capture "
                "names a function the model does not call"
            )
        return maps


def _softmax_source(model: Any, sites: list[Site] | None) -> Any:
    """The softmax source: over the whole forward pass when nothing else was found
    (``sites`` None), else over the attention-like modules no site covers (None when
    there are none, as in timm's ViTs)."""
    from .sources.softmax import SoftmaxSource, uncovered_scopes

    if sites is None:
        return SoftmaxSource(model)
    scopes = uncovered_scopes(model, [s.module for s in sites if s.module is not None])
    return SoftmaxSource(model, scopes) if scopes else None


def _hf_sites(model: Any) -> list[Site]:
    """HuggingFace attention modules under eager attention (local ``attn_weights``)."""
    from .hf import attention_sites

    return [Site(*site) for site in attention_sites(model)]


def _in_module_order(model: Any, sites: list[Site]) -> list[Site]:
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    return sorted(sites, key=lambda site: order.get(site.name, len(order)))


def _fused_hf(model: Any) -> bool:
    """A HuggingFace model whose attention implementation is not eager (sdpa, flash)."""
    config = getattr(model, "config", None)
    implementation = getattr(config, "_attn_implementation", None)
    return isinstance(implementation, str) and implementation != "eager"
