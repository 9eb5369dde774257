"""The package's exceptions: one public base, and the usage errors the CLI maps to exit 2.

Every error anycapture raises on purpose derives from :class:`AnycaptureError`, so a
caller can catch the package's errors without catching torch's or PIL's.  Only
:class:`UsageError` (bad usage or input the tool recognised) means exit 2; any other
exception while running means exit 1.
"""

from __future__ import annotations

__all__ = ["AnycaptureError", "UsageError"]


class AnycaptureError(Exception):
    """Base of every error anycapture raises on purpose."""


class UsageError(AnycaptureError, ValueError):
    """Bad usage or input that the tool recognised; the message names the fix (exit 2)."""
