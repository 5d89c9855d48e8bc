"""The whole job's tracker state, read from the newest checkpoint of every shard in ``output_dir``.

Progress and results never need the shards' trackers merged (their counts add up); these
are the views for inspection: each shard's state, or all of them merged into one tracker
(shards hold disjoint row groups of one plan, so :meth:`CompletionTracker.merge` combines
them).
"""

from __future__ import annotations

import os
from pathlib import Path

from cellfrontier.graph import ExecutionGraph
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.store.shard_dirs import latest_checkpoint
from cellfrontier.tracker import CompletionTracker

__all__ = ["merged_job_state", "shard_states"]


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
