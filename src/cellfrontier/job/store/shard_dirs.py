"""Shards on disk: registering a shard's directory, finding its newest checkpoint, telling it finished.

A shard is registered by creating its directory, ``checkpoints/shard-<first>-<stop>/``
(``mkdir`` is atomic); the directories present *are* the output directory's cut of the job
into shards.  Shards never overlap: a range that overlaps a registered shard without being
it is refused, and so is a shard directory outside the job's row groups.  A finished shard
is told from its newest checkpoint's header alone, without reading its payload.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cellfrontier.job.errors import OutputDirError
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.store.fencing import checkpoint_epochs, epoch_checkpoint_path
from cellfrontier.job.store.shard_checkpoint import ShardCheckpoint, load_checkpoint, read_checkpoint_header
from cellfrontier.job.store.status_reader import usage_from_header

__all__ = [
    "FinishedShard",
    "check_shard_ranges",
    "finished_shard",
    "finished_shards",
    "latest_checkpoint",
    "register_shards",
]


def check_shard_ranges(ranges: Sequence[range], num_row_groups: int, root: Path) -> None:
    """Refuse shard ranges (sorted by first group) that overlap or leave ``range(0, num_row_groups)``."""
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
        check_shard_ranges(layout.shard_ranges(), 1 << 62, layout.root)
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
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    """Its usage counters per column, from the header (see :mod:`cellfrontier.job.usage`)."""


def finished_shard(
    layout: OutputLayout, shard: range, job_digests: frozenset[str], written: set[int]
) -> FinishedShard | None:
    """*shard* as finished (read from its newest checkpoint's header only), or None.

    *written* holds the row groups whose files exist; a shard whose checkpoint says final but
    whose files are not all there is not finished (running it reports what is missing).
    *job_digests* are those the job version accepts (its checkpoints' stamp).
    """
    directory = layout.shard_dir(shard.start, shard.stop)
    epochs = checkpoint_epochs(directory)
    if not epochs:
        return None
    try:
        header = read_checkpoint_header(epoch_checkpoint_path(directory, epochs[-1]))
    except OSError:
        return None
    if not header or not header.get("final") or header.get("job") not in job_digests:
        return None
    if any(rg not in written for rg in shard):
        return None
    return FinishedShard(
        shard, int(header["epoch"]), int(header["records"]), int(header["dropped"]), usage_from_header(header)
    )


def finished_shards(
    layout: OutputLayout, shards: Sequence[range], job_digests: frozenset[str], written: set[int]
) -> dict[range, FinishedShard]:
    """The finished ones among *shards* (see :func:`finished_shard`), by range."""
    finished: dict[range, FinishedShard] = {}
    for shard in shards:
        done = finished_shard(layout, shard, job_digests, written)
        if done is not None:
            finished[shard] = done
    return finished
