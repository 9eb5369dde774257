"""Model loading: timm names and aliases, Python paths, checkpoints, pretrained weights.

Imports torch and timm lazily, inside the functions, so importing this module is free.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .loaded import (
    HUB_PROBE_TIMEOUT_S,
    RANDOM_INIT_SEED,
    LoadedModel,
    ModelLoadError,
    image_tower,
    reachable,
)

__all__ = [
    "ALIASES",
    "DTYPES",
    "HUB_PROBE_TIMEOUT_S",
    "RANDOM_INIT_SEED",
    "LoadedModel",
    "ModelLoadError",
    "image_tower",
    "load_checkpoint",
    "load_model",
]

ALIASES: dict[str, str] = {
    "vit_tiny": "vit_tiny_patch16_224",
    "vit_small": "vit_small_patch16_224",
    "vit_base": "vit_base_patch16_224",
    "vit_large": "vit_large_patch16_224",
    "deit_tiny": "deit_tiny_patch16_224",
    "deit_small": "deit_small_patch16_224",
    "deit_base": "deit_base_patch16_224",
    "deit_small_distilled": "deit_small_distilled_patch16_224",
    "vit_small_reg4": "vit_small_patch14_reg4_dinov2",
}

DTYPES = ("float32", "float16", "bfloat16")


def load_model(
    spec: str,
    *,
    pretrained: bool = True,
    checkpoint: Path | None = None,
    img_size: tuple[int, int] | None = None,
    device: str = "cpu",
    before_import: Callable[[], None] | None = None,
    dtype: str | None = None,
) -> LoadedModel:
    """Build the model named by ``spec``: a timm name or alias, a HuggingFace
    ``save_pretrained`` directory or ``transformers:ORG/NAME``, or a
    ``module:callable`` path.  A two-tower model (CLIP) becomes its image tower;
    ``dtype`` (float32, float16, bfloat16) casts it.

    ``before_import`` runs before a Python-path module is imported (the CLI
    activates ``get_local`` there for seed-style decorated models).
    """
    if checkpoint is not None and not checkpoint.is_file():
        raise ModelLoadError(f"checkpoint {checkpoint} does not exist: check the --checkpoint path")
    if dtype is not None and dtype not in DTYPES:
        raise ModelLoadError(f"--dtype {dtype!r}: choose {', '.join(DTYPES)}")
    from .hf import is_hf_spec

    if spec == "demo":
        loaded = _load_demo()
    elif is_hf_spec(spec):
        from .hf import load_hf

        loaded = load_hf(spec, pretrained=pretrained and checkpoint is None)
    elif spec.endswith(".py") and ":" not in spec:  # the notebook's path to it
        from .model_files import python_file_without_factory

        raise ModelLoadError(python_file_without_factory(Path(spec)))
    elif _is_python_path(spec):
        if before_import is not None:
            before_import()
        loaded = _load_python_path(spec)
    else:
        loaded = _load_timm(spec, pretrained=pretrained and checkpoint is None, img_size=img_size)
    if checkpoint is not None:
        load_checkpoint(loaded.module, checkpoint)
        loaded.pretrained = True
    loaded.module, note = image_tower(loaded.module)
    if note:
        loaded.notes.append(note)
    loaded.module.eval()
    try:
        loaded.module.to(device)
        if dtype is not None:
            import torch

            loaded.module.to(getattr(torch, dtype))
    except (RuntimeError, AssertionError) as exc:
        raise ModelLoadError(f"cannot move the model to device {device!r}: {exc}") from None
    return loaded


def _load_demo() -> LoadedModel:
    from .demo import WEIGHTS, build_demo

    if not WEIGHTS.is_file():
        raise ModelLoadError(
            f"the demo weights {WEIGHTS} are missing; make them with python scripts/train_demo.py"
        )
    return LoadedModel(build_demo(), "demo", "anycapture", pretrained=True)


# -- Python paths ---------------------------------------------------------------
def _is_python_path(spec: str) -> bool:
    return ":" in spec


def _load_python_path(spec: str) -> LoadedModel:
    import torch

    location, _, attribute = spec.rpartition(":")
    if not location or not attribute:
        raise ModelLoadError(
            f"model path {spec!r} must look like 'package.module:factory' or 'file.py:factory'"
        )
    if location.endswith(".py") or os.sep in location or "/" in location:
        module = _import_file(Path(location), spec)
    else:
        try:
            module = importlib.import_module(location)
        except ModuleNotFoundError as exc:
            raise ModelLoadError(
                f"cannot import module {location!r} for --model {spec}: {exc}; is it installed "
                "or on PYTHONPATH? (a file path must end in .py)"
            ) from None
    factory: Any = module
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise ModelLoadError(f"{location} has no attribute {part!r} (from --model {spec})")
        factory = getattr(factory, part)
    if isinstance(factory, torch.nn.Module):
        model = factory
    elif callable(factory):
        try:
            model = factory()
        except SystemExit as exc:  # would end the run with exit 0 and nothing rendered
            raise ModelLoadError(_exit_message(f"calling {spec}", exc)) from None
        except Exception as exc:
            raise ModelLoadError(
                f"calling {spec} raised {type(exc).__name__}: {exc} (it must build the model "
                "with no arguments)"
            ) from exc
    else:
        raise ModelLoadError(f"{spec} is a {type(factory).__name__}, not a callable or nn.Module")
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(
            f"{spec} returned a {type(model).__name__}, not a torch.nn.Module: the callable "
            "must return the model"
        )
    return LoadedModel(model, spec, "python", pretrained=False)


def _import_file(path: Path, spec: str) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist (from --model {spec})")
    name = f"_anycapture_model_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ModelLoadError(f"cannot import {path}: not a Python source file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.resolve().parent))  # so the file's own imports resolve
    try:
        module_spec.loader.exec_module(module)
    except SystemExit as exc:
        sys.modules.pop(name, None)
        raise ModelLoadError(_exit_message(f"importing {path}", exc)) from None
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ModelLoadError(f"importing {path} raised {type(exc).__name__}: {exc}") from exc
    return module


# -- timm -----------------------------------------------------------------------
def resolve_timm_name(spec: str) -> str:
    import timm

    name = ALIASES.get(spec, spec)
    if timm.is_model(name):
        return name
    if Path(spec).is_dir():
        raise ModelLoadError(
            f"model directory {spec} has no config.json: --model DIR takes a HuggingFace "
            "folder written by save_pretrained (config.json and its weights)"
        )
    if "/" in spec or spec.startswith((".", "~")):  # meant as a path, not a timm name
        hub = spec.count("/") == 1 and not spec.startswith((".", "~", "/"))  # ORG/NAME
        hint = f"; a HuggingFace hub model is written transformers:{spec}" if hub else ""
        raise ModelLoadError(f"--model {spec}: no such file or directory{hint}")
    candidates = ["demo", *ALIASES, *timm.list_models()]
    close = difflib.get_close_matches(spec, candidates, n=4, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ModelLoadError(
        f"unknown model {spec!r}{hint} (a timm name, an alias such as vit_small, or a "
        "Python path such as mypkg.models:build)"
    )


def _load_timm(spec: str, *, pretrained: bool, img_size: tuple[int, int] | None) -> LoadedModel:
    import timm

    name = resolve_timm_name(spec)
    kwargs: dict[str, Any] = {}
    if img_size is not None:
        kwargs["img_size"] = img_size
    notes: list[str] = []
    use_pretrained = False
    if pretrained:
        use_pretrained, why_not = pretrained_available(name)
        if not use_pretrained:
            notes.append(
                f"pretrained weights for {name} are unavailable ({why_not}): using random "
                "weights, so the maps are not meaningful. For meaningful maps offline try "
                "--model demo (a tiny ViT that ships with anycapture); or pass --checkpoint, "
                "or run online once"
            )
    try:
        if use_pretrained and os.environ.get("HF_HUB_OFFLINE") != "0":
            model = timm.create_model(name, pretrained=True, **kwargs)
        else:
            import torch

            # The same random weights on every run, so figures are reproducible;
            # fork_rng leaves the caller's random state as it was.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_INIT_SEED)
                model = timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as exc:
        raise ModelLoadError(f"timm cannot build {name} with {kwargs}: {exc}") from None
    return LoadedModel(model, name, "timm", pretrained=use_pretrained, notes=notes)


def pretrained_available(name: str) -> tuple[bool, str]:
    """Decide quickly (< ~2 s) whether pretrained weights can be had.

    Weights in the local cache are used offline; otherwise the hub must answer a
    TCP connection within ``HUB_PROBE_TIMEOUT_S`` (timm's own attempt retries for
    ~50 s offline).  ``HF_HUB_OFFLINE=1`` means cache only.
    """
    import timm

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return False, "timm lists no pretrained weights for it"
    if _cached(cfg):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # cached: never touch the network
        return True, ""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False, "HF_HUB_OFFLINE is set and they are not in the local cache"
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    if cfg.hf_hub_id is None and cfg.url:
        host = urlparse(cfg.url).hostname
    if host and reachable(host):
        return True, ""
    return False, f"{host} is unreachable and they are not in the local cache"


def _cached(cfg: Any) -> bool:
    if cfg.hf_hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return False
        repo_id = cfg.hf_hub_id.split("@")[0]
        for filename in ("model.safetensors", "open_clip_model.safetensors", "pytorch_model.bin"):
            if isinstance(try_to_load_from_cache(repo_id, filename), str):
                return True
    if cfg.url:
        import torch

        filename = os.path.basename(urlparse(cfg.url).path)
        return (Path(torch.hub.get_dir()) / "checkpoints" / filename).is_file()
    return False


# -- checkpoints ----------------------------------------------------------------
def load_checkpoint(model: Any, path: Path) -> None:
    """Load a state dict safely (safetensors, or ``torch.load(weights_only=True)``)."""
    import pickle

    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # garbage, not a pickle of objects
            raise ModelLoadError(
                f"cannot read checkpoint {path}: not a valid .pth/.pt/.safetensors state dict"
            ) from None
        raise ModelLoadError(
            f"checkpoint {path} needs arbitrary unpickling, which can run code, so it is refused. "
            f"If you trust it, convert it once: {_convert_command(path)}"
        ) from None
    except Exception as exc:
        raise ModelLoadError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {_first_line(exc)} "
            "(is it a .pth/.pt/.safetensors state dict?)"
        ) from None
    if isinstance(state, dict):
        for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelLoadError(
            f"checkpoint {path} is not a state dict (parameter names to tensors); save "
            "model.state_dict()"
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        detail = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), "")
        raise ModelLoadError(
            f"checkpoint {path} does not fit the model: {(detail or str(exc)).rstrip('.')}; "
            "is it for this "
            "architecture and input size?"
        ) from None
    problems = []
    if result.missing_keys:
        problems.append(f"{len(result.missing_keys)} missing (e.g. {result.missing_keys[0]})")
    if result.unexpected_keys:
        problems.append(
            f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[0]})"
        )
    if problems:
        raise ModelLoadError(
            f"checkpoint {path} does not fit the model: {', '.join(problems)} keys; is it for "
            "this architecture?"
        )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else "empty or truncated file"


def _exit_message(doing: str, exc: SystemExit) -> str:
    return (
        f"{doing} called sys.exit({exc.code!r}); a model file must not exit: put its "
        "script part under `if __name__ == '__main__':`"
    )


def _convert_command(path: Path) -> str:
    """The one-liner that re-saves a trusted checkpoint as a state dict, quoted for the
    shell (any path: spaces, quotes, $)."""
    import json
    import shlex

    # a whole pickled model, or a training checkpoint ({"model": ..., "epoch": ...})
    code = (
        f"import torch; c = torch.load({json.dumps(str(path))}, weights_only=False); "
        "c = next((c[k] for k in ('state_dict_ema', 'model_ema', 'state_dict', 'model') "
        "if isinstance(c, dict) and k in c), c); "
        "c = c.state_dict() if hasattr(c, 'state_dict') else c; "
        "torch.save({k: v for k, v in c.items() if isinstance(v, torch.Tensor)}, "
        "'weights.pth')"
    )
    return f"python -c {shlex.quote(code)}"
