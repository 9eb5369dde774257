"""Ctrl-C, SIGTERM and SIGHUP end a run the same way: one exception, raised once,
never mid-write.

- :func:`handling_signals`: SIGINT raises ``KeyboardInterrupt``; SIGTERM (what
  ``timeout``, CI cancellation and job schedulers send) and SIGHUP (the terminal
  closed, an SSH session dropped) raise :class:`Terminated`, a ``KeyboardInterrupt``
  too, so every ``finally`` and pool shutdown runs as for Ctrl-C.  After the first,
  further signals are ignored: cleaning up is not interrupted again (no "Exception
  ignored in atexit callback" tracebacks).
- :func:`critical`: a signal arriving inside is raised when the block ends, so a
  file and its manifest entry are written together or not at all.

Standard library only; signal handlers exist in the main thread alone, so elsewhere
these do nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Terminated", "critical", "handling_signals", "ignore_signals", "signal_exit_code"]

# SIGHUP exists on POSIX only
_SIGNALS = (signal.SIGINT, signal.SIGTERM, *[s for s in [getattr(signal, "SIGHUP", None)] if s])


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP), handled like Ctrl-C; the process exits with 128 + the
    signal's number: 143 for SIGTERM, 129 for SIGHUP."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.signum = signum


class _State:
    installed = False  # handling_signals() is active
    deferring = 0  # nesting depth of critical()
    pending: int | None = None
    stopping = False


def ignore_signals() -> None:
    """In a worker process: the signals this module handles are the main process's
    (a closed terminal sends SIGHUP to the whole process group)."""
    for signum in _SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def signal_exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP: the shell's 128 + signal number."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)


def _raise(signum: int) -> None:
    _State.stopping = True
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _State.stopping:
        return  # a repeat while the first one unwinds
    if _State.deferring:
        _State.pending = signum
        return
    _raise(signum)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def handling_signals(final: bool = False) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP as exceptions, raised once, inside this block (nestable).

    ``final``: the process exits after the block, so after an interrupt signals stay
    ignored instead of getting their old handlers back (atexit is not interrupted).
    """
    if not _main_thread() or _State.installed:
        yield  # the outer block (or no signals here) decides
        return
    _shield_resource_tracker()
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    for signum in _SIGNALS:
        signal.signal(signum, _handler)
    _State.installed, _State.pending, _State.stopping = True, None, False
    try:
        yield
    finally:
        _State.installed = False
        for signum, handler in previous.items():
            if final and _State.stopping:
                handler = signal.SIG_IGN
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def _shield_resource_tracker() -> None:
    """multiprocessing's resource tracker (a helper process of the drawing and decode
    workers) ignores SIGINT and SIGTERM but not SIGHUP: a closed terminal would kill
    it and each later cleanup print a traceback.  It is started with the signals of
    ``_IGNORED_SIGNALS`` blocked (CPython 3.8+), so SIGHUP joins them; nothing
    changes where that name is missing."""
    hangup = getattr(signal, "SIGHUP", None)
    try:
        from multiprocessing import resource_tracker
    except ImportError:  # pragma: no cover - platforms without it
        return
    ignored = getattr(resource_tracker, "_IGNORED_SIGNALS", None)
    if hangup is not None and isinstance(ignored, tuple) and hangup not in ignored:
        resource_tracker._IGNORED_SIGNALS = (*ignored, hangup)  # type: ignore[attr-defined]


@contextmanager
def critical() -> Iterator[None]:
    """Hold back SIGINT/SIGTERM/SIGHUP until the block is done (when our handler is installed)."""
    _State.deferring += 1
    try:
        yield
    finally:
        _State.deferring -= 1
    if not _State.deferring and _State.pending is not None and not _State.stopping:
        signum, _State.pending = _State.pending, None
        _raise(signum)
