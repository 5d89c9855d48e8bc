"""Waiting on the event loop until there is something to do: a completion, a write, a signal or a deadline.

The scheduling loop sleeps only when nothing is left to do now.  Whatever makes work (an
async call ending, a pool thread or the writer finishing, a signal) calls :meth:`Wakeup.wake`
(from another thread, :meth:`Wakeup.wake_threadsafe`); a deadline (a retry, a checkpoint, a
progress report) is one timer, kept across waits while it is due no later than needed:
re-arming one per wait would push a timer into the loop's heap per round, next to the
thousands of sleeps of the calls in flight.  A timer that fires early only wakes a round early.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Wakeup"]


class Wakeup:
    """Sleeps the scheduling loop on *loop* until woken or a deadline passes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_due = 0.0

    def wake(self) -> None:
        """End the current wait (loop thread only; nothing happens when nobody waits)."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def wake_threadsafe(self) -> None:
        """:meth:`wake` from any thread (nothing happens once the loop is closed)."""
        loop = self.loop
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (the job was stopping)
                loop.call_soon_threadsafe(self.wake)

    async def wait(self, timeout: float) -> None:
        """Sleep until :meth:`wake` or *timeout* seconds (a due timer)."""
        loop = self.loop
        due = loop.time() + timeout
        if self.timer is None or self.timer_due > due:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = loop.call_at(due, self._timer_fired)
            self.timer_due = due
        waiter = loop.create_future()
        self.waiter = waiter
        try:
            await waiter
        finally:
            self.waiter = None

    def _timer_fired(self) -> None:
        self.timer = None
        self.wake()

    def close(self) -> None:
        """Cancel the pending timer."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
