"""A shard's durable state under ``output_dir``: resuming from it and checkpointing into it.

On start, :meth:`ShardStore.resume` prepares the directory (manifest, leftovers of killed
writers), loads the shard's checkpoint (the tracker and the active groups' buffered values)
and *settles* every row group whose Parquet file exists: the file is authoritative, even when
the checkpoint predates it, so its rows are marked done in the tracker (the missing ones
dropped) and the group is compacted.  :meth:`ShardStore.save` writes the tracker and the
active groups' values as one atomic file, after checking that no other attempt on the same
shard wrote it since this one last read or wrote it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellfrontier.errors import CheckpointError
from cellfrontier.job.buffers import GroupBuffers
from cellfrontier.job.errors import OutputDirError, StaleShardError
from cellfrontier.job.manifest import prepare_output_dir
from cellfrontier.job.output import OutputLayout, read_group_row_ids, read_group_rows
from cellfrontier.job.state import ShardCheckpoint, load_checkpoint, read_checkpoint_header, save_checkpoint
from cellfrontier.row_groups import RowGroupPlan
from cellfrontier.tracker import CompletionTracker

if TYPE_CHECKING:
    from cellfrontier.job.generators import ColumnPlan
    from cellfrontier.job.job import Job

__all__ = ["ResumedShard", "ShardStore", "finished_in_tracker"]


@dataclass
class ResumedShard:
    """What a shard starts from: its tracker, the groups still computing and the rows written."""

    tracker: CompletionTracker
    groups: dict[int, GroupBuffers] = field(default_factory=dict)
    written: set[int] = field(default_factory=set)
    records: int = 0
    dropped: int = 0
    resumed: bool = False


def finished_in_tracker(
    tracker: CompletionTracker, plan: RowGroupPlan, columns: list[str], rg: int, active: set[int]
) -> bool:
    """Whether *tracker* holds row group *rg* as compacted (finished and released).

    *active* is ``set(tracker.active_row_groups())``, passed in so a caller asking about many
    groups builds it once.
    """
    if rg in active:
        return False
    size = plan.row_group_size(rg)
    return size > 0 and bool(tracker.is_row_group_complete(rg, size, columns))


class ShardStore:
    """The checkpoint and the written row groups of the shard ``[first, stop)`` of *job*."""

    def __init__(self, job: Job, layout: OutputLayout, first: int, stop: int) -> None:
        self.job = job
        self.layout = layout
        self.first, self.stop = first, stop
        self.path = layout.checkpoint_path(first, stop)
        self.attempt = uuid.uuid4().hex
        self.owner: tuple[str, int] | None = None
        """``(attempt, seq)`` of the checkpoint on disk as this attempt last read or wrote it."""
        self.seq = 0
        self.next_at = 0.0
        self.next_tasks = 0

    # ------------------------------------------------------------------ resuming

    def resume(
        self, tracker: CompletionTracker, plans: list[ColumnPlan], output_names: list[str]
    ) -> ResumedShard:
        """Prepare the directory and restore the shard's state from it (*tracker* if there is none)."""
        layout = self.layout
        job = self.job
        prepare_output_dir(layout, job._fingerprint())
        layout.remove_temporaries(self.first, self.stop)
        written = layout.written_groups(self.first, self.stop)
        own = (self.first, self.stop)
        for first, stop in layout.checkpoints():
            if (first, stop) != own and first < self.stop and self.first < stop:
                raise OutputDirError(
                    f"output_dir holds a checkpoint of row groups [{first}, {stop}), which overlaps "
                    f"this run's [{self.first}, {self.stop}); run the same ranges to resume"
                )
        state = ResumedShard(tracker)
        checkpoint = load_checkpoint(self.path)
        if checkpoint is not None:
            self._restore(state, checkpoint, written, output_names)
        columns = [p.name for p in plans]
        row_plan = state.tracker.row_group_plan
        active = set(state.tracker.active_row_groups())
        for rg in sorted(written):
            already = finished_in_tracker(state.tracker, row_plan, columns, rg, active)
            self._settle_written(state, plans, rg, written[rg], already)
        state.written = set(written)
        return state

    def _restore(
        self,
        state: ResumedShard,
        checkpoint: ShardCheckpoint,
        written: Mapping[int, Path],
        output_names: list[str],
    ) -> None:
        """Load the shard's checkpoint: tracker state and the active groups' buffered values."""
        if (checkpoint.first, checkpoint.stop) != (self.first, self.stop):
            raise CheckpointError(f"{self.path} holds row groups [{checkpoint.first}, {checkpoint.stop})")
        tracker = CompletionTracker.from_bytes(checkpoint.tracker, self.job.graph)
        plan = tracker.row_group_plan
        if getattr(plan, "num_records", None) != self.job.num_records:
            raise CheckpointError(f"{self.path} was written for another number of records")
        state.tracker = tracker
        state.resumed = True
        self.owner = (checkpoint.attempt, checkpoint.seq)
        self.seq = checkpoint.seq
        is_dropped = tracker.is_dropped
        buffer_size = self.job.buffer_size
        for rg, columns in sorted(checkpoint.groups.items()):
            if rg in written:
                continue
            size = plan.row_group_size(rg)
            group = GroupBuffers(rg, size, rg * buffer_size, output_names, columns)
            group.dropped = {r for r in range(size) if is_dropped(rg, r)}
            state.groups[rg] = group

    def _settle_written(
        self, state: ResumedShard, plans: list[ColumnPlan], rg: int, path: Path, already_compacted: bool
    ) -> None:
        """A group whose file exists is done: make the tracker say so, truthfully, and compact it.

        The file is authoritative even when the checkpoint predates it: its surviving rows are
        marked done in every column, the others dropped.
        """
        tracker = state.tracker
        size = tracker.row_group_plan.row_group_size(rg)
        rows = read_group_rows(path)
        state.records += rows
        state.dropped += size - rows
        if already_compacted:
            return
        base = rg * self.job.buffer_size
        if rows == size:
            survivors = np.arange(size, dtype=np.int64)
        else:
            survivors = np.asarray(read_group_row_ids(path), dtype=np.int64) - base
            lost = np.setdiff1d(np.arange(size, dtype=np.int64), survivors)
            tracker.drop_rows(rg, lost)
        for plan in plans:
            if plan.batch:
                tracker.mark_row_range_complete(plan.name, rg, size)
            elif survivors.size:
                tracker.mark_cells_complete(plan.name, rg, survivors)
        tracker.compact_row_group(rg)

    # ------------------------------------------------------------------ checkpointing

    def schedule_next(self, tasks: int) -> None:
        """Set when the next checkpoint is due: by time, and by completed tasks when configured."""
        self.next_at = time.monotonic() + self.job.checkpoint_interval
        if self.job.checkpoint_every is not None:
            self.next_tasks = tasks + self.job.checkpoint_every

    def save(
        self,
        tracker: CompletionTracker,
        groups: Mapping[int, GroupBuffers],
        stats: dict[str, Any],
        tasks: int,
    ) -> None:
        """Save the tracker and the active groups' values as one atomic file."""
        header = read_checkpoint_header(self.path)
        found = None if header is None else (str(header.get("attempt")), int(header.get("seq", -1)))
        if found != self.owner:
            raise StaleShardError(
                f"another run wrote {self.path} (attempt {found[0] if found else None}) since this one "
                "started; this run stops without writing"
            )
        seq = self.seq + 1
        checkpoint = ShardCheckpoint(
            first=self.first,
            stop=self.stop,
            seq=seq,
            attempt=self.attempt,
            tracker=tracker.to_bytes(),
            groups={rg: group.columns for rg, group in groups.items()},
            stats=stats,
        )
        save_checkpoint(self.path, checkpoint)
        self.seq = seq
        self.owner = (self.attempt, seq)
        self.schedule_next(tasks)
