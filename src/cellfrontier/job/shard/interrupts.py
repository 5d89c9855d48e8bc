"""Ctrl-C and SIGTERM: stop at the next scheduling round, checkpoint, then deliver the signal.

While a job runs in the main thread, SIGINT and SIGTERM only set a flag and wake the event
loop; the runner then cancels what is in flight (it will run again on resume), writes its
checkpoint, puts the previous handlers back and raises the signal again, so the process sees
what it would have seen without the job (``KeyboardInterrupt`` for Ctrl-C, termination for
SIGTERM), only later and with the work saved.  Handlers are never installed from another
thread (Python does not allow it): there, signals keep their previous behaviour.  A signal
the process ignores (``SIG_IGN``: a program started with ``nohup``, or in the background of a
non-interactive shell, inherits SIGINT ignored) stays ignored: a job does not make its host
process stop on a signal it chose not to stop on.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["StopSignals"]

_SIGNALS = tuple(
    s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None
)


class StopSignals:
    """Context manager: while inside, SIGINT/SIGTERM record the signal and call *on_signal*.

    ``Job.run()`` enters it before starting its event loop, so that the loop's own Ctrl-C
    handling stays out of the way and the re-delivered SIGINT raises ``KeyboardInterrupt``;
    the runner sets :attr:`on_signal` once it can wake its loop.
    """

    def __init__(self, on_signal: Callable[[int], None] | None = None) -> None:
        self.on_signal = on_signal
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum
        if self.on_signal is not None:
            self.on_signal(signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                if signal.getsignal(signum) is signal.SIG_IGN:
                    continue
                with contextlib.suppress(ValueError, OSError):
                    self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        """Put the previous handlers back (idempotent)."""
        while self.previous:
            signum, handler = self.previous.popitem()
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.restore()

    def redeliver(self) -> None:
        """Restore the previous handlers and raise the received signal to them."""
        self.restore()
        if self.received is not None:
            signal.raise_signal(self.received)
