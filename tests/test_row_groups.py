"""Row-group plans: uniform (lazy) and explicit (arbitrary ids), and their use by the tracker."""

from __future__ import annotations

import numpy as np
import pytest

from cellfrontier import (
    CellFrontierError,
    CompletionTracker,
    IndexTypeError,
    InvalidArgumentError,
    RowGroupPlan,
    UnknownRowGroupError,
)
from cellfrontier.errors import CountTypeError
from cellfrontier.row_groups import RowGroupPlanLike, as_row_group_plan


def test_plan_has_no_public_constructor() -> None:
    with pytest.raises(TypeError):
        RowGroupPlan()
    with pytest.raises(InvalidArgumentError, match=r"uniform\(\)"):
        RowGroupPlan()


def test_uniform_plan_makes_the_last_group_shorter() -> None:
    plan = RowGroupPlan.uniform(2_500, 1_000)
    assert list(plan) == [(0, 1_000), (1, 1_000), (2, 500)]
    assert len(plan) == 3
    assert plan.is_uniform and plan.num_records == 2_500 and plan.buffer_size == 1_000
    assert plan.has_row_group(2) and not plan.has_row_group(3) and not plan.has_row_group(-1)
    assert plan.row_group_size(1) == 1_000 and plan.row_group_size(2) == 500
    with pytest.raises(KeyError):
        plan.row_group_size(3)
    with pytest.raises(UnknownRowGroupError, match=r"row_group_size\(\) got unknown row group -1"):
        plan.row_group_size(-1)


@pytest.mark.parametrize(
    ("num_records", "buffer_size", "sizes"),
    [(0, 10, []), (10, 10, [10]), (11, 10, [10, 1]), (3, 1, [1, 1, 1])],
)
def test_uniform_plan_edges(num_records, buffer_size, sizes) -> None:
    assert [size for _, size in RowGroupPlan.uniform(num_records, buffer_size)] == sizes


def test_uniform_plan_of_a_million_groups_costs_nothing() -> None:
    plan = RowGroupPlan.uniform(10**12, 1_000)
    assert len(plan) == 10**9
    assert plan.row_group_size(10**9 - 1) == 1_000
    assert plan._sizes is None


@pytest.mark.parametrize(
    ("num_records", "buffer_size", "error"),
    [(-1, 10, ValueError), (10, 0, ValueError), (1.0, 10, TypeError), (10, True, TypeError)],
)
def test_uniform_plan_refuses_bad_arguments(num_records, buffer_size, error) -> None:
    with pytest.raises(error) as info:
        RowGroupPlan.uniform(num_records, buffer_size)
    assert isinstance(info.value, CellFrontierError)
    assert str(info.value).startswith("uniform() needs ")


@pytest.mark.parametrize(
    ("num_records", "buffer_size", "error", "text"),
    [
        (1.0, 10, CountTypeError, "integer num_records, got float 1.0"),
        (10, True, CountTypeError, "integer buffer_size, got bool True"),
        (np.bool_(True), 10, CountTypeError, "integer num_records"),
        ("10", 10, CountTypeError, "integer num_records, got str '10'"),
        (-1, 10, InvalidArgumentError, "num_records >= 0, got -1"),
        (10, np.int64(0), InvalidArgumentError, "buffer_size >= 1, got np.int64(0)"),
    ],
)
def test_uniform_plan_errors_are_hierarchy_errors(num_records, buffer_size, error, text) -> None:
    with pytest.raises(error) as info:
        RowGroupPlan.uniform(num_records, buffer_size)
    assert text in str(info.value)
    assert isinstance(info.value, (TypeError if error is CountTypeError else ValueError))


def test_uniform_plan_accepts_numpy_integers() -> None:
    plan = RowGroupPlan.uniform(np.int64(25), np.uint8(10))
    assert plan == RowGroupPlan.uniform(25, 10)
    assert type(plan.num_records) is int and type(plan.buffer_size) is int


