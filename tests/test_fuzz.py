"""Byte-driven fuzzing of the public API: random bytes become sequences of calls, valid and not.

Contract checked on every call: it either succeeds or raises a :class:`CellFrontierError`
subclass (never another exception, never a crash of the process), and a call that raises
leaves the tracker exactly as it was (same ``ready_frontier()``, same ``progress()``, same
checkpoint bytes).  An input's bytes pick the calls and their arguments; once they run out a
PRNG seeded with them takes over, so every input drives ``MAX_CALLS`` calls.  Run under
Hypothesis here (``st.binary``, bounded by the profile's ``max_examples``);
``python tests/test_fuzz.py [libFuzzer flags]`` runs the same target under atheris when it is
installed (CI does, for a bounded time: ``-max_total_time=N``).
"""

from __future__ import annotations

import gc
import math
import os
import pickle
import random
import sys
import tempfile
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellfrontier import (
    CellFrontierError,
    CompletionTracker,
    ExecutionGraph,
    RowGroupPlan,
    SliceRef,
    Task,
)
from cellfrontier.testing.workloads import graph_from_columns

COLUMNS = [
    ("seed", "full_column", ()),
    ("topic", "cell_by_cell", ("seed",)),
    ("q", "cell_by_cell", ("topic",)),
    ("judge", "full_column", ("q",)),
    ("final", "cell_by_cell", ("judge", "q")),
    ("extra", "cell_by_cell", ()),
    ("tail", "full_column", ("extra", "final")),
]
NAMES = [name for name, _, _ in COLUMNS]
BAD_NAMES = ["q__trace", "", "nope", "SEED", None, 3, b"q", ["q"], {"q": 1}, 1.5]
BAD_INTS = [
    -1,
    -(2**63),
    2**63 - 1,
    2**63,
    2**64 + 5,
    -(2**70),
    10**30,
    2**31,
    1.0,
    math.nan,
    True,
    False,
    None,
    "1",
    np.int64(1),
    np.uint64(2**63),
    np.int8(-1),
    np.float64(2.0),
    np.bool_(True),
    [1],
    (1,),
    1j,
]
PLANS = [
    lambda: [(0, 70), (5, 1), (9, 0), (-3, 130)],
    lambda: RowGroupPlan.uniform(200, 64),
]
_TMP = tempfile.mkdtemp(prefix="cf-fuzz-")
MAX_CALLS = 300  # calls per input: the bytes first, then their PRNG continuation
ATHERIS_CALLS = 100
SEEDED_INPUTS = 20
OWN_MODULES = ("cellfrontier", "__main__")  # what atheris instruments


def make_graph() -> ExecutionGraph:
    graph = graph_from_columns(COLUMNS)
    graph.set_side_effect("q__trace", "q")
    return graph


