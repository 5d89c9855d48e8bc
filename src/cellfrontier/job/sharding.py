"""Shards: how a job's row groups are cut into contiguous ranges, and what each range holds on disk.

A shard is registered by creating its directory, ``checkpoints/shard-<first>-<stop>/``
(``mkdir`` is atomic); the directories present *are* the directory's shard plan.  A run
(local or on a cluster) keeps the shards it finds and cuts only the row groups no shard
covers into new ones, so a job started on a cluster can be finished by a local ``job.run()``
(which runs the shards one after another) and a rerun with more or fewer workers resumes the
same shards.  Shards never overlap: a range that overlaps a registered shard without being
it is refused, and so is a shard directory outside the job's row groups.

The whole-job view is built from the shards' checkpoint headers and the row-group files, so
that progress never needs the shards' tracker states merged.  :func:`merged_job_state` is
where a merged state belongs once the tracker can merge states of disjoint ranges.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cellfrontier.job.errors import OutputDirError
from cellfrontier.job.fencing import checkpoint_epochs, epoch_checkpoint_path
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.progress import ShardBaseline
from cellfrontier.job.state import load_checkpoint, read_checkpoint_header
from cellfrontier.tracker import CompletionTracker

if TYPE_CHECKING:
    from cellfrontier.graph import ExecutionGraph
    from cellfrontier.job.job import Job, JobResult
    from cellfrontier.job.state import ShardCheckpoint

__all__ = [
    "FinishedShard",
    "ShardSummary",
    "combine_results",
    "cut_range",
    "finished_shard",
    "latest_checkpoint",
    "merged_job_state",
    "plan_shards",
    "register_shards",
    "shard_baselines",
    "shard_states",
]


def cut_range(groups: range, count: int) -> list[range]:
    """*groups* cut into at most *count* contiguous ranges of near-equal size (none empty)."""
    size = len(groups)
    count = max(1, min(count, size))
    bounds = [groups.start + size * k // count for k in range(count + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _check_ranges(ranges: Sequence[range], num_row_groups: int, root: Path) -> None:
    previous: range | None = None
    for shard in ranges:
        if not (0 <= shard.start < shard.stop <= num_row_groups):
            raise OutputDirError(
                f"{root} holds shard state of row groups [{shard.start}, {shard.stop}), outside this "
                f"job's range(0, {num_row_groups}): it belongs to another job"
            )
        if previous is not None and shard.start < previous.stop:
            raise OutputDirError(
                f"{root} holds shard state of overlapping row groups [{previous.start}, {previous.stop}) "
                f"and [{shard.start}, {shard.stop}); a directory's shards must not overlap"
            )
        previous = shard


def plan_shards(
    layout: OutputLayout, num_row_groups: int, *, requested: range | None = None, new_shards: int = 1
) -> list[range]:
    """The shards a run covers: the registered ones, plus new ones cut from what none covers.

    With *requested* (``job.run(row_groups=...)``) the plan is just that range, which must be
    a registered shard or overlap none.  Otherwise every registered shard is kept and each gap
    between them is cut into about *new_shards* per whole job, in proportion to its size.
    """
    existing = layout.shard_ranges()
    _check_ranges(existing, num_row_groups, layout.root)
    if requested is not None:
        for shard in existing:
            if shard == requested:
                return [requested]
            if shard.start < requested.stop and requested.start < shard.stop:
                raise OutputDirError(
                    f"output_dir holds the shard of row groups [{shard.start}, {shard.stop}), which "
                    f"overlaps this run's [{requested.start}, {requested.stop}); run the same ranges "
                    "to resume, or run the whole job"
                )
        return [requested] if len(requested) else []
    plan: list[range] = []
    position = 0
    for shard in [*existing, range(num_row_groups, num_row_groups)]:
        gap = range(position, shard.start)
        if len(gap):
            share = max(1, round(new_shards * len(gap) / max(1, num_row_groups)))
            plan.extend(cut_range(gap, share))
        if len(shard):
            plan.append(shard)
        position = shard.stop
    return plan


def register_shards(layout: OutputLayout, shards: Iterable[range]) -> None:
    """Create the directories of *shards*, then refuse (and undo) if another run cut differently.

    Two runs registering overlapping shards at the same moment both see the overlap afterwards
    and both refuse; neither has done any work yet.
    """
    created: list[Path] = []
    wanted = list(shards)
    for shard in wanted:
        directory = layout.shard_dir(shard.start, shard.stop)
        try:
            directory.mkdir(parents=True)
        except FileExistsError:
            continue
        created.append(directory)
    try:
        _check_ranges(layout.shard_ranges(), 1 << 62, layout.root)
    except OutputDirError:
        for directory in created:
            with contextlib.suppress(OSError):  # not empty: another attempt already claimed it
                directory.rmdir()
        raise


def latest_checkpoint(
    layout: OutputLayout, shard: range, *, below: int | None = None
) -> ShardCheckpoint | None:
    """The checkpoint of *shard* from its highest epoch (below *below* when given), or None."""
    directory = layout.shard_dir(shard.start, shard.stop)
    for epoch in reversed(checkpoint_epochs(directory)):
        if below is not None and epoch >= below:
            continue
        checkpoint = load_checkpoint(epoch_checkpoint_path(directory, epoch))
        if checkpoint is not None:  # None: removed meanwhile by a newer attempt's first save
            return checkpoint
    return None


@dataclass(frozen=True)
class FinishedShard:
    """A shard whose newest checkpoint is final and whose every row group has its file."""

    shard: range
    epoch: int
    records: int
    dropped: int


def finished_shard(
    layout: OutputLayout, shard: range, job_digest: str, written: set[int]
) -> FinishedShard | None:
    """*shard* as finished (read from its newest checkpoint's header only), or None.

    *written* holds the row groups whose files exist; a shard whose checkpoint says final but
    whose files are not all there is not finished (running it reports what is missing).
    """
    directory = layout.shard_dir(shard.start, shard.stop)
    epochs = checkpoint_epochs(directory)
    if not epochs:
        return None
    try:
        header = read_checkpoint_header(epoch_checkpoint_path(directory, epochs[-1]))
    except OSError:
        return None
    if not header or not header.get("final") or header.get("job") != job_digest:
        return None
    if any(rg not in written for rg in shard):
        return None
    return FinishedShard(shard, int(header["epoch"]), int(header["records"]), int(header["dropped"]))


def finished_shards(
    layout: OutputLayout, plan: Sequence[range], job_digest: str, written: set[int]
) -> dict[range, FinishedShard]:
    """The shards of *plan* that are finished (see :func:`finished_shard`), by range."""
    finished: dict[range, FinishedShard] = {}
    for shard in plan:
        done = finished_shard(layout, shard, job_digest, written)
        if done is not None:
            finished[shard] = done
    return finished


def shard_baselines(
    job: Job, plan: Sequence[range], finished: Mapping[range, FinishedShard], written: set[int]
) -> list[ShardBaseline]:
    """What each shard of *plan* counts in the progress view before it reports.

    A finished shard counts its rows from its checkpoint's header; another counts the rows of
    its groups whose files exist (their drops are unknown until it reports).
    """
    plans = job.column_plans()
    cells = sum(1 for p in plans if not p.batch)
    batches = len(plans) - cells
    buffer_size = job.buffer_size
    baselines = []
    for shard in plan:
        sizes = [min(buffer_size, job.num_records - rg * buffer_size) for rg in shard]
        rows_total = sum(sizes)
        estimate = rows_total * cells + len(shard) * batches
        done = finished.get(shard)
        if done is not None:
            baselines.append(ShardBaseline(rows_total, estimate, done.records, done.dropped, estimate))
            continue
        rows = sum(size for rg, size in zip(shard, sizes, strict=True) if rg in written)
        groups = sum(1 for rg in shard if rg in written)
        baselines.append(ShardBaseline(rows_total, estimate, rows, 0, rows * cells + groups * batches))
    return baselines


# ---------------------------------------------------------------------- results of several shards


@dataclass(frozen=True)
class ShardSummary:
    """What one shard did in a run (``skipped`` when it was already finished)."""

    row_groups: range
    epoch: int
    records: int
    dropped: int
    tasks: int
    seconds: float
    cpu_seconds: float
    resumed: bool
    skipped: bool = False
    worker: str | None = None


def combine_results(
    results: Sequence[JobResult],
    skipped: Sequence[FinishedShard],
    *,
    row_groups: range,
    seconds: float,
    keep_errors: int,
    output_dir: Path | None,
    columns: tuple[str, ...],
    workers: Sequence[str | None] | None = None,
) -> JobResult:
    """One result for a run of several shards.

    Counts are summed; ``cpu_seconds`` is the sum of the shards' own CPU time (each measured in
    the process that ran it); the peaks are the largest of any one shard.
    """
    from cellfrontier.job.job import JobResult

    summaries = [
        dataclasses.replace(summary, worker=workers[i] if workers else summary.worker)
        for i, r in enumerate(results)
        for summary in r.shards
    ]
    summaries += [
        ShardSummary(f.shard, f.epoch, f.records, f.dropped, 0, 0.0, 0.0, resumed=True, skipped=True)
        for f in skipped
    ]
    summaries.sort(key=lambda s: s.row_groups.start)
    samples = [sample for r in results for sample in r.error_samples][:keep_errors]
    return JobResult(
        records=sum(s.records for s in summaries),
        dropped=sum(s.dropped for s in summaries),
        tasks=sum(r.tasks for r in results),
        seconds=seconds,
        cpu_seconds=sum(r.cpu_seconds for r in results),
        errors=sum(r.errors for r in results),
        error_samples=tuple(samples),
        peak_active_row_groups=max((r.peak_active_row_groups for r in results), default=0),
        peak_held_row_groups=max((r.peak_held_row_groups for r in results), default=0),
        row_groups=row_groups,
        resumed=any(s.resumed for s in summaries),
        output_dir=output_dir,
        columns=columns,
        shards=tuple(summaries),
    )


# ---------------------------------------------------------------------- whole-job tracker state


def shard_states(output_dir: str | os.PathLike[str], graph: ExecutionGraph) -> dict[range, CompletionTracker]:
    """Each shard's tracker state from its newest checkpoint, by row-group range.

    A shard that has not saved a checkpoint yet is absent.  Each state covers its own range
    only (groups outside it are unknown to it); together they are the job's state.
    """
    layout = OutputLayout(Path(output_dir))
    states: dict[range, CompletionTracker] = {}
    for shard in layout.shard_ranges():
        checkpoint = latest_checkpoint(layout, shard)
        if checkpoint is not None:
            states[shard] = CompletionTracker.from_bytes(checkpoint.tracker, graph)
    return states


def merged_job_state(output_dir: str | os.PathLike[str], graph: ExecutionGraph) -> CompletionTracker:
    """The whole job's tracker state: every shard's newest checkpoint merged into one tracker.

    Shards hold disjoint row groups of one plan, so their states merge
    (:meth:`CompletionTracker.merge`); a shard that has not checkpointed yet contributes
    nothing.  The result is a view for progress and inspection, with checkpoint semantics.
    """
    states = shard_states(output_dir, graph)
    if not states:
        return CompletionTracker.with_graph(graph, [])
    return CompletionTracker.merge([states[shard] for shard in sorted(states, key=lambda r: r.start)])
