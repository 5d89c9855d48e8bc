"""Merging the states of trackers that own disjoint row groups: the shards of one job.

A job cut into shards runs one tracker per shard; each records events of its own row groups
only, over the same graph and (usually) the same row-group plan.  :func:`merge_checkpoints`
combines their checkpoints into the checkpoint one tracker would have written had it recorded
every event: active groups and compacted groups side by side, the per-column totals of the
compacted groups added up.  ``CompletionTracker.merge`` is the public entry point.

It works on checkpoint bytes, the codec's plain values, so the merged state enters a core
through the same untrusting loader as any checkpoint (``TrackerCore.from_state`` rebuilds every
counter from the bits).  It therefore has checkpoint semantics: tasks handed out and not
completed are ready again in the merged tracker.

Refused, with the reason named: a mix of trackers with and without a graph, different graphs,
different plans (explicit plans may differ when they agree on the size of every row group they
share: the merged plan is their union), and a row group that two trackers both hold (active or
compacted in both): each row group's state must come from exactly one tracker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cellfrontier import checkpoint
from cellfrontier.errors import InvalidArgumentError, StateMergeError
from cellfrontier.graph import ExecutionGraph
from cellfrontier.row_groups import RowGroupPlan
from cellfrontier.state import CompactedGroup, CoreState, PlainState

__all__ = ["merge_checkpoints"]


def merge_checkpoints(parts: Sequence[bytes]) -> bytes:
    """The checkpoint holding every row group of *parts* (checkpoint bytes of disjoint trackers)."""
    if not parts:
        raise InvalidArgumentError("merge() needs at least one tracker")
    decoded = [checkpoint.decode(bytes(part)) for part in parts]
    if all(isinstance(state, PlainState) for state in decoded):
        return checkpoint.encode(_merge_plain([s for s in decoded if isinstance(s, PlainState)]))
    if any(isinstance(state, PlainState) for state in decoded):
        kinds = ", ".join(
            f"tracker {i} {'has no' if isinstance(s, PlainState) else 'has a'} graph"
            for i, s in enumerate(decoded)
        )
        raise StateMergeError(f"merge() cannot combine trackers with and without a graph: {kinds}")
    graph_parts = [s for s in decoded if isinstance(s, checkpoint.GraphCheckpoint)]
    return checkpoint.encode(_merge_graph(graph_parts))


def _merge_graph(parts: list[checkpoint.GraphCheckpoint]) -> checkpoint.GraphCheckpoint:
    first = parts[0]
    for i, part in enumerate(parts[1:], start=1):
        if part.graph != first.graph:
            difference = ExecutionGraph.from_signature(part.graph).difference(
                ExecutionGraph.from_signature(first.graph)
            )
            raise StateMergeError(
                f"merge() got trackers of different graphs: tracker {i} vs tracker 0: {difference}"
            )
        if part.state.columns != first.state.columns:  # same graph, so this would be a corrupt state
            raise StateMergeError(f"merge() got tracker {i} with another column order than tracker 0")
    plan = _merge_plans([RowGroupPlan.from_dict(part.plan) for part in parts])
    _refuse_shared_groups(
        [[g.row_group for g in p.state.active] + [g.row_group for g in p.state.compacted] for p in parts]
    )
    width = len(first.state.columns)
    state = CoreState(
        columns=first.state.columns,
        active=tuple(sorted((g for p in parts for g in p.state.active), key=lambda g: g.row_group)),
        compacted=_sorted_compacted(p.state.compacted for p in parts),
        compacted_completed=_column_sums([p.state.compacted_completed for p in parts], width),
        compacted_dropped=_column_sums([p.state.compacted_dropped for p in parts], width),
        completed=(),
        dropped=(),
    )
    return checkpoint.GraphCheckpoint(graph=first.graph, plan=plan.to_dict(), state=state)


def _merge_plain(parts: list[PlainState]) -> PlainState:
    _refuse_shared_groups(
        [[g.row_group for g in p.groups] + [g.row_group for g in p.compacted] for p in parts]
    )
    return PlainState(
        groups=tuple(sorted((g for p in parts for g in p.groups), key=lambda g: g.row_group)),
        compacted=_sorted_compacted(p.compacted for p in parts),
    )


def _merge_plans(plans: list[RowGroupPlan]) -> RowGroupPlan:
    """The plans if they are all the same; the union of explicit plans that agree on sizes."""
    first = plans[0]
    if all(plan == first for plan in plans[1:]):
        return first
    uniform = [i for i, plan in enumerate(plans) if plan.is_uniform]
    if uniform:
        shown = "; ".join(f"tracker {i}: {plans[i]!r}" for i in range(len(plans)) if plans[i] != first)
        raise StateMergeError(
            f"merge() got trackers of different row-group plans (tracker 0: {first!r}; {shown}); "
            "uniform plans must be equal, explicit plans may differ where they do not share a group"
        )
    sizes: dict[int, int] = {}
    owner: dict[int, int] = {}
    for i, plan in enumerate(plans):
        for rg, size in plan:
            if rg in sizes and sizes[rg] != size:
                raise StateMergeError(
                    f"merge() got row group {rg} of {sizes[rg]} rows in tracker {owner[rg]}'s plan "
                    f"and of {size} rows in tracker {i}'s"
                )
            sizes.setdefault(rg, size)
            owner.setdefault(rg, i)
    return RowGroupPlan.explicit(sorted(sizes.items()))


def _refuse_shared_groups(held: list[list[Any]]) -> None:
    """Each row group's state must come from one tracker: refuse a group that two hold."""
    owner: dict[Any, int] = {}
    shared: list[str] = []
    for i, groups in enumerate(held):
        for rg in groups:
            if rg in owner:
                shared.append(f"{rg!r} (trackers {owner[rg]} and {i})")
            else:
                owner[rg] = i
    if shared:
        more = f", ... ({len(shared)} in all)" if len(shared) > 5 else ""
        raise StateMergeError(
            "merge() needs trackers that hold disjoint row groups; held by two: "
            + ", ".join(shared[:5])
            + more
        )


def _sorted_compacted(groups: Any) -> tuple[CompactedGroup, ...]:
    return tuple(sorted((g for part in groups for g in part), key=lambda g: g.row_group))


def _column_sums(rows: list[tuple[int, ...]], width: int) -> tuple[int, ...]:
    totals = [0] * width
    for row in rows:
        if len(row) != width:
            raise StateMergeError(f"merge() got per-column totals of {len(row)} columns, expected {width}")
        for j, value in enumerate(row):
            totals[j] += int(value)
    return tuple(totals)
