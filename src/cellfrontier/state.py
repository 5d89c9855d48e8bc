"""A tracker's state as plain values: what leaves a core and what a core is rebuilt from.

``TrackerCore.export_state()`` and ``TrackerCore.from_state()`` are the only way state leaves
or enters the compiled core; checkpoints, pickling and progress reports all go through these
types, and :mod:`cellfrontier.checkpoint` encodes them as bytes.  A graph-less tracker's state
(:class:`PlainState`) comes from :class:`cellfrontier.completion_only.CompletionOnlyState`.

Nothing here is trusted when it is read back: the core checks every group against its plan,
every array against the group's shape, and recomputes every counter from the bits.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ActiveGroup", "CompactedGroup", "CoreState", "PlainGroupState", "PlainState"]


@dataclass(frozen=True, slots=True)
class ActiveGroup:
    """One row group that holds detailed state, in the checkpoint layout.

    ``words`` is little-endian uint64: ``done[C * nw] | ready[C * nw] | dropped[nw]`` with
    ``nw = ceil(size / 64)`` (at least one word); ``flags`` is one byte per column and block:
    ``batch_done[C] | batch_ready[C] | roots_added[C] | scratch_ready[C]`` (at least one byte).
    """

    row_group: int
    size: int
    words: bytes
    flags: bytes


@dataclass(frozen=True, slots=True)
class CompactedGroup:
    """A row group whose detailed state was released: its size and its dropped rows.

    ``dropped`` is a little-endian packed bit per row, without trailing zero bytes.
    """

    row_group: int
    size: int
    dropped: bytes


@dataclass(frozen=True, slots=True)
class CoreState:
    """The state of a compiled core at one instant.

    ``completed`` and ``dropped`` are per-column totals over every group (cells completed, rows
    dropped and not completed); ``compacted_completed`` and ``compacted_dropped`` the part of
    them held by compacted groups.  Without ``has_bitmaps`` (a progress report) ``active`` and
    ``compacted`` are empty.
    """

    columns: tuple[str, ...]
    active: tuple[ActiveGroup, ...]
    compacted: tuple[CompactedGroup, ...]
    compacted_completed: tuple[int, ...]
    compacted_dropped: tuple[int, ...]
    completed: tuple[int, ...]
    dropped: tuple[int, ...]
    has_bitmaps: bool = True


@dataclass(frozen=True, slots=True)
class PlainGroupState:
    """One row group of a graph-less tracker: its bitmaps as little-endian uint64 words.

    ``size`` is None until a completed range fixed it; ``extent`` is one past the largest row
    recorded; ``columns`` pairs each column with its done rows; ``batches`` names the columns
    whose range was completed.
    """

    row_group: int
    size: int | None
    extent: int
    dropped: bytes
    columns: tuple[tuple[str, bytes], ...]
    batches: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlainState:
    """The state of a graph-less tracker (no frontier, no plan)."""

    groups: tuple[PlainGroupState, ...]
    compacted: tuple[CompactedGroup, ...]
