"""A shard's durable state under ``output_dir``: resuming from it and checkpointing into it.

On start, :meth:`ShardStore.resume` prepares the directory (manifest, the shard's directory,
leftovers of killed writers), claims the attempt's epoch (:mod:`cellfrontier.job.store.fencing`),
loads the newest checkpoint an earlier attempt left (the tracker and the active groups'
buffered values) and *settles* every row group whose Parquet file exists: the file is
authoritative, even when the checkpoint predates it, so its rows are marked done in the
tracker (the missing ones dropped) and the group is compacted.  :meth:`ShardStore.save` writes
the tracker and the active groups' values as one atomic file of the attempt's own epoch, after
checking that no newer attempt claimed the shard; the first save then removes the older
attempts' checkpoints, which it supersedes.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellfrontier._durable import TEMP_SUFFIX
from cellfrontier.errors import CheckpointError
from cellfrontier.job.errors import OutputDirError, StaleShardError
from cellfrontier.job.output import OutputLayout, read_group_row_ids, read_group_rows
from cellfrontier.job.spec import JobSpec
from cellfrontier.job.store.fencing import ShardClaim, checkpoint_epochs, claim_epoch, epoch_checkpoint_path
from cellfrontier.job.store.manifest import job_digest, job_fingerprint, prepare_output_dir
from cellfrontier.job.store.shard_checkpoint import ShardCheckpoint, save_checkpoint
from cellfrontier.job.store.shard_dirs import latest_checkpoint, register_shards
from cellfrontier.row_groups import RowGroupPlan
from cellfrontier.tracker import CompletionTracker

__all__ = ["ResumedShard", "ShardStore", "finished_in_tracker"]

_CHECKPOINT_TEMP = re.compile(r"^\.epoch-(\d+)\.ckpt\..*" + re.escape(TEMP_SUFFIX) + "$")


@dataclass
class ResumedShard:
    """What a shard starts from: its tracker, the groups still computing and the rows written.

    ``groups`` holds the buffered values (``{column: values}``) of each group the checkpoint
    held active, in row-group order; ``usage`` the usage counters per column it saved.
    """

    tracker: CompletionTracker
    groups: dict[int, dict[str, list[Any]]] = field(default_factory=dict)
    written: set[int] = field(default_factory=set)
    records: int = 0
    dropped: int = 0
    resumed: bool = False
    usage: dict[str, dict[str, int]] = field(default_factory=dict)


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
    """The checkpoint and the written row groups of the shard ``[first, stop)`` of the job *spec*.

    The runner reads ``epoch`` (0 until claimed), ``next_at`` and ``next_tasks`` (when the
    next checkpoint is due: a monotonic time, a completed-task count).
    """

    def __init__(self, spec: JobSpec, layout: OutputLayout, first: int, stop: int) -> None:
        self.spec = spec
        self.layout = layout
        self.first, self.stop = first, stop
        self.directory = layout.shard_dir(first, stop)
        self.attempt = uuid.uuid4().hex
        self.claim: ShardClaim | None = None
        self.digest = ""
        self.seq = 0
        self.superseded_removed = False
        self.next_at = 0.0
        self.next_tasks = 0

    @property
    def epoch(self) -> int:
        return self.claim.epoch if self.claim is not None else 0

    # ------------------------------------------------------------------ resuming

    def resume(self, tracker: CompletionTracker) -> ResumedShard:
        """Claim the shard and restore its state from the directory (*tracker* if there is none)."""
        layout = self.layout
        fingerprint = job_fingerprint(self.spec)
        self.digest = job_digest(fingerprint)
        prepare_output_dir(layout, fingerprint)
        register_shards(layout, [range(self.first, self.stop)])
        self.claim = claim_epoch(self.directory, self.attempt)
        self.refuse_if_superseded("before starting")
        layout.remove_temporaries(self.first, self.stop, below_epoch=self.claim.epoch)
        self._remove_older_temporaries()
        state = ResumedShard(tracker)
        checkpoint = latest_checkpoint(layout, range(self.first, self.stop), below=self.claim.epoch)
        # Listed after the checkpoint is read: a group the checkpoint holds as written (its file
        # was durable before the save) is then in the listing, even if a stale attempt wrote it.
        written = layout.written_groups(self.first, self.stop)
        if checkpoint is not None:
            self._restore(state, checkpoint, written)
        names = [column.name for column in self.spec.columns]
        row_plan = state.tracker.row_group_plan
        active = set(state.tracker.active_row_groups())
        for rg in sorted(written):
            already = finished_in_tracker(state.tracker, row_plan, names, rg, active)
            self._settle_written(state, rg, written[rg], already)
        state.written = set(written)
        missing = [
            rg
            for rg in range(self.first, self.stop)
            if rg not in written
            and rg not in state.groups
            and finished_in_tracker(state.tracker, row_plan, names, rg, active)
        ]
        if missing:
            raise OutputDirError(
                f"the checkpoint reports row group(s) {missing[:5]} finished, but their files "
                f"are missing from {layout.data_dir}"
            )
        return state

    def refuse_if_superseded(self, when: str) -> None:
        """Raise :class:`StaleShardError` if a newer attempt claimed the shard after this one."""
        if self.claim is None:
            return
        newer = self.claim.newer_epoch()
        if newer is not None:
            raise StaleShardError(
                f"a newer attempt (epoch {newer}) claimed row groups [{self.first}, {self.stop}) after "
                f"this one (epoch {self.claim.epoch}); this attempt stops {when} without writing"
            )

    def _remove_older_temporaries(self) -> None:
        """Delete checkpoint temp files that older attempts (killed ones) left in the shard's directory."""
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                match = _CHECKPOINT_TEMP.match(entry.name)
                if match and int(match.group(1)) < self.epoch:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)

    def _restore(self, state: ResumedShard, checkpoint: ShardCheckpoint, written: Mapping[int, Path]) -> None:
        """Load an earlier attempt's checkpoint: tracker state and the active groups' buffered values."""
        where = epoch_checkpoint_path(self.directory, checkpoint.epoch)
        if (checkpoint.first, checkpoint.stop) != (self.first, self.stop):
            raise CheckpointError(f"{where} holds row groups [{checkpoint.first}, {checkpoint.stop})")
        if checkpoint.job != self.digest:
            raise CheckpointError(
                f"{where} was written by another job (digest {checkpoint.job!r}, this job's is "
                f"{self.digest!r}); it does not belong in this directory"
            )
        tracker = CompletionTracker.from_bytes(checkpoint.tracker, self.spec.graph)
        if getattr(tracker.row_group_plan, "num_records", None) != self.spec.num_records:
            raise CheckpointError(f"{where} was written for another number of records")
        state.tracker = tracker
        state.resumed = True
        state.usage = dict(checkpoint.stats.get("usage") or {})
        for rg, values in sorted(checkpoint.groups.items()):
            if rg not in written:
                state.groups[rg] = values

    def _settle_written(self, state: ResumedShard, rg: int, path: Path, already_compacted: bool) -> None:
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
        base = rg * self.spec.buffer_size
        if rows == size:
            survivors = np.arange(size, dtype=np.int64)
        else:
            survivors = np.asarray(read_group_row_ids(path), dtype=np.int64) - base
            lost = np.setdiff1d(np.arange(size, dtype=np.int64), survivors)
            tracker.drop_rows(rg, lost)
        for column in self.spec.columns:
            if column.batch:
                tracker.mark_row_range_complete(column.name, rg, size)
            elif survivors.size:
                tracker.mark_cells_complete(column.name, rg, survivors)
        tracker.compact_row_group(rg)

    # ------------------------------------------------------------------ checkpointing

    def schedule_next(self, tasks: int) -> None:
        """Set when the next checkpoint is due: by time, and by completed tasks when configured."""
        self.next_at = time.monotonic() + self.spec.checkpoint_interval
        if self.spec.checkpoint_every is not None:
            self.next_tasks = tasks + self.spec.checkpoint_every

    def save(
        self,
        tracker: CompletionTracker,
        groups: Mapping[int, dict[str, list[Any]]],
        stats: dict[str, Any],
        tasks: int,
    ) -> None:
        """Save the tracker and the active groups' values as one atomic file of this attempt's epoch.

        *groups* maps each active group to its buffered values (``{column: values}``); *tasks*
        is the attempt's count of completed tasks, from which the next save by count is due.

        Refuses (:class:`StaleShardError`, nothing written) once a newer attempt has claimed
        the shard.
        """
        assert self.claim is not None
        self.refuse_if_superseded("at its checkpoint")
        seq = self.seq + 1
        checkpoint = ShardCheckpoint(
            first=self.first,
            stop=self.stop,
            seq=seq,
            attempt=self.attempt,
            tracker=tracker.to_bytes(),
            groups=dict(groups),
            stats=stats,
            epoch=self.claim.epoch,
            job=self.digest,
        )
        try:
            save_checkpoint(self.claim.checkpoint_path, checkpoint)
        except OSError:
            # A newer attempt removes the temporary files it finds on start, a stale one's too.
            self.refuse_if_superseded("at its checkpoint")
            raise
        self.seq = seq
        if not self.superseded_removed:
            self._remove_superseded()
        self.schedule_next(tasks)

    def _remove_superseded(self) -> None:
        """Delete the older attempts' checkpoints: this attempt's own, just saved, supersedes them."""
        for epoch in checkpoint_epochs(self.directory):
            if epoch < self.epoch:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(epoch_checkpoint_path(self.directory, epoch))
        self.superseded_removed = True