def test_explicit_plan_keeps_holes_and_order() -> None:
    plan = RowGroupPlan.explicit([(5, 10), (2, 0), (9, 3)])
    assert list(plan) == [(5, 10), (2, 0), (9, 3)]
    assert not plan.is_uniform
    assert plan.num_records == 13 and plan.buffer_size == 10 and len(plan) == 3
    assert plan.has_row_group(2) and not plan.has_row_group(3)
    assert plan.row_group_size(2) == 0
    with pytest.raises(KeyError):
        plan.row_group_size(3)


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        ([(0, 1), (0, 2)], ValueError),
        ([(0, -1)], ValueError),
        ([(0, 2**31)], ValueError),
        ([(0.0, 1)], TypeError),
        ([(True, 1)], TypeError),
        ([(0, 1.5)], TypeError),
        ([(0,)], TypeError),
        ([5], TypeError),
    ],
)
def test_explicit_plan_refuses_bad_pairs(pairs, error) -> None:
    with pytest.raises(error) as info:
        RowGroupPlan.explicit(pairs)
    assert isinstance(info.value, CellFrontierError)
    assert str(info.value).startswith("explicit() ")


@pytest.mark.parametrize(
    ("pairs", "error", "text"),
    [
        ([(0, 1), (0, 2)], InvalidArgumentError, "duplicate row group id 0"),
        ([(0, -1)], InvalidArgumentError, "size of row group 0 >= 0, got -1"),
        ([(3, 2**31)], InvalidArgumentError, "size of row group 3 < 2**31"),
        ([(-(2**62) - 1, 1)], InvalidArgumentError, "row group id >= "),
        ([(0.0, 1)], IndexTypeError, "integer row group id, got float 0.0"),
        ([(True, 1)], IndexTypeError, "integer row group id, got bool True"),
        ([(0, 1.5)], CountTypeError, "integer size of row group 0, got float 1.5"),
        ([(0,)], InvalidArgumentError, "(id, size) pairs, got (0,)"),
        ([5], InvalidArgumentError, "(id, size) pairs, got 5"),
    ],
)
def test_explicit_plan_errors_are_hierarchy_errors(pairs, error, text) -> None:
    with pytest.raises(error) as info:
        RowGroupPlan.explicit(pairs)
    assert text in str(info.value)


def test_row_group_size_and_has_row_group_with_odd_ids() -> None:
    for plan in (RowGroupPlan.uniform(5, 2), RowGroupPlan.explicit([(0, 2), (1, 2), (2, 1)])):
        assert plan.has_row_group(np.int64(1)) and plan.row_group_size(np.int32(2)) == 1
        for odd in (True, 1.0, "1", None, [1]):
            assert not plan.has_row_group(odd)
            with pytest.raises(IndexTypeError, match=r"row_group_size\(\) needs an integer row group"):
                plan.row_group_size(odd)
        with pytest.raises(UnknownRowGroupError):
            plan.row_group_size(7)


def test_equality_hash_repr_and_dict_round_trip() -> None:
    uniform = RowGroupPlan.uniform(25, 10)
    explicit = RowGroupPlan.explicit([(0, 10), (1, 10), (2, 5)])
    assert uniform == RowGroupPlan.uniform(25, 10)
    assert uniform == explicit
    assert uniform != RowGroupPlan.uniform(26, 10)
    assert hash(uniform) == hash(RowGroupPlan.uniform(25, 10))
    assert uniform != "plan"
    assert repr(uniform) == "RowGroupPlan.uniform(num_records=25, buffer_size=10)"
    assert repr(RowGroupPlan.explicit([(3, 1)])) == "RowGroupPlan.explicit([(3, 1)])"
    for plan in (uniform, explicit, RowGroupPlan.explicit([])):
        assert RowGroupPlan.from_dict(plan.to_dict()) == plan


def test_as_row_group_plan() -> None:
    plan = RowGroupPlan.uniform(5, 2)
    assert as_row_group_plan(plan) is plan
    assert isinstance(as_row_group_plan([(1, 2)]), RowGroupPlan)
    assert isinstance(plan, RowGroupPlanLike)


class ForeignPlan:
    """Another library's plan: only the three methods the tracker needs."""

    def has_row_group(self, row_group: int) -> bool:
        return row_group in (10, 20)

    def row_group_size(self, row_group: int) -> int:
        return {10: 2, 20: 3}[row_group]

    def __iter__(self):
        return iter([(10, 2), (20, 3)])