class Bytes:
    """Reads choices off the input, then off a PRNG seeded with it once it runs out.

    The continuation keeps every input a deterministic function of its bytes (as a fuzzer
    needs) while letting a short input drive a long call sequence.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.rng: random.Random | None = None

    def byte(self) -> int:
        if self.pos < len(self.data):
            self.pos += 1
            return self.data[self.pos - 1]
        if self.rng is None:
            self.rng = random.Random(self.data)
        return self.rng.getrandbits(8)

    def pick(self, options):
        return options[self.byte() % len(options)]

    def flag(self) -> bool:
        return bool(self.byte() & 1)


class Fuzzer:
    def __init__(self, data: bytes) -> None:
        self.inp = Bytes(data)
        self.graph_mode = self.inp.byte() % 4 != 0
        plan = self.inp.pick(PLANS)()
        self.sizes = dict(plan)
        self.groups = list(self.sizes)
        self.tracker = (
            CompletionTracker.with_graph(make_graph(), plan) if self.graph_mode else CompletionTracker()
        )
        self.handed_out: list[Task] = []
        self.calls = 0
        self.errors = 0

    # -- argument pools -------------------------------------------------------------------

    def column(self):
        return self.inp.pick(NAMES) if self.inp.byte() % 8 else self.inp.pick(BAD_NAMES)

    def row_group(self):
        b = self.inp.byte() % 16
        if b < 12:
            return self.inp.pick(self.groups)
        if b < 14:
            return self.inp.pick([1, 2, 10**9, -(2**62) - 1])
        return self.inp.pick(BAD_INTS)

    def row(self, rg):
        b = self.inp.byte() % 16
        size = self.sizes.get(rg, 64) if isinstance(rg, int) and not isinstance(rg, bool) else 64
        if b < 11:
            return self.inp.byte() % max(size, 1)
        if b < 13:
            return self.inp.pick([size, size - 1, size + 1, 63, 64, 65])
        return self.inp.pick(BAD_INTS)

    def size(self, rg):
        if self.inp.byte() % 8 and isinstance(rg, int) and rg in self.sizes:
            return self.sizes[rg]
        return self.inp.pick([*BAD_INTS, 0, 5, 64])

    def rows(self, rg):
        size = self.sizes.get(rg, 64) if isinstance(rg, int) and not isinstance(rg, bool) else 64
        b = self.inp.byte() % 16
        n = self.inp.byte() % 12
        if b < 9:
            values = np.array([self.inp.byte() % max(size, 1) for _ in range(n)], dtype=np.int64)
            # astype wraps out-of-range values (int8: 200 -> -56), which must be refused too
            return values.astype(self.inp.pick([np.int64, np.int32, np.uint16, np.uint64, np.int8]))
        if b < 10:
            return [self.inp.byte() % max(size, 1) for _ in range(n)]
        return self.inp.pick(
            [
                np.array([size]),
                np.array([-1, 0]),
                np.array([1.0, 2.0]),
                np.array([True, False]),
                np.zeros((2, 2), dtype=np.int64),
                np.int64(3),
                np.array([], dtype=float),
                [],
                np.array([2**64 - 1], dtype=np.uint64),
                np.array([1, "x"], dtype=object),
                [[1], [1, 2]],
                None,
                "0",
                [2**70],
                np.array([0, -(2**63)]),
            ]
        )

    def task(self) -> Task:
        if self.handed_out and self.inp.flag():
            return self.inp.pick(self.handed_out)
        column = self.inp.pick([*NAMES, "nope", ""])
        rg = self.row_group()
        row = None if self.inp.flag() else self.row(rg)
        return Task(column, rg, row, self.inp.pick(["cell", "batch", "from_scratch"]))

    # -- state ---------------------------------------------------------------------------

    def state(self):
        t = self.tracker
        if not self.graph_mode:
            return t.to_bytes()
        return t.ready_frontier(), t.progress(), t.active_row_groups(), t.to_bytes()

    # -- one call --------------------------------------------------------------------------

    def call(self) -> None:
        t = self.tracker
        inp = self.inp
        op = inp.byte() % 24
        if op == 0:
            rg = self.row_group()
            t.mark_cell_complete(self.column(), rg, self.row(rg))
        elif op == 1:
            rg = self.row_group()
            t.mark_row_range_complete(self.column(), rg, self.size(rg))
        elif op == 2:
            rg = self.row_group()
            t.drop_row(rg, self.row(rg))
        elif op == 3:
            rg = self.row_group()
            t.mark_cells_complete(self.column(), rg, self.rows(rg))
        elif op == 4:
            rg = self.row_group()
            t.drop_rows(rg, self.rows(rg))
        elif op == 5:
            rg = self.row_group()
            columns = inp.pick([None, None, ["seed"], ["extra", "seed"], ["q"], "seed", [None], ["nope"], []])
            t.add_root_tasks(rg, self.size(rg), columns)
        elif op == 6:
            t.seed_frontier()
        elif op == 7:
            t.add_ready_tasks([self.task() for _ in range(inp.byte() % 4)])
        elif op == 8:
            t.mark_enqueued([self.task() for _ in range(inp.byte() % 4)])
        elif op == 9:
            t.compact_row_group(self.row_group())
        elif op in (10, 11):
            limit = inp.pick([None, 0, 1, 3, 17, 2**70, -1, 1.5, True, "3", np.int32(2)])
            self.handed_out.extend(t.pop_ready(limit))
            del self.handed_out[:-50]
        elif op == 12:
            rg = self.row_group()
            t.ready_rows(self.column(), rg, take=inp.flag())
        elif op == 13:
            t.pop_ready_batch(self.column(), self.row_group())
        elif op == 14:
            t.ready_columns(self.row_group())
        elif op == 15:
            rg = self.row_group()
            t.is_complete(SliceRef(self.column(), rg, None if inp.flag() else self.row(rg)))
        elif op == 16:
            rg = self.row_group()
            t.is_dropped(rg, self.row(rg))
        elif op == 17:
            rg = self.row_group()
            t.is_row_group_complete(rg, self.size(rg), [self.column() for _ in range(inp.byte() % 3)])
        elif op == 18:
            t.is_column_complete_for_rg(self.column(), self.row_group())
        elif op == 19:
            t.is_frontier_task(self.task())
        elif op == 20:
            t.get_ready_tasks(self.handed_out[:5], None if inp.flag() else [self.row_group()])
        elif op == 21:
            self.round_trip()
        elif op == 22:
            self.tick()
        else:
            t.frontier_size()
            t.progress()
            t.active_row_groups()
            repr(t)
            assert t.nbytes >= 0

    def round_trip(self) -> None:
        before = self.tracker
        how = self.inp.byte() % 3
        if how == 0:
            after = CompletionTracker.from_bytes(before.to_bytes())
        elif how == 1:
            after = pickle.loads(pickle.dumps(before))
        else:
            path = os.path.join(_TMP, "fuzz.ckpt")
            before.save(path)
            after = CompletionTracker.load(path, before.graph)
        if self.graph_mode:
            assert set(before.ready_frontier()) <= set(after.ready_frontier())
            assert before.progress() == after.progress()
            assert before.active_row_groups() == after.active_row_groups()
            self.handed_out.clear()
        assert after.to_bytes() == CompletionTracker.from_bytes(after.to_bytes()).to_bytes()
        self.tracker = after

    def tick(self) -> None:
        """One driver tick: hand out everything ready, then complete it (drops on q)."""
        t = self.tracker
        for task in t.pop_ready(200):
            if task.row_index is None:
                t.mark_row_range_complete(task.column, task.row_group, self.sizes[task.row_group])
            elif task.column == "q" and task.row_index % 3 == 0:
                t.drop_row(task.row_group, task.row_index)
            else:
                t.mark_cell_complete(task.column, task.row_group, task.row_index)

    def run(self, max_calls: int = MAX_CALLS) -> None:
        while self.calls < max_calls:
            before = self.state()
            self.calls += 1
            try:
                self.call()
            except CellFrontierError:
                self.errors += 1
                after = self.state()
                assert after == before, "a failing call changed the state"
            except Exception as exc:
                raise AssertionError(
                    f"call {self.calls} raised {type(exc).__name__}, not a CellFrontierError: {exc}"
                ) from exc


def fuzz_one_input(data: bytes, max_calls: int = MAX_CALLS) -> None:
    """The fuzz target: turn *data* into calls and check the contract (atheris-compatible)."""
    Fuzzer(data).run(max_calls)


@given(st.binary(min_size=200, max_size=2000))
def test_random_call_sequences_keep_the_error_contract(data: bytes) -> None:
    fuzz_one_input(data)


def test_seeded_byte_strings_keep_the_error_contract() -> None:
    """A fixed batch of pseudo-random inputs, so every run covers the same ground."""
    rng = random.Random(20240611)
    calls = errors = graph_inputs = 0
    for _ in range(SEEDED_INPUTS):
        fuzzer = Fuzzer(rng.randbytes(rng.randrange(200, 2000)))
        fuzzer.run()
        calls += fuzzer.calls
        errors += fuzzer.errors
        graph_inputs += fuzzer.graph_mode
    assert calls == SEEDED_INPUTS * MAX_CALLS and 0 < errors < calls  # the inputs reach both outcomes
    assert 0 < graph_inputs < SEEDED_INPUTS


@pytest.mark.parametrize("graph_mode", [True, False], ids=["graph", "graphless"])
def test_every_bad_argument_alone_is_refused_cleanly(graph_mode) -> None:
    """Each bad index / name in each position, one call at a time, on a busy tracker."""
    tracker = CompletionTracker.with_graph(make_graph(), PLANS[0]()) if graph_mode else CompletionTracker()
    if graph_mode:
        tracker.seed_frontier()
        tracker.pop_ready(30)
    state = tracker.to_bytes()
    calls = [
        lambda b: tracker.mark_cell_complete("q", 0, b),
        lambda b: tracker.mark_cell_complete("q", b, 0),
        lambda b: tracker.mark_cell_complete(b, 0, 0),
        lambda b: tracker.mark_row_range_complete("seed", 0, b),
        lambda b: tracker.mark_row_range_complete("seed", b, 70),
        lambda b: tracker.drop_row(0, b),
        lambda b: tracker.drop_row(b, 0),
        lambda b: tracker.mark_cells_complete("q", b, [0]),
        lambda b: tracker.mark_cells_complete("q", 0, [b]),
        lambda b: tracker.drop_rows(b, [0]),
        lambda b: tracker.drop_rows(0, [b]),
        lambda b: tracker.add_root_tasks(b, 70),
        lambda b: tracker.add_root_tasks(0, b),
        lambda b: tracker.compact_row_group(b),
        lambda b: tracker.pop_ready(b),
        lambda b: tracker.is_dropped(0, b),
        lambda b: tracker.is_dropped(b, 0),
        lambda b: tracker.is_complete(SliceRef("q", 0, b)),
        lambda b: tracker.is_complete(SliceRef("q", b, 0)),
        lambda b: tracker.is_row_group_complete(0, b, ["q"]),
        lambda b: tracker.is_row_group_complete(b, 70, ["q"]),
        lambda b: tracker.is_column_complete_for_rg("q", b),
        lambda b: tracker.ready_rows("q", b),
        lambda b: tracker.ready_columns(b),
        lambda b: tracker.is_frontier_task(Task("q", 0, b, "cell")),
        lambda b: tracker.add_ready_tasks([Task("q", 0, 1, "cell"), Task("q", 0, b, "cell")]),
        lambda b: tracker.mark_enqueued([Task("q", 0, 1, "cell"), Task("q", b, 1, "cell")]),
    ]
    for bad in [*BAD_INTS, 70, 71]:
        for i, call in enumerate(calls):
            try:
                call(bad)
            except CellFrontierError:
                assert tracker.to_bytes() == state, (graph_mode, i, bad)
            except Exception as exc:
                raise AssertionError(f"call {i} with {bad!r} raised {type(exc).__name__}: {exc}") from exc
            else:
                state = tracker.to_bytes()


if __name__ == "__main__":  # pragma: no cover - atheris: python tests/test_fuzz.py [libFuzzer flags]
    try:
        import atheris
    except ImportError:
        print("atheris is not installed; skipping (pip install atheris)")
        sys.exit(0)
    # Coverage feedback for the Python layers (the library's wrappers and checkpoint code, this
    # driver); the compiled core is exercised through them but not instrumented.  Only these:
    # atheris.instrument_all() would spend minutes on numpy, pytest and Hypothesis.
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and str(obj.__module__).split(".")[0] in OWN_MODULES:
            atheris.instrument_func(obj)
    # Shorter sequences than under Hypothesis: more executions for the coverage feedback to use.
    atheris.Setup(sys.argv, lambda data: fuzz_one_input(data, ATHERIS_CALLS))
    atheris.Fuzz()
