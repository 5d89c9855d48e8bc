"""Property: any sequence of edits and reruns on one directory ends as a fresh run of the final job.

Edits drawn by hypothesis, applied one after another to the same ``output_dir``, each followed
by a run: a column's version bumped (it and its downstream change), a cell column made to fail
on some rows or healed (its drops then stay while it is kept, and get another chance once it
changes), a column made volatile, a leaf column added or removed, rows added.  Every failure
is a pure function of (column version, row), so a fresh run of the final job is the oracle.
Each rerun's plan is checked against the run too: it never computes more than planned, and
exactly as planned where nothing fails.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellfrontier import Job, generator
from cellfrontier.testing.j12 import CELL_COLUMNS, J12_COLUMNS, build_j12_graph, j12_generators

pytest.importorskip("pyarrow")

BUFFER = 25
NAMES = [c.name for c in J12_COLUMNS]


class Failing:
    """A cell generator that raises on the rows where ``(row * 7 + salt) % 9 == 0``."""

    def __init__(self, fn: Any, salt: int) -> None:
        self.fn, self.salt = fn, salt

    def __call__(self, row: Any) -> Any:
        if (row["_row"] * 7 + self.salt) % 9 == 0:
            raise ValueError("fails here")
        return self.fn(row)


class Extra:
    """An added leaf column: reads *upstream*."""

    def __init__(self, upstream: str, scale: int) -> None:
        self.upstream, self.scale = upstream, scale

    def __call__(self, row: Any) -> Any:
        return f"{row[self.upstream]}*{self.scale}"


@dataclass(frozen=True)
class JobState:
    rows: int
    versions: dict[str, int] = field(default_factory=dict)
    failing: dict[str, int] = field(default_factory=dict)
    volatile: frozenset[str] = frozenset()
    extras: tuple[tuple[str, str, int], ...] = ()  # (name, upstream, scale)

    def job(self, out: Path | None) -> Job:
        graph = build_j12_graph()
        base = j12_generators()
        generators: dict[str, Any] = {}
        for name in NAMES:
            fn: Any = base[name]
            version = f"v{self.versions.get(name, 0)}"
            if name in self.failing:
                fn = Failing(fn, self.failing[name])
                version += f"-fail{self.failing[name]}"
            generators[name] = (
                generator(fn, volatile=True) if name in self.volatile else generator(fn, version=version)
            )
        for name, upstream, scale in self.extras:
            graph.add_column(name, "cell_by_cell")
            graph.add_edge(upstream, name)
            generators[name] = generator(Extra(upstream, scale), version=f"{upstream}-{scale}")
        return Job(
            graph,
            generators,
            self.rows,
            buffer_size=BUFFER,
            output_dir=out,
            max_error_rate=1.0,
            progress_bar=False,
            checkpoint_interval=1e9,
            tune_gc=False,
        )


def apply(state: JobState, edit: tuple[Any, ...], counter: int) -> JobState:
    kind = edit[0]
    if kind == "bump":
        versions = dict(state.versions)
        versions[edit[1]] = versions.get(edit[1], 0) + 1
        return replace(state, versions=versions)
    if kind == "fail":
        failing = dict(state.failing)
        if edit[2] is None:
            failing.pop(edit[1], None)
        else:
            failing[edit[1]] = edit[2]
        return replace(state, failing=failing)
    if kind == "volatile":
        return replace(state, volatile=state.volatile ^ {edit[1]})
    if kind == "add":
        return replace(state, extras=(*state.extras, (f"extra{counter}", edit[1], edit[2])))
    if kind == "remove":
        if not state.extras:
            return state
        index = edit[1] % len(state.extras)
        return replace(state, extras=state.extras[:index] + state.extras[index + 1 :])
    assert kind == "grow"
    return replace(state, rows=state.rows + edit[1])


def edits(state: JobState) -> st.SearchStrategy[tuple[Any, ...]]:
    """An edit of *state*; healing or changing a failing column is drawn as often as making one fail."""
    failing = sorted(state.failing) or list(CELL_COLUMNS)
    salts = st.one_of(st.none(), st.integers(0, 8))
    return st.one_of(
        st.tuples(st.just("bump"), st.sampled_from(NAMES)),
        st.tuples(st.just("fail"), st.sampled_from(CELL_COLUMNS), salts),
        st.tuples(st.just("fail"), st.sampled_from(failing), salts),
        st.tuples(st.just("volatile"), st.sampled_from(NAMES)),
        st.tuples(st.just("add"), st.sampled_from(NAMES), st.integers(1, 3)),
        st.tuples(st.just("remove"), st.integers(0, 5)),
        st.tuples(st.just("grow"), st.integers(0, 60)),
    )


def table_of(result: Any) -> dict[str, list[Any]]:
    return result.to_pydict(row_index=True)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    start=st.integers(1, 90),
    failing=st.dictionaries(st.sampled_from(CELL_COLUMNS), st.integers(0, 8), max_size=2),
    steps=st.integers(1, 4),
    data=st.data(),
)
def test_any_sequence_of_edits_and_reruns_ends_as_a_fresh_run(
    start: int, failing: dict[str, int], steps: int, data: st.DataObject
) -> None:
    root = Path(tempfile.mkdtemp(prefix="cf-rerun-"))
    try:
        out = root / "out"
        state = JobState(start, failing=failing)
        state.job(out).run()
        for counter in range(steps):
            state = apply(state, data.draw(edits(state), label=f"edit {counter}"), counter)
            job = state.job(out)
            plan = job.plan_rerun()
            result = job.run()
            assert result.tasks <= plan.tasks_to_compute
            if not state.failing:
                assert result.tasks == plan.tasks_to_compute
            assert set(plan.kept).isdisjoint(c.column for c in plan.recomputed)
        final = table_of(state.job(out).run())
        fresh = table_of(state.job(None).run())
        assert final == fresh
    finally:
        shutil.rmtree(root, ignore_errors=True)
