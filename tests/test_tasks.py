"""Value types: Task, SliceRef, TaskResult, TaskTrace and FrontierDelta."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from cellfrontier import FrontierDelta, SliceRef, Task, TaskResult, TaskTrace


def test_task_fields_and_repr() -> None:
    task = Task("a", 3, 7, "cell")
    assert (task.column, task.row_group, task.row_index, task.task_type) == ("a", 3, 7, "cell")
    assert repr(task) == "Task(column='a', row_group=3, row_index=7, task_type='cell')"
    assert (
        repr(Task("b", 0, None, "batch"))
        == "Task(column='b', row_group=0, row_index=None, task_type='batch')"
    )


def test_task_is_frozen() -> None:
    task = Task("a", 3, 7, "cell")
    for name in ("column", "row_group", "row_index", "task_type"):
        with pytest.raises(AttributeError):
            setattr(task, name, None)
    with pytest.raises(AttributeError):
        task.extra = 1  # no __dict__
    assert task == Task("a", 3, 7, "cell")


def test_task_equality_and_hashing() -> None:
    a = Task("a", 3, 7, "cell")
    assert a == Task("a", 3, 7, "cell")
    assert hash(a) == hash(Task("a", 3, 7, "cell"))
    assert a != Task("a", 3, 8, "cell")
    assert a != Task("a", 4, 7, "cell")
    assert a != Task("b", 3, 7, "cell")
    assert Task("a", 3, None, "batch") != Task("a", 3, None, "from_scratch")
    assert a != ("a", 3, 7, "cell")
    assert len({a, Task("a", 3, 7, "cell"), Task("a", 3, None, "batch")}) == 2
    assert {a: 1}[Task("a", 3, 7, "cell")] == 1


def test_task_is_not_ordered() -> None:
    with pytest.raises(TypeError):
        _ = Task("a", 0, 0, "cell") < Task("a", 0, 1, "cell")


def test_task_pickle_and_copy() -> None:
    for task in (Task("a", 3, 7, "cell"), Task("b", -2, None, "from_scratch")):
        assert pickle.loads(pickle.dumps(task)) == task
        assert copy.copy(task) == task
        assert copy.deepcopy(task) == task


def test_task_constructor_checks_string_fields() -> None:
    with pytest.raises(TypeError):
        Task(1, 0, 0, "cell")
    with pytest.raises(TypeError):
        Task("a", 0, 0, None)


def test_slice_ref_is_frozen_ordered_and_hashable() -> None:
    ref = SliceRef("a", 1, 2)
    assert SliceRef("a", 1).row_index is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.row_index = 3
    assert sorted([SliceRef("b", 0, 0), SliceRef("a", 2, 0), SliceRef("a", 1, 5), SliceRef("a", 1, 2)]) == [
        SliceRef("a", 1, 2),
        SliceRef("a", 1, 5),
        SliceRef("a", 2, 0),
        SliceRef("b", 0, 0),
    ]
    assert len({ref, SliceRef("a", 1, 2)}) == 1
    assert pickle.loads(pickle.dumps(ref)) == ref


def test_task_result() -> None:
    task = Task("a", 0, 0, "cell")
    assert TaskResult(task, value=3).ok
    failed = TaskResult(task, error=RuntimeError("boom"), retryable=True)
    assert not failed.ok and failed.retryable
    with pytest.raises(dataclasses.FrozenInstanceError):
        failed.value = 1


def test_task_trace_from_task() -> None:
    trace = TaskTrace.from_task(Task("a", 4, None, "batch"))
    assert (trace.column, trace.row_group, trace.row_index, trace.task_type) == ("a", 4, None, "batch")
    assert trace.status == "" and trace.error is None and trace.completed_at == 0.0
    trace.status = "ok"  # a trace is mutable: it is filled in as the task runs
    assert trace.status == "ok"

    class SubTrace(TaskTrace):
        __slots__ = ()

    assert type(SubTrace.from_task(Task("a", 0, 0, "cell"))) is SubTrace


def test_frontier_delta_from_tasks() -> None:
    added = [Task("a", 0, 0, "cell"), Task("a", 0, 1, "cell")]
    removed = [Task("b", 0, None, "batch")]
    delta = FrontierDelta(added=added, removed=removed)
    assert delta.added == tuple(added)
    assert delta.removed == tuple(removed)
    assert (delta.num_added, delta.num_removed) == (2, 1)
    assert len(delta.added) == 2
    assert not delta.empty and delta
    assert delta == FrontierDelta(added=added, removed=removed)
    assert hash(delta) == hash(FrontierDelta(added=added, removed=removed))
    assert delta != FrontierDelta(added=added)
    assert pickle.loads(pickle.dumps(delta)) == delta
    assert "Task(column='a'" in repr(delta)


def test_empty_frontier_delta() -> None:
    delta = FrontierDelta()
    assert delta.empty and not delta
    assert delta.added == () and delta.removed == ()
    assert delta == FrontierDelta(added=(), removed=())


def test_frontier_delta_from_the_core_is_lazy_but_stable(chain_tracker) -> None:
    delta = chain_tracker.add_root_tasks(0, 4)
    assert delta.num_added == 4 and delta.num_removed == 0
    first = delta.added
    assert first is delta.added  # built once
    assert [t.row_index for t in first] == [0, 1, 2, 3]
    assert all(type(t) is Task for t in first)
    assert pickle.loads(pickle.dumps(delta)) == delta
