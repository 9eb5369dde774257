"""HuggingFace transformers vision models: loading, image processor, token layout, sites.

``--model DIR`` (a ``save_pretrained`` directory) or ``--model transformers:ORG/NAME``
(the local cache first, the hub when it answers).  Models load through the Auto
classes with ``attn_implementation="eager"``, whose attention modules keep the
weights in a local ``attn_weights`` (exactly what ``output_attentions=True``
returns); a model without eager attention keeps its default and its maps come
from the SDPA source.  transformers is an optional extra, imported on use.
"""

from __future__ import annotations

import contextlib
import os
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .instrument import resolve_function
from .layout import TokenLayout
from .loaded import RANDOM_INIT_SEED, LoadedModel, ModelLoadError, image_tower, reachable

__all__ = [
    "HF_PREFIX",
    "HF_WEIGHTS_VAR",
    "attention_sites",
    "is_hf_spec",
    "layout_from_config",
    "load_hf",
    "load_image_processor",
]

HF_PREFIX = "transformers:"
HF_WEIGHTS_VAR = "attn_weights"  # the local of HF attention modules' forward
EXTRA_HINT = "pip install 'anycapture[transformers]'"


def is_hf_spec(spec: str) -> bool:
    """``transformers:ORG/NAME``, or a directory holding a ``config.json``."""
    if spec.startswith(HF_PREFIX):
        return True
    path = Path(spec)
    return path.is_dir() and (path / "config.json").is_file()


def require_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelLoadError(
            f"HuggingFace models need the transformers package: {EXTRA_HINT}"
        ) from None
    return transformers


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars or load reports on stderr while loading (our notes say what
    matters); restored afterwards."""
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _locate(spec: str) -> tuple[str, bool, bool]:
    """(what from_pretrained takes, local files only, weights there)."""
    if not spec.startswith(HF_PREFIX):
        folder = Path(spec)
        return str(folder), True, any((folder / name).is_file() for name in WEIGHT_FILES)
    repo = spec[len(HF_PREFIX) :]
    if not repo or repo.count("/") > 1:
        raise ModelLoadError(f"--model {spec}: expected transformers:ORG/NAME, e.g. {HF_PREFIX}")
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo, "config.json"), str):
        cached = (try_to_load_from_cache(repo, name) for name in WEIGHT_FILES)
        return repo, True, any(isinstance(path, str) for path in cached)
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    if offline or not reachable("huggingface.co"):
        raise ModelLoadError(
            f"{repo} is not in the local HuggingFace cache and the hub cannot be reached: run "
            "once online, or pass a directory written by save_pretrained"
        )
    return repo, False, True


def load_hf(spec: str, *, pretrained: bool = True) -> LoadedModel:
    """Load a HuggingFace vision model (image tower of a two-tower one) in eval mode."""
    require_transformers()
    from transformers import AutoConfig, AutoModel

    source, local_only, has_weights = _locate(spec)
    notes: list[str] = []
    with _quiet():
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=local_only)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"--model {spec}: not a HuggingFace model ({exc})") from None
        if pretrained and not has_weights:
            notes.append(
                f"{spec} holds a config but no weights: using random weights, so the maps "
                "are not meaningful"
            )
        _refuse_video(config, spec)
        auto = _model_class(config, AutoModel)
        model = _build(auto, config, source, local_only, pretrained and has_weights, spec)
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        notes.append(
            f"{type(model).__name__} has no eager attention: its maps are computed beside "
            "its scaled_dot_product_attention calls"
        )
    module, tower_note = image_tower(model)
    if tower_note:
        notes.append(tower_note)
    processor = load_image_processor(source, local_only=local_only)
    if processor is None:
        notes.append(f"{spec} has no image processor config (preprocessor_config.json)")
    name = spec.removeprefix(HF_PREFIX)
    return LoadedModel(
        module,
        name,
        "transformers",
        pretrained=pretrained and has_weights,
        notes=notes,
        image_processor=processor,
    )


def _refuse_video(config: Any, spec: str) -> None:
    """Video models (VideoMAE, X-CLIP, TimeSformer) take clips of frames, which a
    render has no way to make from its images: refused in one line."""
    for part in (config, getattr(config, "vision_config", None)):
        frames = getattr(part, "num_frames", None)
        if isinstance(frames, int) and frames > 1:
            raise ModelLoadError(
                f"--model {spec}: {type(config).__name__.removesuffix('Config')} is a video "
                f"model (clips of {frames} frames), which anycapture does not render; use an "
                "image model"
            )


def _model_class(config: Any, default: Any) -> Any:
    """The class the checkpoint was saved from (``config.architectures``: a classifier
    keeps its head, which ``explain`` needs), else the Auto class."""
    import transformers

    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel):
            return cls
    return default


def _build(
    auto: Any, config: Any, source: str, local_only: bool, with_weights: bool, spec: str
) -> Any:
    import torch

    for attn in ("eager", None):  # eager exposes the weights; else the model's default
        kwargs = {"attn_implementation": attn} if attn else {}
        try:
            if with_weights:
                return auto.from_pretrained(source, local_files_only=local_only, **kwargs)
            with torch.random.fork_rng(devices=[]):  # seeded: the same figures every run
                torch.manual_seed(RANDOM_INIT_SEED)
                if hasattr(auto, "from_config"):  # an Auto class
                    return auto.from_config(config, **kwargs)
                return auto._from_config(config, **kwargs)  # a concrete model class
        except ValueError as exc:
            if attn is None or "attn_implementation" not in str(exc).lower():
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ModelLoadError(
                    f"--model {spec}: transformers cannot load it: {detail}"
                ) from None
        except OSError as exc:
            raise ModelLoadError(f"--model {spec}: cannot read the weights: {exc}") from None
    raise AssertionError("unreachable")


def load_image_processor(source: str, *, local_only: bool = True) -> Any:
    """The model's own image processor, or None when it has none."""
    from transformers import AutoImageProcessor

    with _quiet():
        try:
            return AutoImageProcessor.from_pretrained(source, local_files_only=local_only)
        except (OSError, ValueError, KeyError):
            return None


