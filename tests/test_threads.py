"""Several threads sharing one tracker end in exactly the state one thread would reach.

Concurrency contract (see the ``tracker`` module docstring): in graph mode every call into the
compiled core holds the tracker's own lock (``_lock.h``) from its first check to its result,
so events from several threads never interleave and no update is lost; a tracker built
without a graph serialises its mutations with a lock to the same effect.  A task enters the frontier once, so
across all threads each task appears in at most one delta's ``added`` and is handed out by at
most one ``pop_ready``.  What the contract does not give is an order: the caller decides which
thread's event comes first, and only order-independent outcomes (the completion state, and the
frontier when nothing is handed out) are compared with a single-threaded replay here.
Compaction while other threads still write to the same group is the caller's race to avoid.
"""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from cellfrontier import CompletionTracker, RowGroupPlan, SliceRef
from cellfrontier.testing.workloads import W10, build_graph

pytestmark = pytest.mark.process

THREADS = 8
PLAN = RowGroupPlan.uniform(1_500, 400)  # 400, 400, 400, 300


@pytest.fixture(autouse=True)
def _switch_often():
    """Make the interpreter switch threads as often as it can, to provoke interleavings."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def run_threads(work: list[Callable[[], object]]) -> list[object]:
    barrier = threading.Barrier(len(work))
    results: list[object] = [None] * len(work)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work[i]()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def operations(rng: random.Random) -> list[tuple]:
    """Marks, bulk marks, drops and bulk drops over every group, in no particular order."""
    ops: list[tuple] = []
    for rg, n in PLAN:
        ops.append(("roots", rg, n))
        ops.append(("range", "seed", rg, n))
        if rg % 2 == 0:
            ops.append(("range", "judge", rg, n))
        for column in ("topic", "q", "a", "meta", "score", "fix"):
            rows = rng.sample(range(n), n * 3 // 4)
            half = len(rows) // 2
            ops.extend(("cell", column, rg, r) for r in rows[:half])
            for chunk in np.array_split(np.array(rows[half:], dtype=np.int64), 5):
                ops.append(("cells", column, rg, chunk))
        dropped = rng.sample(range(n), n // 20)
        ops.extend(("drop", rg, r) for r in dropped[: len(dropped) // 2])
        ops.append(("drops", rg, np.array(dropped[len(dropped) // 2 :], dtype=np.int64)))
    rng.shuffle(ops)
    return ops


def apply(tracker: CompletionTracker, op: tuple):
    kind = op[0]
    if kind == "roots":
        return tracker.add_root_tasks(op[1], op[2])
    if kind == "range":
        return tracker.mark_row_range_complete(op[1], op[2], op[3])
    if kind == "cell":
        return tracker.mark_cell_complete(op[1], op[2], op[3])
    if kind == "cells":
        return tracker.mark_cells_complete(op[1], op[2], op[3])
    if kind == "drop":
        return tracker.drop_row(op[1], op[2])
    return tracker.drop_rows(op[1], op[2])


def state(tracker: CompletionTracker):
    return tracker.to_bytes(), tracker.ready_frontier(), tracker.progress(), tracker.active_row_groups()


@pytest.mark.parametrize("overlap", [False, True], ids=["disjoint", "overlapping"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_concurrent_events_match_a_single_threaded_replay(seed, overlap) -> None:
    rng = random.Random(seed)
    ops = operations(rng)
    shares: list[list[tuple]] = [[] for _ in range(THREADS)]
    for op in ops:
        owners = rng.sample(range(THREADS), rng.randint(1, 3) if overlap else 1)
        for owner in owners:
            shares[owner].append(op)
    for share in shares:
        rng.shuffle(share)
    shared = CompletionTracker.with_graph(build_graph(W10), PLAN)

    def worker(share: list[tuple]) -> Callable[[], list]:
        return lambda: [apply(shared, op) for op in share]

    deltas = [d for result in run_threads([worker(s) for s in shares]) for d in result]

    replay = CompletionTracker.with_graph(build_graph(W10), PLAN)
    for op in ops:
        apply(replay, op)
    assert state(shared) == state(replay)
    # Every entry into and exit from the frontier was reported exactly once, by some thread.
    added = Counter(t for d in deltas for t in d.added)
    removed = Counter(t for d in deltas for t in d.removed)
    assert max(added.values()) == 1 and max(removed.values(), default=1) == 1
    assert set(added) - set(removed) == set(shared.ready_frontier())
    assert set(removed) <= set(added)


def test_concurrent_pops_hand_out_each_task_exactly_once() -> None:
    tracker = CompletionTracker.with_graph(build_graph(W10), PLAN)
    tracker.seed_frontier()
    for rg, n in PLAN:
        tracker.mark_row_range_complete("seed", rg, n)
    frontier = tracker.ready_frontier()
    assert len(frontier) == 2 * 1_500

    all_holding = threading.Barrier(THREADS)

    def popper(seed: int) -> Callable[[], list]:
        rng = random.Random(seed)

        def body() -> list:
            try:
                got = [(t.column, t.row_group, t.row_index) for t in tracker.pop_ready(rng.randint(1, 40))]
            except BaseException:
                all_holding.abort()  # release the others instead of leaving them waiting
                raise
            # Every thread holds handed-out tasks before any goes on, on every run.
            all_holding.wait(timeout=600)  # the timeout is a safety net, never reached when healthy
            while True:
                if rng.random() < 0.2:
                    rg = rng.choice([0, 1, 2, 3])
                    rows = tracker.ready_rows("topic", rg, take=True)
                    got.extend(("topic", rg, int(r)) for r in rows)
                    continue
                tasks = tracker.pop_ready(rng.randint(1, 40))
                if not tasks and tracker.frontier_size() == 0:
                    return got
                got.extend((t.column, t.row_group, t.row_index) for t in tasks)

        return body

    results = run_threads([popper(i) for i in range(THREADS)])
    assert all(results), "a thread handed out nothing"
    handed = [task for result in results for task in result]
    assert len(handed) == len(set(handed)) == len(frontier)
    assert set(handed) == {(t.column, t.row_group, t.row_index) for t in frontier}
    assert tracker.frontier_size() == 0 and tracker.ready_frontier() == ()


def test_threads_driving_w10_together_finish_with_every_task_done_once() -> None:
    tracker = CompletionTracker.with_graph(build_graph(W10), PLAN)
    tracker.seed_frontier()
    sizes = dict(PLAN)
    columns = list(W10.column_names)

    def all_done() -> bool:
        return all(tracker.is_row_group_complete(rg, n, columns) for rg, n in PLAN)

    a_driver_failed = threading.Event()  # the others would wait forever for its tasks

    def driver() -> list:
        handled = []
        try:
            while not a_driver_failed.is_set():
                tasks = tracker.pop_ready(25)
                if not tasks:
                    if all_done():
                        return handled
                    continue  # others hold the ready tasks: wait for them to complete some
                for task in tasks:
                    rg, row = task.row_group, task.row_index
                    if row is None:
                        tracker.mark_row_range_complete(task.column, rg, sizes[rg])
                    elif task.column == "q" and row % 10 == 0:
                        tracker.drop_row(rg, row)
                    else:
                        tracker.mark_cell_complete(task.column, rg, row)
                    handled.append(task)
        except BaseException:
            a_driver_failed.set()
            raise
        return handled

    handled = [t for result in run_threads([driver for _ in range(4)]) for t in result]
    assert len(handled) == len(set(handled))
    progress = tracker.progress()
    assert all(p.remaining == 0 for p in progress.values())
    drops = sum(1 for t in handled if t.column == "q" and t.row_index % 10 == 0)
    assert drops == progress["q"].dropped == 150
    for column in columns:
        ran = sum(1 for t in handled if t.column == column)
        if t_batch(column):
            assert ran == len(PLAN)
        else:
            assert ran == progress[column].completed + (drops if column == "q" else 0)


def t_batch(column: str) -> bool:
    return W10.strategy(column) == "full_column"


def test_graphless_tracker_loses_no_concurrent_update() -> None:
    tracker = CompletionTracker()
    n = 2_000

    def marker(offset: int) -> Callable[[], None]:
        def body() -> None:
            for r in range(offset, n, THREADS):
                tracker.mark_cell_complete("col", 0, r)
                if r % 7 == 0:
                    tracker.drop_row(1, r)
                tracker.mark_cell_complete("col", 2 + r % 3, r)

        return body

    run_threads([marker(i) for i in range(THREADS)])
    assert all(tracker.is_complete(SliceRef("col", 0, r)) for r in range(n))
    assert all(tracker.is_dropped(1, r) == (r % 7 == 0) for r in range(n))
    assert all(tracker.is_complete(SliceRef("col", 2 + r % 3, r)) for r in range(n))
    assert tracker.is_row_group_complete(0, n, ["col"])
