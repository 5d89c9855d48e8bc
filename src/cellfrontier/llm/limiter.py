"""Adaptive concurrency per (endpoint, model), and reading a server's ``Retry-After``.

An endpoint that asks to slow down (429 or 503) is obeyed, never punished: the call waits
and asks again, and the number of calls a process keeps in flight for that model adapts by
AIMD, as TCP's congestion window does:

- *multiplicative decrease*: an overload answer halves the limit, once per "epoch": calls
  that were already in flight when the limit dropped (they were sent under the old limit)
  do not halve it again, so one burst of 429s costs one halving, not one per call;
- *additive increase*: when a call sent under the current limit succeeds while the limit is
  in full use, the limit earns a credit; ``limit`` credits raise it by one (about one step
  per round trip at full use), never above the cap (``max_concurrency``).  Against a server
  that takes L at a time, the limit so settles between L/2 and L, probing L + 1 now and then;
- optional *latency back-pressure*, for servers that queue instead of answering 429 (vLLM):
  with ``latency_bound`` set, the limit stops growing while the running mean latency
  (an exponential average) is above it.

The limit starts at the cap (``initial_concurrency`` lowers it): with a server that never
refuses, every slot is used from the first call.  One limiter serves every column of every
:class:`~cellfrontier.llm.ChatModel` in the process that calls the same model at the same
``base_url`` (:func:`limiter_for`), so they adapt together; its cap is the smallest any of
them asked for.  Waiting calls queue in order (FIFO) on futures of the running event loop: a
process runs one loop at a time (as a job's shard does); the limiter is not shared between
threads.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import deque
from collections.abc import Callable, Sequence

__all__ = ["AdaptiveLimiter", "backoff_delay", "limiter_for", "retry_after_seconds"]

DECREASE_FACTOR = 0.5
DATE_MARGIN = 0.002
"""Seconds added to a wait until an HTTP date: the date is a wall-clock instant and the wait a
monotonic timer, which can end a hair early while the wall clock is being slewed."""
TIMER_MARGIN = 0.005
"""Seconds added to a wait a server asked for: an event loop that caches its clock (uvloop's, once
per turn, in milliseconds) can end a timer a few milliseconds before the asked instant, and a
strict server refuses a retry that comes early."""
LATENCY_WEIGHT = 0.1
"""Weight of the newest call in the running mean latency (back-pressure)."""


class AdaptiveLimiter:
    """At most ``limit`` calls in flight; ``limit`` adapts between 1 and ``cap`` (AIMD)."""

    def __init__(self, cap: int, initial: int | None = None, latency_bound: float | None = None) -> None:
        if cap < 1:
            raise ValueError(f"AdaptiveLimiter() needs a cap >= 1, got {cap!r}")
        self.cap = cap
        self.requested_cap = cap
        """The smallest cap a model object asked for; ``cap`` is the process's part of it."""
        self.share: Callable[[int], int] | None = None
        self.limit = cap if initial is None else max(1, min(cap, initial))
        self.latency_bound = latency_bound
        self.mean_latency = 0.0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.epoch = 0
        """Bumped by every decrease; a call remembers the epoch it started in."""
        self.decreases = 0
        self.increases = 0
        self._credit = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody is queued (the fast path: no await)."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            if self.in_flight > self.peak_in_flight:
                self.peak_in_flight = self.in_flight
            return True
        return False

    async def acquire(self) -> None:
        """Wait for a slot, in order of arrival."""
        if self.try_acquire():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # the slot was ours already: give it back
                self.release()
            raise

    def release(self) -> None:
        """Give a slot back (the call ended, or waits before asking again)."""
        self.in_flight -= 1
        self._wake()

    def succeeded(self, latency: float, epoch: int) -> None:
        """Count a success of a call started in *epoch* that took *latency* s (additive increase); release it.

        Only calls sent under the current limit earn credit: those sent before a decrease
        say nothing about the new limit.
        """
        bound = self.latency_bound
        if bound is not None:
            self.mean_latency += LATENCY_WEIGHT * (latency - self.mean_latency)
        if (
            epoch == self.epoch
            and self.in_flight >= self.limit
            and self.limit < self.cap
            and (bound is None or self.mean_latency <= bound)
        ):
            self._credit += 1
            if self._credit >= self.limit:
                self._credit = 0
                self.limit += 1
                self.increases += 1
        self.in_flight -= 1
        if self._waiters:
            self._wake()

    def overloaded(self, epoch: int) -> None:
        """The server asked a call started in *epoch* to slow down (multiplicative decrease)."""
        if epoch == self.epoch:
            self.limit = max(1, int(self.limit * DECREASE_FACTOR))
            self.epoch += 1
            self.decreases += 1
            self._credit = 0

    def lower_cap(self, cap: int) -> None:
        """A stricter cap (another model object with the same endpoint and model asked for it)."""
        if cap < self.requested_cap:
            self.requested_cap = cap
            self._apply_cap()

    def set_share(self, share: Callable[[int], int] | None) -> None:
        """Use ``share(cap)`` of the cap in this process (a job on a cluster divides it); None: all of it.

        A limit at the cap moves with it; a limit below it (adapted to the server) is only
        lowered if it is above the new cap.
        """
        self.share = share
        self._apply_cap()

    def _apply_cap(self) -> None:
        old = self.cap
        share = self.share
        self.cap = self.requested_cap if share is None else max(1, share(self.requested_cap))
        if self.limit > self.cap or self.limit == old:
            self.limit = self.cap
            self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self.in_flight < self.limit:
            waiter = waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                if self.in_flight > self.peak_in_flight:
                    self.peak_in_flight = self.in_flight
                waiter.set_result(None)

    def __repr__(self) -> str:
        return (
            f"AdaptiveLimiter(limit={self.limit}, cap={self.cap}, in_flight={self.in_flight}, "
            f"decreases={self.decreases}, increases={self.increases})"
        )


_LIMITERS: dict[tuple[str, str], AdaptiveLimiter] = {}


def limiter_for(
    base_url: str, model: str, cap: int, initial: int | None = None, latency_bound: float | None = None
) -> AdaptiveLimiter:
    """The process's limiter for *model* at *base_url*, created on first use."""
    key = (base_url, model)
    limiter = _LIMITERS.get(key)
    if limiter is None:
        limiter = _LIMITERS[key] = AdaptiveLimiter(cap, initial, latency_bound)
    else:
        limiter.lower_cap(cap)
        if latency_bound is not None and (
            limiter.latency_bound is None or latency_bound < limiter.latency_bound
        ):
            limiter.latency_bound = latency_bound
    return limiter


def retry_after_seconds(headers: Sequence[tuple[bytes, bytes]]) -> float | None:
    """The wait a 429/503 answer asks for: ``retry-after-ms``, else ``Retry-After`` (seconds or an HTTP date).

    None when there is none or it cannot be read; never negative.
    """
    seconds: float | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"retry-after-ms":
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                continue
        if lowered == b"retry-after" and seconds is None:
            text = value.decode("latin-1").strip()
            try:
                seconds = max(0.0, float(text))
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(text)
                except (TypeError, ValueError):
                    continue
                seconds = max(0.0, when.timestamp() - time.time() + DATE_MARGIN)
    return seconds


def backoff_delay(attempt: int, base: float = 0.1, cap: float = 10.0) -> float:
    """The wait before asking again when the server gave no ``Retry-After``: exponential, jittered.

    The jitter (50-100 % of the step) keeps calls refused together from returning together.
    """
    return min(cap, base * 2 ** (attempt - 1)) * (0.5 + 0.5 * random.random())