def test_tracker_accepts_plan_objects_and_pairs(chain) -> None:
    foreign = ForeignPlan()
    tracker = CompletionTracker.with_graph(chain, foreign)
    assert tracker.row_group_plan is foreign
    assert tracker.seed_frontier().num_added == 5
    with pytest.raises(UnknownRowGroupError):
        tracker.add_root_tasks(0, 2)
    uniform = CompletionTracker.with_graph(chain, RowGroupPlan.uniform(5, 2))
    assert [t.row_group for t in uniform.seed_frontier().added] == [0, 0, 1, 1, 2]
    assert uniform.active_row_groups() == [0, 1, 2]
    pairs = CompletionTracker.with_graph(chain, iter([(4, 1)]))
    assert pairs.row_group_plan == RowGroupPlan.explicit([(4, 1)])


# -- one row limit ------------------------------------------------------------------------------


def test_the_row_limit_is_the_compiled_cores_32_bit_counter_limit() -> None:
    from cellfrontier._core import MAX_ROWS

    assert MAX_ROWS == 2**31


@pytest.mark.parametrize(
    "make", [lambda size: RowGroupPlan.uniform(10, size), lambda size: RowGroupPlan.explicit([(0, size)])]
)
def test_every_plan_constructor_accepts_the_largest_size_and_refuses_the_limit(make) -> None:
    """Described, never allocated: a plan costs nothing until a group is touched."""
    from cellfrontier._core import MAX_ROWS

    largest = make(MAX_ROWS - 1)
    assert largest.buffer_size == MAX_ROWS - 1
    with pytest.raises(InvalidArgumentError, match=r"< 2\*\*31, got 2147483648"):
        make(MAX_ROWS)
    with pytest.raises(InvalidArgumentError):
        make(2**70)


def test_a_uniform_plan_of_the_largest_groups_describes_them_without_allocating() -> None:
    plan = RowGroupPlan.uniform(3 * (2**31 - 1), 2**31 - 1)
    assert len(plan) == 3 and plan.row_group_size(2) == 2**31 - 1


class HugePlan:
    """A foreign plan whose one group has *size* rows (a size the library never built)."""

    def __init__(self, size: object) -> None:
        self.size = size

    def has_row_group(self, row_group: int) -> bool:
        return row_group == 0

    def row_group_size(self, row_group: int) -> object:
        return self.size

    def __iter__(self):
        return iter([(0, self.size)])


def test_a_foreign_plans_sizes_go_through_the_same_limit_when_the_core_reads_them(chain) -> None:
    # 2**31 - 1 rows: queries read the size and answer, without allocating the group.
    fits = CompletionTracker.with_graph(chain, HugePlan(2**31 - 1))
    assert not fits.is_dropped(0, 2**31 - 2)
    assert not fits.is_column_complete_for_rg("topic", 0)
    assert fits.active_row_groups() == []
    # 2**31 rows (or a size that is not an integer): refused wherever the core reads it.
    for size, error in [(2**31, InvalidArgumentError), (-1, InvalidArgumentError), (2.0, IndexTypeError)]:
        tracker = CompletionTracker.with_graph(chain, HugePlan(size))
        for call in (
            lambda t: t.is_dropped(0, 0),
            lambda t: t.mark_cell_complete("topic", 0, 0),
            lambda t: t.add_root_tasks(0, 2**31),
            lambda t: t.compact_row_group(0, abandon=True),
        ):
            with pytest.raises(error, match="size of row group 0"):
                call(tracker)
        assert tracker.active_row_groups() == [] and tracker.progress()["topic"].completed == 0


def test_other_sizes_share_the_limit() -> None:
    from cellfrontier import ExecutionGraph

    graph = ExecutionGraph()
    graph.add_column("a", "cell_by_cell")
    refs = graph.compute_cell_dependencies("a", 0, 2**31 - 2, 2**31 - 1)
    assert refs == []
    with pytest.raises(InvalidArgumentError, match=r"row_group_size < 2\*\*31"):
        graph.compute_cell_dependencies("a", 0, 0, 2**31)
    graphless = CompletionTracker()
    with pytest.raises(InvalidArgumentError, match=r"row_group_size < 2\*\*31"):
        graphless.mark_row_range_complete("a", 0, 2**31)
