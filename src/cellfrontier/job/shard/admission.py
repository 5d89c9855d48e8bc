"""Row-group admission: when the runner may start another row group.

A policy is a small object asked once per scheduling round, after the ready work has been
launched, with an :class:`AdmissionView` of the runner's state; it answers how many groups to
admit now.  Three policies cover the cases:

- :class:`FixedAdmission`: at most N groups at once (``max_active_row_groups=N``);
- :class:`CapsAdmission`: as many as keep the concurrency caps busy (the default);
- :class:`MemoryBoundAdmission`: another policy, bounded by a memory budget.

Groups that are finished and only waiting for their file to be written count separately
(``writing_groups``): they take no slots, only memory, which the runner bounds on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "AdmissionPolicy",
    "AdmissionView",
    "CapsAdmission",
    "FixedAdmission",
    "MemoryBoundAdmission",
]


@dataclass(frozen=True, slots=True)
class AdmissionView:
    """What the runner reports when asking whether to admit.

    ``total_slots`` is how many calls may run outside the loop thread at once (the global cap,
    or the sum of the per-column caps of async and blocking columns; 0 when every generator
    runs inline).  ``free_slots`` is what is left of it after launching every task the caps
    allow.  ``queued_tasks`` are tasks taken from the tracker that wait for a slot.
    """

    active_groups: int
    writing_groups: int
    pending_groups: int
    total_slots: int
    free_slots: int
    queued_tasks: int
    bytes_per_group: int


class AdmissionPolicy(Protocol):
    """Decides how many row groups to admit now."""

    def admit_count(self, view: AdmissionView) -> int: ...


class FixedAdmission:
    """At most *limit* groups computing at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def admit_count(self, view: AdmissionView) -> int:
        return max(0, min(self.limit - view.active_groups, view.pending_groups))

    def __repr__(self) -> str:
        return f"FixedAdmission({self.limit})"


class CapsAdmission:
    """Admit while the caps could take more work than the admitted groups offer.

    With every generator inline there are no slots to fill: one group computes at a time,
    batch after batch, while the previous one is written out on the writer thread.  Otherwise
    a group is admitted when, after launching, some slots are free and fewer tasks wait for a
    slot than there are slots in all: the waiting work could not refill the slots that free up
    next, so a group's last cells would leave them idle.  One group per round, so the new
    group's first tasks are seen (and counted as queued) before the next decision.
    """

    def admit_count(self, view: AdmissionView) -> int:
        if view.pending_groups == 0:
            return 0
        if view.total_slots == 0:
            return 1 if view.active_groups == 0 else 0
        if view.active_groups == 0:
            return 1
        if view.free_slots > 0 and view.queued_tasks < view.total_slots:
            return 1
        return 0

    def __repr__(self) -> str:
        return "CapsAdmission()"


class MemoryBoundAdmission:
    """*inner*'s answer, bounded so the groups held fit in *budget_bytes*.

    The bytes per group come from the runner's estimate of the groups it has seen (values
    sampled with ``sys.getsizeof``); at least one group is always allowed, so a job whose
    single group exceeds the budget still runs.
    """

    def __init__(self, inner: AdmissionPolicy, budget_bytes: int) -> None:
        self.inner = inner
        self.budget_bytes = budget_bytes

    def max_groups(self, view: AdmissionView) -> int:
        return max(1, self.budget_bytes // max(1, view.bytes_per_group))

    def admit_count(self, view: AdmissionView) -> int:
        room = self.max_groups(view) - view.active_groups - view.writing_groups
        return max(0, min(self.inner.admit_count(view), room))

    def __repr__(self) -> str:
        return f"MemoryBoundAdmission({self.inner!r}, {self.budget_bytes})"
