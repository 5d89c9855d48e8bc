"""Which part of the job's caps each shard of a cluster run gets: its slot among the running shards.

The job's ``concurrency``, ``max_concurrency`` and its generators' own per-process caps (a
model's ``max_concurrency``) are the whole job's numbers.  The client knows how many shards
can run at once: ``min(shards to run, worker threads)``, the *slots*.  Each running shard
holds a distinct slot and gets its part of every cap (:class:`~cellfrontier.job.spec.CapShare`:
``cap // slots``, the remainder spread over the first slots), so the parts of the shards
running at once add up to the job's numbers exactly.

Slots must be distinct among the shards running at once, whatever order the scheduler picks:

- when every shard to run has a thread of its own (no more shards than threads), a shard's
  slot is its position among the shards to run;
- otherwise a shard's slot is its worker's first slot (workers ordered by name, each holding
  as many slots as it has threads) plus the lowest slot free in its process.  A worker that
  restarts keeps its name, so a shard rescheduled after a lost worker finds its slot again.

The cost: while fewer shards run than there are slots (the tail of the job, or a worker
lost), the job uses less than its caps.  A worker that joins after the run started has no
slots: its shards take the smallest part, and while they run the job's caps can be exceeded
by it (a warning says so); start the workers before the run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cellfrontier.job.spec import CapShare

__all__ = ["SlotPlan", "local_slot"]

logger = logging.getLogger("cellfrontier.job")

_LOCAL_LOCK = threading.Lock()
_LOCAL_HELD: set[int] = set()


@contextmanager
def local_slot() -> Iterator[int]:
    """The lowest slot free in this process (a worker running several shards at once), held meanwhile."""
    with _LOCAL_LOCK:
        slot = 0
        while slot in _LOCAL_HELD:
            slot += 1
        _LOCAL_HELD.add(slot)
    try:
        yield slot
    finally:
        with _LOCAL_LOCK:
            _LOCAL_HELD.discard(slot)


@dataclass(frozen=True)
class SlotPlan:
    """How the shards of one cluster run find their slots (see the module docstring)."""

    slots: int
    by_position: bool
    """True when every shard to run has a thread: a shard's slot is its position among them."""
    workers: Mapping[str, tuple[int, int]]
    """Each worker's name: its first slot and its number of threads."""

    @classmethod
    def for_cluster(cls, workers: Mapping[str, Any], to_run: int) -> SlotPlan:
        """The plan for *to_run* shards on the scheduler's *workers* (``scheduler_info()["workers"]``)."""
        ordered = sorted(workers.values(), key=lambda info: str(info.get("name")))
        first: dict[str, tuple[int, int]] = {}
        threads = 0
        for info in ordered:
            count = max(1, int(info.get("nthreads") or 1))
            first[str(info.get("name"))] = (threads, count)
            threads += count
        threads = max(1, threads)
        slots = max(1, min(to_run, threads))
        return cls(slots, to_run <= threads, first)

    def share(self, position: int, worker: str | None, local: int) -> CapShare:
        """The part of a shard at *position* among the shards to run, on *worker* at its *local* slot."""
        if self.by_position:
            return CapShare(position % self.slots, self.slots)
        held = self.workers.get(str(worker)) if worker is not None else None
        if held is None or local >= held[1]:
            logger.warning(
                "worker %r joined after the job started (or runs more shards than it has threads): its "
                "shard takes the smallest part of the caps, and the job's caps may be exceeded while it runs",
                worker,
            )
            return CapShare(self.slots - 1, self.slots)
        return CapShare(held[0] + local, self.slots)
