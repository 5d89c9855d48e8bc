"""Checkpoints: save/load, to_bytes/from_bytes and pickle preserve the whole completion state.

A restored tracker answers every query as the original did; tasks that were handed out but not
completed are ready again, and nothing completed is ever offered again.  A damaged or foreign
checkpoint is refused with :class:`CheckpointError`, and ``save`` is atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from graph_support import make_graph

from cellfrontier import (
    CellFrontierError,
    CheckpointError,
    CompletionTracker,
    ExecutionGraph,
    RowGroupPlan,
    SliceRef,
)
from cellfrontier.checkpoint import FORMAT_VERSION, MAGIC
from cellfrontier.testing.workloads import W10, build_graph


def w10_graph() -> ExecutionGraph:
    graph = build_graph(W10)
    graph.set_side_effect("a__trace", "a")
    return graph


def plan_rows(tracker: CompletionTracker) -> list[tuple[int, int]]:
    return list(tracker.row_group_plan)


def snapshot(tracker: CompletionTracker) -> dict:
    """Every query answer of a graph-mode tracker, cell by cell."""
    graph = tracker.graph
    assert graph is not None
    columns = graph.get_topological_order()
    out: dict = {
        "frontier": tracker.ready_frontier(),
        "frontier_size": tracker.frontier_size(),
        "progress": tracker.progress(),
        "active": tracker.active_row_groups(),
    }
    for rg, size in plan_rows(tracker):
        out[rg, "group"] = tracker.is_row_group_complete(rg, size, columns)
        out[rg, "ready_columns"] = tracker.ready_columns(rg)
        out[rg, "dropped"] = [tracker.is_dropped(rg, r) for r in range(size)]
        for col in columns:
            out[rg, col, "resolved"] = tracker.is_column_complete_for_rg(col, rg)
            out[rg, col, "batch"] = tracker.is_complete(SliceRef(col, rg, None))
            out[rg, col, "cells"] = [tracker.is_complete(SliceRef(col, rg, r)) for r in range(size)]
            if graph.get_strategy(col).value == "cell_by_cell":
                out[rg, col, "ready_rows"] = tracker.ready_rows(col, rg).tolist()
    return out


def run_ticks(tracker: CompletionTracker, ticks: int, *, sizes: dict[int, int], drop_every: int = 7) -> None:
    """Play the W10 driver for a few ticks (no admission, no compaction)."""
    for _ in range(ticks):
        for task in tracker.pop_ready():
            rg, row = task.row_group, task.row_index
            if row is None:
                tracker.mark_row_range_complete(task.column, rg, sizes[rg])
            elif task.column == "q" and row % drop_every == 0:
                tracker.drop_row(rg, row)
            else:
                tracker.mark_cell_complete(task.column, rg, row)


def finish_group(tracker: CompletionTracker, rg: int, size: int) -> None:
    """Complete a group with the driver, leaving the others untouched, then compact it."""
    columns = tracker.graph.get_topological_order()
    while not tracker.is_row_group_complete(rg, size, columns):
        tasks = [t for t in tracker.ready_frontier() if t.row_group == rg]
        assert tasks, "stalled"
        tracker.mark_enqueued(tasks)
        for task in tasks:
            if task.row_index is None:
                tracker.mark_row_range_complete(task.column, rg, size)
            elif task.column == "q" and task.row_index % 5 == 0:
                tracker.drop_row(rg, task.row_index)
            else:
                tracker.mark_cell_complete(task.column, rg, task.row_index)
    tracker.compact_row_group(rg)


def busy_tracker(plan) -> CompletionTracker:
    """Compacted, active (partly done, with drops and bulk calls) and untouched groups."""
    tracker = CompletionTracker.with_graph(w10_graph(), plan)
    pairs = list(tracker.row_group_plan)
    sizes = dict(pairs)
    (rg0, n0), (rg1, n1), (rg2, n2) = pairs[0], pairs[1], pairs[2]
    tracker.add_root_tasks(rg0, n0)
    finish_group(tracker, rg0, n0)
    tracker.add_root_tasks(rg1, n1)
    tracker.add_root_tasks(rg2, n2)
    run_ticks(tracker, 3, sizes=sizes)
    tracker.drop_rows(rg1, np.array([1, 2, n1 - 1]))
    tracker.mark_cells_complete("meta", rg1, np.arange(0, n1, 3))
    # Handed out and acknowledged, never completed: must come back after a load.
    tracker.ready_rows("a", rg2, take=True)
    tracker.pop_ready(5)
    return tracker


PLANS = {
    "uniform": lambda: RowGroupPlan.uniform(450, 130),  # 130, 130, 130, 60: word boundaries inside
    "explicit": lambda: [(7, 64), (-3, 129), (40, 1), (41, 0), (1000, 65)],
}


def handed_out_again(before: CompletionTracker, after: CompletionTracker) -> set:
    return set(after.ready_frontier()) - set(before.ready_frontier())


def round_trips(tracker: CompletionTracker, tmp_path: Path):
    path = tmp_path / "state.ckpt"
    tracker.save(path)
    yield "save/load", CompletionTracker.load(path)
    yield "save/load with graph", CompletionTracker.load(path, tracker.graph)
    yield "bytes", CompletionTracker.from_bytes(tracker.to_bytes())
    yield "pickle", pickle.loads(pickle.dumps(tracker))


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_round_trips_preserve_every_answer_when_nothing_is_handed_out(plan, tmp_path) -> None:
    tracker = busy_tracker(PLANS[plan]())
    # Put every handed-out task back so that the frontier is the whole ready set.
    loaded = CompletionTracker.from_bytes(tracker.to_bytes())
    tracker = loaded
    expected = snapshot(tracker)
    assert expected["frontier"] and expected["active"]
    for how, restored in round_trips(tracker, tmp_path):
        assert snapshot(restored) == expected, how
        assert restored.nbytes == tracker.nbytes, how
        assert restored.to_bytes() == tracker.to_bytes(), how


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_handed_out_tasks_come_back_and_completed_ones_never_do(plan, tmp_path) -> None:
    tracker = CompletionTracker.from_bytes(busy_tracker(PLANS[plan]()).to_bytes())
    handed_out = set(tracker.pop_ready(40))
    batch = next((t for t in handed_out if t.row_index is None), None)
    completed = sorted((t for t in handed_out if t.row_index is not None), key=lambda t: t.row_index)[:10]
    for task in completed:
        tracker.mark_cell_complete(task.column, task.row_group, task.row_index)
    before = snapshot(tracker)
    pending = handed_out - set(completed)
    for how, restored in round_trips(tracker, tmp_path):
        after = snapshot(restored)
        frontier = after.pop("frontier")
        assert set(frontier) == set(before["frontier"]) | pending, how
        assert after.pop("frontier_size") == len(frontier), how
        assert not set(frontier) & set(completed), how
        assert list(frontier) == restored.pop_ready(), how  # same deterministic order
        for key in ("progress", "active"):
            assert after[key] == before[key], how
        for key, value in before.items():
            if key in ("frontier", "frontier_size", "progress", "active"):
                continue
            if key[-1] in ("ready_rows", "ready_columns"):
                continue  # grows by the pending tasks
            assert after[key] == value, (how, key)
    if batch is not None:
        assert batch in CompletionTracker.from_bytes(tracker.to_bytes()).ready_frontier()


def test_completed_tasks_are_never_offered_again_over_a_full_run(tmp_path) -> None:
    """Drive to the end, checkpointing and restoring every tick: each task is done exactly once."""
    plan = RowGroupPlan.uniform(300, 70)
    sizes = dict(plan)
    tracker = CompletionTracker.with_graph(w10_graph(), plan)
    tracker.seed_frontier()
    seen: set = set()
    path = tmp_path / "run.ckpt"
    while True:
        tasks = tracker.pop_ready(97)
        if not tasks:
            break
        for task in tasks[:60]:  # the rest is lost with the process and must come back
            assert task not in seen
            seen.add(task)
            if task.row_index is None:
                tracker.mark_row_range_complete(task.column, task.row_group, sizes[task.row_group])
            elif task.column == "q" and task.row_index % 9 == 0:
                tracker.drop_row(task.row_group, task.row_index)
            else:
                tracker.mark_cell_complete(task.column, task.row_group, task.row_index)
        tracker.save(path)
        tracker = CompletionTracker.load(path)
    columns = w10_graph().get_topological_order()
    assert all(tracker.is_row_group_complete(rg, n, columns) for rg, n in plan)
    progress = tracker.progress()
    assert all(p.remaining == 0 for p in progress.values())
    dropped = sum(1 for rg, n in plan for r in range(n) if tracker.is_dropped(rg, r))
    assert dropped == sum(1 for rg, n in plan for r in range(n) if r % 9 == 0)
    # Every batch ran once per group; every completed cell ran exactly once (``seen`` is a set
    # and nothing was offered twice), plus q's cells that dropped their row.
    for column, counts in progress.items():
        ran = sum(1 for t in seen if t.column == column)
        if w10_graph().get_strategy(column).value == "full_column":
            assert ran == len(plan)
        else:
            assert ran == counts.completed + (dropped if column == "q" else 0)
    assert progress["topic"].completed == 300 and progress["final"].completed == 300 - dropped


def test_compacted_groups_survive_a_round_trip() -> None:
    plan = RowGroupPlan.uniform(200, 100)
    tracker = CompletionTracker.with_graph(w10_graph(), plan)
    tracker.add_root_tasks(0, 100)
    finish_group(tracker, 0, 100)
    tracker.compact_row_group(1, abandon=True)  # never touched: every row abandoned
    restored = CompletionTracker.from_bytes(tracker.to_bytes())
    assert snapshot(restored) == snapshot(tracker)
    assert restored.is_dropped(0, 5) and not restored.is_dropped(0, 6)
    assert restored.is_dropped(1, 0) and not restored.is_complete(SliceRef("seed", 1))
    assert restored.is_complete(SliceRef("final", 0, 6)) and not restored.is_complete(SliceRef("final", 0, 5))
    assert restored.progress() == tracker.progress()
    assert restored.progress()["q"].dropped == 20 + 100


def test_zero_row_group_frontier_survives_a_round_trip() -> None:
    graph = make_graph(
        [("seed", "full_column"), ("q", "cell_by_cell"), ("judge", "full_column")],
        [("seed", "q"), ("q", "judge")],
    )
    tracker = CompletionTracker.with_graph(graph, [(0, 0), (1, 3)])
    tracker.add_root_tasks(0, 0)
    before = snapshot(tracker)
    assert {t.column for t in before["frontier"]} == {"seed", "judge"}  # q is vacuously done
    assert snapshot(CompletionTracker.from_bytes(tracker.to_bytes())) == before


def test_graphless_tracker_round_trips(tmp_path) -> None:
    tracker = CompletionTracker()
    tracker.mark_cell_complete("a", 0, 3)
    tracker.mark_cell_complete("a", 0, 200)
    tracker.mark_row_range_complete("seed", 0, 250)
    tracker.mark_row_range_complete("seed", 9, 10)
    tracker.drop_row(0, 7)
    tracker.drop_row(2, 1)
    tracker.mark_cell_complete("b", 2, 0)
    tracker.compact_row_group(2)

    def answer(query, *args) -> object:
        try:
            return query(*args)
        except CellFrontierError as exc:  # a row or size outside a group of known size
            return type(exc).__name__

    def answers(t: CompletionTracker) -> list:
        out = []
        for rg in (0, 1, 2, 9):
            for col in ("a", "b", "seed"):
                out.append(t.is_complete(SliceRef(col, rg, None)))
                out.append(t.is_column_complete_for_rg(col, rg))
                out.extend(answer(t.is_complete, SliceRef(col, rg, r)) for r in range(260))
            out.extend(answer(t.is_dropped, rg, r) for r in range(260))
            out.append(answer(t.is_row_group_complete, rg, 250, ["seed"]))
            out.append(answer(t.is_row_group_complete, rg, 10, ["seed", "a"]))
        return out

    expected = answers(tracker)
    path = tmp_path / "plain.ckpt"
    tracker.save(path)
    for restored in (
        CompletionTracker.load(path),
        CompletionTracker.from_bytes(tracker.to_bytes()),
        pickle.loads(pickle.dumps(tracker)),
    ):
        assert restored.graph is None
        assert answers(restored) == expected
        assert restored.nbytes == tracker.nbytes
    with pytest.raises(CheckpointError, match="no graph"):
        CompletionTracker.from_bytes(tracker.to_bytes(), w10_graph())


# -- refusing damaged or foreign checkpoints --------------------------------------------------


@pytest.fixture(scope="module")
def good_bytes() -> bytes:
    return busy_tracker(PLANS["explicit"]()).to_bytes()


def resign(data: bytes, header_edit) -> bytes:
    """Rewrite the JSON header and re-sign the payload (a well-formed but lying checkpoint)."""
    prefix = struct.Struct("<8sIQ")
    _, version, length = prefix.unpack_from(data)
    payload = data[prefix.size : prefix.size + length]
    (head_len,) = struct.unpack_from("<Q", payload)
    header = json.loads(payload[8 : 8 + head_len])
    header_edit(header)
    head = json.dumps(header).encode()
    new_payload = struct.pack("<Q", len(head)) + head + payload[8 + head_len :]
    return prefix.pack(MAGIC, version, len(new_payload)) + new_payload + hashlib.sha256(new_payload).digest()


def test_every_truncation_is_refused(good_bytes) -> None:
    cuts = sorted({*range(0, 64), *range(0, len(good_bytes), 7), len(good_bytes) - 1})
    for cut in cuts:
        with pytest.raises(CheckpointError, match=r"truncated|magic"):
            CompletionTracker.from_bytes(good_bytes[:cut])
    with pytest.raises(CheckpointError, match="trailing"):
        CompletionTracker.from_bytes(good_bytes + b"\x00")


def test_a_corrupted_byte_anywhere_is_refused(good_bytes) -> None:
    for position in range(len(good_bytes)):
        damaged = bytearray(good_bytes)
        damaged[position] ^= 0x5A
        with pytest.raises(CheckpointError) as info:
            CompletionTracker.from_bytes(bytes(damaged))
        assert any(word in str(info.value) for word in ("checksum", "magic", "version", "truncated")), (
            position
        )
    assert CompletionTracker.from_bytes(good_bytes).frontier_size() > 0


def test_bad_magic_and_unknown_version_are_refused(good_bytes) -> None:
    with pytest.raises(CheckpointError, match="bad magic"):
        CompletionTracker.from_bytes(b"NOTMAGIC" + good_bytes[8:])
    future = good_bytes[:8] + struct.pack("<I", FORMAT_VERSION + 1) + good_bytes[12:]
    with pytest.raises(CheckpointError, match=f"version {FORMAT_VERSION + 1} is not supported"):
        CompletionTracker.from_bytes(future)


def test_a_different_graph_is_refused(good_bytes, tmp_path) -> None:
    path = tmp_path / "x.ckpt"
    path.write_bytes(good_bytes)
    other = build_graph(W10)  # no side-effect alias
    with pytest.raises(CheckpointError, match="differs"):
        CompletionTracker.load(path, other)
    changed = ExecutionGraph()
    changed.add_column("seed", "full_column")
    with pytest.raises(CheckpointError, match="differs"):
        CompletionTracker.load(path, changed)
    assert CompletionTracker.load(path, w10_graph()).frontier_size() > 0


def test_missing_file_is_refused(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        CompletionTracker.load(tmp_path / "absent.ckpt")


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h.pop("groups"),
        lambda h: h.update(kind="plain"),
        lambda h: h["groups"][0].update(bits=[0, 10**9]),
        lambda h: h["groups"][0].update(bits=[-5, 8]),
        lambda h: h["groups"][0].update(flags=[0, 1]),
        lambda h: h["groups"][0].update(size=h["groups"][0]["size"] + 1),
        lambda h: h["groups"][0].update(row_group=123456),
        lambda h: h["groups"][0].update(row_group="x"),
        lambda h: h.update(column_order=list(reversed(h["column_order"]))),
        lambda h: h["compacted"].append([h["groups"][0]["row_group"], h["groups"][0]["size"], [0, 0]]),
        lambda h: h.update(compacted_completed=[1, 2]),
        lambda h: h.update(plan={"kind": "explicit", "pairs": [[1, -1]]}),
        lambda h: h.update(
            graph={"columns": [["a", "cell_by_cell"]], "edges": [["a", "a"]], "side_effects": []}
        ),
        lambda h: h["graph"]["columns"].append(["extra", "sideways"]),
    ],
)
def test_a_well_signed_but_malformed_header_is_refused(good_bytes, edit) -> None:
    with pytest.raises(CheckpointError):
        CompletionTracker.from_bytes(resign(good_bytes, edit))


def test_unreadable_header_is_refused(good_bytes) -> None:
    prefix = struct.Struct("<8sIQ")
    payload = struct.pack("<Q", 3) + b"\xff\xfe{"
    data = prefix.pack(MAGIC, FORMAT_VERSION, len(payload)) + payload + hashlib.sha256(payload).digest()
    with pytest.raises(CheckpointError, match="unreadable"):
        CompletionTracker.from_bytes(data)
    payload = struct.pack("<Q", 10**6) + b"{}"
    data = prefix.pack(MAGIC, FORMAT_VERSION, len(payload)) + payload + hashlib.sha256(payload).digest()
    with pytest.raises(CheckpointError, match="header is truncated"):
        CompletionTracker.from_bytes(data)


# -- atomic save ------------------------------------------------------------------------------


def _fail(*args, **kwargs):
    raise OSError("simulated failure in the middle of save()")


@pytest.mark.parametrize("victim", ["replace", "fsync"])
@pytest.mark.parametrize("exc", [OSError, KeyboardInterrupt])
def test_a_failed_save_keeps_the_previous_checkpoint_and_leaves_no_temp_file(
    victim, exc, tmp_path, monkeypatch
) -> None:
    path = tmp_path / "state.ckpt"
    tracker = busy_tracker(PLANS["uniform"]())
    tracker.save(path)
    previous = path.read_bytes()
    tracker.compact_row_group(3, abandon=True)  # the state moved on since the last save
    assert tracker.to_bytes() != previous

    def boom(*args, **kwargs):
        raise exc("simulated failure in the middle of save()")

    monkeypatch.setattr(os, victim, boom)
    with pytest.raises(exc):
        tracker.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.ckpt"]
    assert snapshot(CompletionTracker.load(path)) == snapshot(CompletionTracker.from_bytes(previous))
    tracker.save(path)  # and the next save works
    assert path.read_bytes() == tracker.to_bytes()


def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(os, "replace", _fail)
    with pytest.raises(OSError, match="simulated"):
        busy_tracker(PLANS["uniform"]()).save(tmp_path / "new.ckpt")
    assert list(tmp_path.iterdir()) == []


def test_save_overwrites_and_accepts_str_paths(tmp_path) -> None:
    tracker = busy_tracker(PLANS["explicit"]())
    target = str(tmp_path / "s.ckpt")
    CompletionTracker().save(target)
    tracker.save(target)
    assert Path(target).read_bytes() == tracker.to_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.ckpt"]


# -- files, hostile input and threads ------------------------------------------------------------


def test_load_errors_are_checkpoint_errors_and_the_os_errors_a_caller_expects(tmp_path) -> None:
    from cellfrontier import CheckpointFileError, CheckpointNotFoundError, InvalidArgumentError

    with pytest.raises(CheckpointNotFoundError) as missing:
        CompletionTracker.load(tmp_path / "absent.ckpt")
    assert isinstance(missing.value, FileNotFoundError) and isinstance(missing.value, CheckpointError)
    with pytest.raises(CheckpointFileError) as directory:
        CompletionTracker.load(tmp_path)
    assert isinstance(directory.value, OSError)
    for data in (123, 2**70, None, "CFRONTIR"):
        with pytest.raises(InvalidArgumentError, match="from_bytes"):
            CompletionTracker.from_bytes(data)
    good = busy_tracker(PLANS["explicit"]()).to_bytes()
    with pytest.raises(InvalidArgumentError, match="ExecutionGraph"):
        CompletionTracker.from_bytes(good, graph="x")


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h.update(compacted_completed=[2**70] * len(h["compacted_completed"])),
        lambda h: h.update(plan=2**70),
        lambda h: h.update(groups=[None]),
        lambda h: h.update(groups="x"),
        lambda h: h.update(compacted=[[0, 2**70, [0, 0]]]),
    ],
)
def test_a_well_signed_but_malformed_header_is_a_checkpoint_error(good_bytes, edit) -> None:
    with pytest.raises(CheckpointError):
        CompletionTracker.from_bytes(resign(good_bytes, edit))


def test_a_graph_that_differs_is_refused_saying_what_differs() -> None:
    tracker = busy_tracker(PLANS["explicit"]())
    other = w10_graph()
    other.add_column("extra", "cell_by_cell")
    with pytest.raises(CheckpointError, match=r"from_bytes\(\).*columns only given \['extra'\]"):
        CompletionTracker.from_bytes(tracker.to_bytes(), other)


def test_save_keeps_the_mode_of_the_checkpoint_it_replaces(tmp_path) -> None:
    path = tmp_path / "state.ckpt"
    tracker = busy_tracker(PLANS["explicit"]())
    tracker.save(path)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o640)
    tracker.save(path)
    assert path.stat().st_mode & 0o777 == 0o640


class _Stops:
    """Stops a worker thread at given steps until the checking thread has looked at it there.

    The worker calls :meth:`reached` at each step and waits; the checker polls :meth:`waiting`
    between its own actions and calls :meth:`release` once done, so the states the checker
    sees at the stops depend on the steps alone, never on how the threads are scheduled.  The
    timeout is a safety net for a checker that died, never reached on a healthy run.
    """

    def __init__(self) -> None:
        self._arrived = threading.Event()
        self._released = threading.Event()
        self._abandoned = False
        self.step: object = None

    def reached(self, step: object) -> None:
        self.step = step
        self._released.clear()
        if self._abandoned:  # checked after the clear, so an abandon() cannot be missed
            return
        self._arrived.set()
        if not self._released.wait(timeout=600):
            raise TimeoutError(f"nobody looked at the worker stopped at {step!r}")

    def waiting(self) -> object | None:
        """The step the worker is stopped at, once; ``None`` when it is not stopped."""
        if not self._arrived.is_set():
            return None
        self._arrived.clear()
        return self.step

    def release(self) -> None:
        self._released.set()

    def abandon(self) -> None:
        """Let the worker run through every later stop (the checker has stopped checking)."""
        self._abandoned = True
        self._released.set()


@pytest.mark.process
def test_snapshots_taken_while_other_threads_compact_always_load() -> None:
    """A checkpoint is one instant: never a group both active and compacted, never torn.

    The worker runs each row group through every event and compacts it; a checker snapshots
    and restores the tracker all along.  At two groups (the second, and one half way) the
    worker stops after each event until the checker has restored a snapshot of exactly that
    state, so snapshots land inside the run, with a group active and others compacted, on
    every run; between the stops the checker snapshots as fast as it can.
    """
    graph = ExecutionGraph()
    graph.add_column("seed", "full_column")
    graph.add_column("a", "cell_by_cell")
    graph.add_column("judge", "full_column")
    graph.add_edge("seed", "a")
    graph.add_edge("a", "judge")
    size, groups = 8, 1_500
    plan = RowGroupPlan.uniform(num_records=groups * size, buffer_size=size)
    stopping_groups = (1, len(plan) // 2)
    tracker = CompletionTracker.with_graph(graph, plan)
    actions = (
        ("roots", tracker.add_root_tasks),
        ("seed", lambda rg, n: tracker.mark_row_range_complete("seed", rg, n)),
        ("a", lambda rg, n: tracker.mark_cells_complete("a", rg, np.arange(n))),
        ("judge", lambda rg, n: tracker.mark_row_range_complete("judge", rg, n)),
        ("compact", lambda rg, n: tracker.compact_row_group(rg)),
    )
    events = [event for event, _ in actions]
    stops = _Stops()
    done = threading.Event()
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            for rg, n in plan:
                for event, act in actions:
                    act(rg, n)
                    if rg in stopping_groups:
                        stops.reached((rg, event))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            done.set()

    def check_instant(restored: CompletionTracker) -> dict[str, int]:
        """What holds at any instant: one group at most in flight, each event after its upstream."""
        progress = {column: p.completed for column, p in restored.progress().items()}
        assert progress["seed"] >= progress["a"] >= progress["judge"] >= progress["seed"] - size
        assert len(restored.active_row_groups()) <= 1
        return progress

    thread = threading.Thread(target=worker)
    thread.start()
    seen = []
    try:
        while not done.is_set():
            step = stops.waiting()
            if step is None:
                check_instant(CompletionTracker.from_bytes(tracker.to_bytes()))
                continue
            rg, event = step
            restored = CompletionTracker.from_bytes(tracker.to_bytes())
            done_through = events.index(event)  # events of group rg done so far
            expected = {
                "seed": rg * size + size * (done_through >= 1),
                "a": rg * size + size * (done_through >= 2),
                "judge": rg * size + size * (done_through >= 3),
            }
            assert check_instant(restored) == expected, step
            assert restored.active_row_groups() == ([] if event == "compact" else [rg]), step
            assert all(restored.is_row_group_complete(g, size, list(expected)) for g in range(rg)), step
            seen.append(step)
            stops.release()
    finally:
        stops.abandon()  # never leave the worker stopped behind a failed check
        thread.join()
    assert not failures, failures
    assert seen == [(rg, event) for rg in stopping_groups for event in events]
    final = CompletionTracker.from_bytes(tracker.to_bytes())
    assert final.progress()["judge"].completed == groups * size
