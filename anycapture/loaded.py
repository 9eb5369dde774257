"""What loading a model gives back, shared by every loader (timm, Python paths,
HuggingFace): the loaded model, the load error, two-tower selection, the hub probe.

No torch import: this module is the common ground the loaders import.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError

__all__ = [
    "HUB_PROBE_TIMEOUT_S",
    "RANDOM_INIT_SEED",
    "LoadedModel",
    "ModelLoadError",
    "image_tower",
    "reachable",
]

HUB_PROBE_TIMEOUT_S = 1.5
RANDOM_INIT_SEED = 0  # random init (no pretrained weights) is seeded: same figures every run


class ModelLoadError(UsageError):
    """The model spec, file or checkpoint is wrong; the message says how to fix it."""


@dataclass
class LoadedModel:
    module: Any  # torch.nn.Module, in eval mode
    name: str
    source: str  # "timm", "python", "transformers" or "anycapture" (the demo)
    pretrained: bool
    notes: list[str] = field(default_factory=list)  # one-line warnings for the user
    image_processor: Any = None  # a HuggingFace model's own image processor


def image_tower(model: Any) -> tuple[Any, str | None]:
    """A two-tower model's image tower (CLIP, SigLIP, open_clip), with a note saying so;
    any other model as it is."""
    if hasattr(model, "vision_model") and (
        hasattr(model, "text_model") or hasattr(model, "get_text_features")
    ):
        tower = "vision_model"  # HuggingFace CLIPModel, SiglipModel
    elif hasattr(model, "visual") and hasattr(model, "encode_image"):
        tower = "visual"  # OpenAI CLIP, open_clip: what encode_image runs
    else:
        return model, None
    return getattr(model, tower), (
        f"{type(model).__name__} is a two-tower (image-text) model: using its image tower `{tower}`"
    )


def reachable(host: str) -> bool:
    result: list[bool] = []

    def probe() -> None:  # in a thread: DNS lookups ignore socket timeouts
        try:
            socket.create_connection((host, 443), timeout=HUB_PROBE_TIMEOUT_S).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(HUB_PROBE_TIMEOUT_S)
    return bool(result and result[0])
