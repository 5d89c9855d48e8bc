"""A shard's part of the job's caps on a cluster, and the part a process's generators may use.

``concurrency`` and ``max_concurrency`` are the whole job's numbers.  A run on a cluster
runs several shards at once, each with its own event loop and its own count of calls in
flight, so each shard gets a part of every cap (:class:`~cellfrontier.job.spec.CapShare`,
set by the cluster run in the shard's spec): the parts of the shards running at once add up
to the job's number.  A local run, one shard at a time, keeps the whole caps.

Generators may hold caps of their own that count per process (a model's ``max_concurrency``
in :mod:`cellfrontier.llm`).  A generator with a ``share_caps(share)`` method is told, when a
shard starts and ends in its process, what part of such a cap the process may use now:
``share(cap)`` sums the parts of the shards running in the process (None: the whole cap, no
shard with a part is running).  The job does not know what the generator caps; it only
divides.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from cellfrontier.job.columns import ColumnKind, ColumnSpec
from cellfrontier.job.spec import CapShare

__all__ = ["ProcessShares", "process_share", "shared_cap", "shared_columns"]

Share = Callable[[int], int]


def shared_cap(cap: int | None, share: CapShare | None) -> int | None:
    """*share*'s part of *cap* (None: no cap)."""
    if cap is None or share is None:
        return cap
    return share.of(cap)


def shared_columns(columns: Sequence[ColumnSpec], share: CapShare | None) -> tuple[ColumnSpec, ...]:
    """*columns* with each off-loop column's cap replaced by *share*'s part of it."""
    if share is None:
        return tuple(columns)
    return tuple(
        column if column.kind is ColumnKind.INLINE else dataclasses.replace(column, cap=share.of(column.cap))
        for column in columns
    )


class ProcessShares:
    """The parts held by the shards running in this process (a worker may run several at once)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[int, CapShare] = {}
        self.tokens = itertools.count()

    def enter(self, share: CapShare) -> int:
        with self.lock:
            token = next(self.tokens)
            self.running[token] = share
            return token

    def leave(self, token: int) -> None:
        with self.lock:
            self.running.pop(token, None)

    def share(self) -> Share | None:
        """The process's part of a cap now: the sum of its running shards' parts (None: none runs)."""
        with self.lock:
            held = tuple(self.running.values())
        if not held:
            return None

        def part(cap: int) -> int:
            return sum(share.of(cap) for share in held)

        return part


PROCESS_SHARES = ProcessShares()


def _tell_generators(columns: Sequence[ColumnSpec], share: Share | None) -> None:
    seen: set[int] = set()
    for column in columns:
        hook: Any = getattr(column.fn, "share_caps", None)
        if callable(hook) and id(column.fn) not in seen:
            seen.add(id(column.fn))
            hook(share)


@contextlib.contextmanager
def process_share(columns: Sequence[ColumnSpec], share: CapShare | None) -> Iterator[None]:
    """While a shard with the part *share* runs: tell its generators the process's part of their caps."""
    if share is None:
        yield
        return
    token = PROCESS_SHARES.enter(share)
    _tell_generators(columns, PROCESS_SHARES.share())
    try:
        yield
    finally:
        PROCESS_SHARES.leave(token)
        _tell_generators(columns, PROCESS_SHARES.share())