def _embeddings(model: Any) -> Any:
    for _, module in model.named_modules():
        if hasattr(module, "patch_embeddings") or hasattr(module, "patch_embedding"):
            return module
    return None


def layout_from_config(model: Any, input_hw: tuple[int, int]) -> TokenLayout | None:
    """A HuggingFace vision model's token layout: prefix tokens (CLS, DeiT's
    distillation token, DINOv2 registers) from its embeddings, then the patch grid
    from ``config.patch_size``.  None when the model is not one, or windowed (Swin)."""
    config = getattr(model, "config", None)
    embeddings = _embeddings(model)
    if config is None or embeddings is None or "swin" in getattr(config, "model_type", ""):
        return None
    patch = getattr(config, "patch_size", None)
    if patch is None:
        return None
    rows, cols = (patch, patch) if isinstance(patch, int) else (int(patch[0]), int(patch[1]))
    names: list[str] = []
    if getattr(embeddings, "cls_token", None) is not None or hasattr(embeddings, "class_embedding"):
        names.append("cls")
    if getattr(embeddings, "distillation_token", None) is not None:
        names.append("dist")
    registers = getattr(embeddings, "register_tokens", None)
    if registers is not None:
        names += [f"reg{i}" for i in range(registers.shape[1])]
    grid = (input_hw[0] // rows, input_hw[1] // cols)
    return TokenLayout(len(names), grid, tuple(names), (rows, cols))


def attention_sites(model: Any) -> list[tuple[str, Any, types.FunctionType, str]]:
    """HF attention modules under eager attention: ``(name, module, forward, var)``
    for each module whose forward picks an ``attention_interface`` and keeps its
    result's weights in ``attn_weights``."""
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "eager":
        return []
    sites = []
    for name, module in model.named_modules():
        forward = getattr(type(module), "forward", None)
        if not isinstance(forward, types.FunctionType):
            continue
        function = resolve_function(forward)
        names = function.__code__.co_varnames
        if HF_WEIGHTS_VAR in names and "attention_interface" in names:
            sites.append((name, module, function, HF_WEIGHTS_VAR))
    return sites
