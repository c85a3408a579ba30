"""Stopping cleanly on SIGTERM: a Prefect cancellation, a container stop, ``kill``.

Outside a :func:`graceful` section, SIGTERM interrupts at once: the handler
that was installed before (Prefect's, which cancels the flow run) runs, and
without one :class:`Terminated` is raised in the main thread. Either way the
audit row and the ZooKeeper lock are released by the ``with`` blocks being
unwound.

Inside a :func:`graceful` section (an apply writing its batches) the signal
is only noted: the writer finishes or abandons the transaction in flight,
sends nothing more, and the apply records how far it got. When the last
section ends, the signal is delivered again and takes its normal course.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

# The exit status of a process that stopped because of SIGTERM (128 + 15).
EXIT_STATUS = 128 + signal.SIGTERM

_lock = threading.Lock()
_requested = threading.Event()
_graceful_depth = 0
_deferred = False


class Terminated(BaseException):
    """SIGTERM arrived and nothing else handles it: unwind and exit with status 143."""

    def __init__(self) -> None:
        super().__init__("stopped by SIGTERM")


def requested() -> bool:
    """True once SIGTERM arrived in this process (while :func:`sigterm_handled` is active)."""
    return _requested.is_set()


def _deliver(previous: Any, signum: int, frame: FrameType | None) -> None:
    if previous is signal.SIG_IGN:
        return
    if callable(previous):
        previous(signum, frame)
    raise Terminated


@contextmanager
def sigterm_handled() -> Iterator[None]:
    """Handle SIGTERM as described above while the block runs (main thread only;
    elsewhere the block runs with whatever handler the process has)."""
    global _deferred
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handle(signum: int, frame: FrameType | None) -> None:
        global _deferred
        _requested.set()
        with _lock:
            if _graceful_depth > 0:
                _deferred = True
                return
        _deliver(previous, signum, frame)

    signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        with _lock:
            _deferred = False
        _requested.clear()


@contextmanager
def graceful() -> Iterator[Callable[[], bool]]:
    """A section SIGTERM does not interrupt; yields :func:`requested` to poll.

    When the outermost section ends and a SIGTERM was held back, it is
    raised again so that it takes its normal course (in the main thread).
    """
    global _graceful_depth, _deferred
    with _lock:
        _graceful_depth += 1
    try:
        yield requested
    finally:
        with _lock:
            _graceful_depth -= 1
            redeliver = _graceful_depth == 0 and _deferred
            if redeliver:
                _deferred = False
        if redeliver:
            signal.raise_signal(signal.SIGTERM)
