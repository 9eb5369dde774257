"""anycapture: capture attention maps (or any local variable) from PyTorch models.

The capture core (this package's top level) imports neither torch nor matplotlib:
it needs only ``bytecode`` and ``numpy``.
"""

from .capture import CallRecord, Capture, capture
from .decorator import GetLocal, get_local
from .instrument import UNASSIGNED, InstrumentationError
from .recorder import CaptureWarning
from .storage import StoragePolicy

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``attention_maps`` and ``figure`` (the notebook API) load torch only when used."""
    if name in ("attention_maps", "figure", "AttentionResult"):
        from . import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'anycapture' has no attribute {name!r}")


__all__ = [
    "UNASSIGNED",
    "AttentionResult",
    "CallRecord",
    "Capture",
    "CaptureWarning",
    "GetLocal",
    "InstrumentationError",
    "StoragePolicy",
    "__version__",
    "attention_maps",
    "capture",
    "figure",
    "get_local",
]
