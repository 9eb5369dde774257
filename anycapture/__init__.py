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

__all__ = [
    "UNASSIGNED",
    "CallRecord",
    "Capture",
    "CaptureWarning",
    "GetLocal",
    "InstrumentationError",
    "StoragePolicy",
    "__version__",
    "capture",
    "get_local",
]
