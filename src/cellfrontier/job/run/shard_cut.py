"""Which shards a run covers: the ones registered in the output directory, plus new ones cut from the rest.

A run (local or on a cluster) keeps the shards it finds and cuts only the row groups no shard
covers into new ones, so a job started on a cluster can be finished by a local ``job.run()``
(which runs the shards one after another) and a rerun with more or fewer workers resumes the
same shards.
"""

from __future__ import annotations

import itertools

from cellfrontier.job.errors import OutputDirError
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.store.shard_dirs import check_shard_ranges

__all__ = ["cut_range", "cut_shards"]


def cut_range(groups: range, count: int) -> list[range]:
    """*groups* cut into at most *count* contiguous ranges of near-equal size (none empty)."""
    size = len(groups)
    count = max(1, min(count, size))
    bounds = [groups.start + size * k // count for k in range(count + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def cut_shards(
    layout: OutputLayout, num_row_groups: int, *, requested: range | None = None, new_shards: int = 1
) -> list[range]:
    """The shards a run covers: the registered ones, plus new ones cut from what none covers.

    With *requested* (``job.run(row_groups=...)``) the run covers just that range, which must
    be a registered shard or overlap none.  Otherwise every registered shard is kept and each
    gap between them is cut into about *new_shards* per whole job, in proportion to its size.
    """
    existing = layout.shard_ranges()
    check_shard_ranges(existing, num_row_groups, layout.root)
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
    shards: list[range] = []
    position = 0
    for shard in [*existing, range(num_row_groups, num_row_groups)]:
        gap = range(position, shard.start)
        if len(gap):
            share = max(1, round(new_shards * len(gap) / max(1, num_row_groups)))
            shards.extend(cut_range(gap, share))
        if len(shard):
            shards.append(shard)
        position = shard.stop
    return shards
