"""A shard's durable state under ``output_dir``: resuming from it and checkpointing into it.

On start, :meth:`ShardStore.resume` takes the job version its run resolved
(:mod:`cellfrontier.job.store.generations`), registers the shard's directory under that
version's checkpoints, claims the attempt's epoch (:mod:`cellfrontier.job.store.fencing`),
removes leftovers of killed writers, loads the newest checkpoint an earlier attempt of the same
version left (the tracker, the active groups' buffered values and their drops) and reads the
footer of every row group whose Parquet file exists.  The file is authoritative, even when the
checkpoint predates it: a group whose file the version keeps whole is *settled* (its rows are
marked done in the tracker, the missing ones dropped, and the group is compacted); a group
whose file holds columns the version changed, lacks or no longer has is handed to the runner
to *upgrade* (:mod:`cellfrontier.job.store.group_reuse`).  :meth:`ShardStore.save` writes the
tracker and the active groups' values as one atomic file of the attempt's own epoch, after
checking that no newer attempt claimed the shard and no newer job version started; the first
save then removes the older attempts' checkpoints, and the older job versions' checkpoints,
which it supersedes.
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
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.spec import JobSpec
from cellfrontier.job.store.fencing import ShardClaim, checkpoint_epochs, claim_epoch, epoch_checkpoint_path
from cellfrontier.job.store.generations import (
    JobVersion,
    adopt_version,
    newer_generation,
    remove_older_generations,
    resolve_version,
)
from cellfrontier.job.store.group_files import GroupStamp, read_group_stamp
from cellfrontier.job.store.group_reuse import CurrentColumn, GroupReuse, plan_group_reuse
from cellfrontier.job.store.shard_checkpoint import ShardCheckpoint, save_checkpoint
from cellfrontier.job.store.shard_dirs import latest_checkpoint, register_shards
from cellfrontier.row_groups import RowGroupPlan
from cellfrontier.tracker import CompletionTracker

__all__ = ["ResumedShard", "ShardStore", "current_columns", "finished_in_tracker"]

_CHECKPOINT_TEMP = re.compile(r"^\.epoch-(\d+)\.ckpt\..*" + re.escape(TEMP_SUFFIX) + "$")


@dataclass
class ResumedShard:
    """What a shard starts from: its tracker, the groups still computing and the rows written.

    ``groups`` holds the buffered values (``{column: values}``) of each group the checkpoint
    held active, in row-group order, and ``drops`` their dropped rows' culprits; ``usage`` the
    usage counters per column it saved; ``written`` the groups whose files stand (settled);
    ``reuse`` the groups whose files a run upgrades, with what it keeps of each.
    """

    tracker: CompletionTracker
    groups: dict[int, dict[str, list[Any]]] = field(default_factory=dict)
    drops: dict[int, dict[int, str]] = field(default_factory=dict)
    written: set[int] = field(default_factory=set)
    reuse: dict[int, tuple[Path, GroupReuse]] = field(default_factory=dict)
    records: int = 0
    dropped: int = 0
    resumed: bool = False
    usage: dict[str, dict[str, int]] = field(default_factory=dict)


def current_columns(spec: JobSpec, version: JobVersion) -> list[CurrentColumn]:
    """The columns of *spec* with the fingerprints of job *version*, in topological order."""
    return [
        CurrentColumn(
            name=column.name,
            fingerprint=version.fingerprints[column.name],
            batch=column.batch,
            outputs=column.outputs,
            upstream=tuple(spec.graph.get_upstream_columns(column.name)),
        )
        for column in spec.columns
    ]


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
        self.version: JobVersion | None = None
        self.digest = ""
        self.seq = 0
        self.superseded_removed = False
        self.next_at = 0.0
        self.next_tasks = 0

    @property
    def epoch(self) -> int:
        return self.claim.epoch if self.claim is not None else 0

    @property
    def generation(self) -> int:
        """The job version this shard works on (0 before :meth:`resume`)."""
        return self.version.generation if self.version is not None else 0

    # ------------------------------------------------------------------ resuming

    def resume(self, tracker: CompletionTracker) -> ResumedShard:
        """Claim the shard and restore its state from the directory (*tracker* if there is none)."""
        spec = self.spec
        if spec.generation is None:  # a runner made by hand: resolve the version as a run does
            version = resolve_version(spec)
        else:
            version = adopt_version(self.layout, spec, spec.generation)
        self.version = version
        self.digest = version.digest
        layout = self.layout = self.layout.at_generation(version.generation)
        self.directory = layout.shard_dir(self.first, self.stop)
        register_shards(layout, [range(self.first, self.stop)])
        self.claim = claim_epoch(self.directory, self.attempt)
        self.refuse_if_superseded("before starting")
        layout.remove_temporaries(
            self.first, self.stop, below_epoch=self.claim.epoch, generation=version.generation
        )
        self._remove_older_temporaries()
        state = ResumedShard(tracker)
        checkpoint = latest_checkpoint(layout, range(self.first, self.stop), below=self.claim.epoch)
        # Listed after the checkpoint is read: a group the checkpoint holds as written (its file
        # was durable before the save) is then in the listing, even if a stale attempt wrote it.
        written = layout.written_groups(self.first, self.stop)
        if checkpoint is not None:
            self._restore(state, checkpoint)
        names = [column.name for column in spec.columns]
        columns = current_columns(spec, version)
        row_plan = state.tracker.row_group_plan
        active = set(state.tracker.active_row_groups())
        for rg in sorted(written):
            size = row_plan.row_group_size(rg)
            stamp = read_group_stamp(written[rg], legacy_size=size, legacy_base=rg * spec.buffer_size)
            if stamp is None:
                continue
            if stamp.size > size:
                raise OutputDirError(
                    f"{written[rg]} holds row group {rg} of {stamp.size} rows, more than this job's "
                    f"{size}: it belongs to another job"
                )
            reuse = plan_group_reuse(stamp, columns, size, legacy=version.legacy)
            if reuse.settled:
                already = finished_in_tracker(state.tracker, row_plan, names, rg, active)
                self._settle_written(state, rg, stamp, already)
                state.written.add(rg)
                state.groups.pop(rg, None)
                state.drops.pop(rg, None)
            else:
                state.reuse[rg] = (written[rg], reuse)
        missing = [
            rg
            for rg in range(self.first, self.stop)
            if rg not in state.written
            and rg not in state.groups
            and finished_in_tracker(state.tracker, row_plan, names, rg, active)
        ]
        if missing:
            raise OutputDirError(
                f"the checkpoint reports row group(s) {missing[:5]} finished, but their files "
                f"are missing from {layout.data_dir} (or are not this job version's)"
            )
        return state

    def refuse_if_superseded(self, when: str) -> None:
        """Raise :class:`StaleShardError` once a newer attempt claimed the shard, or a newer version began."""
        if self.claim is None:
            return
        newer = self.claim.newer_epoch()
        if newer is not None:
            raise StaleShardError(
                f"a newer attempt (epoch {newer}) claimed row groups [{self.first}, {self.stop}) after "
                f"this one (epoch {self.claim.epoch}); this attempt stops {when} without writing"
            )
        generation = newer_generation(self.layout, self.generation)
        if generation is not None:
            raise StaleShardError(
                f"a newer job version (generation {generation}) was started on {self.layout.root} after "
                f"this one's (generation {self.generation}); this attempt stops {when} without writing"
            )

    def _remove_older_temporaries(self) -> None:
        """Delete checkpoint temp files that older attempts (killed ones) left in the shard's directory."""
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                match = _CHECKPOINT_TEMP.match(entry.name)
                if match and int(match.group(1)) < self.epoch:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)

    def _restore(self, state: ResumedShard, checkpoint: ShardCheckpoint) -> None:
        """Load an earlier attempt's checkpoint: tracker state and the active groups' buffered values."""
        where = epoch_checkpoint_path(self.directory, checkpoint.epoch)
        if (checkpoint.first, checkpoint.stop) != (self.first, self.stop):
            raise CheckpointError(f"{where} holds row groups [{checkpoint.first}, {checkpoint.stop})")
        assert self.version is not None
        if checkpoint.job not in self.version.accepted_digests:
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
            state.groups[rg] = values
            state.drops[rg] = dict(checkpoint.drops.get(rg, {}))

    def _settle_written(
        self, state: ResumedShard, rg: int, stamp: GroupStamp, already_compacted: bool
    ) -> None:
        """A group whose file stands is done: make the tracker say so, truthfully, and compact it.

        The file is authoritative even when the checkpoint predates it: its surviving rows are
        marked done in every column, the others dropped.
        """
        tracker = state.tracker
        size = tracker.row_group_plan.row_group_size(rg)
        state.records += stamp.rows
        state.dropped += size - stamp.rows
        if already_compacted:
            return
        if stamp.dropped:
            lost = np.fromiter(sorted(stamp.dropped), dtype=np.int64, count=len(stamp.dropped))
            survivors = np.setdiff1d(np.arange(size, dtype=np.int64), lost)
            tracker.drop_rows(rg, lost)
        else:
            survivors = np.arange(size, dtype=np.int64)
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
        drops: Mapping[int, dict[int, str]] | None = None,
    ) -> None:
        """Save the tracker and the active groups' values as one atomic file of this attempt's epoch.

        *groups* maps each active group to its buffered values (``{column: values}``) and
        *drops* to its dropped rows' culprits; *tasks* is the attempt's count of completed
        tasks, from which the next save by count is due.

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
            drops=dict(drops or {}),
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
        """Delete the older attempts' checkpoints, and the older job versions': this save supersedes them."""
        for epoch in checkpoint_epochs(self.directory):
            if epoch < self.epoch:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(epoch_checkpoint_path(self.directory, epoch))
        remove_older_generations(self.layout, self.generation)
        self.superseded_removed = True
