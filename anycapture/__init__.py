"""anycapture: capture attention maps (or any local variable) from PyTorch models.

The capture core (this package's top level) imports neither torch nor matplotlib:
it needs only ``bytecode`` and ``numpy``.  Names are imported on first use
(PEP 562), so ``anycapture --help`` never loads the core, and ``attention_maps`` /
``figure`` (the notebook API) load torch only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "CallRecord": "scoped_capture",
    "Capture": "scoped_capture",
    "capture": "scoped_capture",
    "GetLocal": "decorator",
    "get_local": "decorator",
    "UNASSIGNED": "instrument",
    "InstrumentationError": "instrument",
    "CaptureWarning": "recorder",
    "StoragePolicy": "storage",
    "AnycaptureError": "errors",
    "UsageError": "errors",
    "AttentionResult": "notebook",
    "attention_maps": "notebook",
    "figure": "notebook",
}

if TYPE_CHECKING:
    from .decorator import GetLocal, get_local
    from .errors import AnycaptureError, UsageError
    from .instrument import UNASSIGNED, InstrumentationError
    from .notebook import AttentionResult as AttentionResult  # not in __all__: needs torch
    from .notebook import attention_maps as attention_maps
    from .notebook import figure as figure
    from .recorder import CaptureWarning
    from .scoped_capture import CallRecord, Capture, capture
    from .storage import StoragePolicy


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'anycapture' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    """The public names (not ``TYPE_CHECKING``, ``annotations`` or ``importlib``)."""
    return sorted({*_EXPORTS, "__version__"})


# The capture core only: ``from anycapture import *`` must work without torch.
__all__ = [
    "UNASSIGNED",
    "AnycaptureError",
    "CallRecord",
    "Capture",
    "CaptureWarning",
    "GetLocal",
    "InstrumentationError",
    "StoragePolicy",
    "UsageError",
    "__version__",
    "capture",
    "get_local",
]
