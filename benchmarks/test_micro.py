"""Single operations on cellfrontier and DataDesigner, each against two floors measured in this run."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import skip_unavailable
from harness import DD_BACKEND, SCALING_ROWS, Floors, MicroCase, floor_cases, micro_cases, scaling_cases

OPS = ("mark_cell", "mark_range", "drop_row", "query_cell", "handout_1", "handout_1000")


def _case(backend: str, op: str) -> MicroCase:
    return next(c for c in micro_cases(backend) if c.op == op)


@pytest.mark.parametrize("op", ["floor_call", "floor_copy"])
def test_floor(benchmark: Any, op: str) -> None:
    """The floors themselves, timed as benchmarks too."""
    case = next(c for c in floor_cases() if c.op == op)
    benchmark.group = "micro floors"
    benchmark.pedantic(case.run, args=(None,), rounds=20, iterations=1)
    if benchmark.stats is not None:
        benchmark.extra_info.update(
            {"ns_per_op": benchmark.stats.stats.min / case.ops * 1e9, "description": case.description}
        )


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("backend", ["cellfrontier", DD_BACKEND])
def test_op(benchmark: Any, floors: Floors, dd_skip_reason: str | None, backend: str, op: str) -> None:
    """One operation, repeated over distinct cells on fresh state; ratios to both floors in extra_info."""
    skip_unavailable(backend, dd_skip_reason)
    case = _case(backend, op)
    benchmark.group = f"micro {op}"
    benchmark.pedantic(case.run, setup=lambda: ((case.setup(),), {}), rounds=5, iterations=1)
    if benchmark.stats is None:
        return
    per_op = benchmark.stats.stats.min / case.ops
    benchmark.extra_info.update(
        {
            "ns_per_op": per_op * 1e9,
            "floor_call_ns": floors.call * 1e9,
            "floor_copy_ns": floors.copy * 1e9,
            **floors.ratios(per_op),
            "description": case.description,
        }
    )


@pytest.mark.parametrize("rows", SCALING_ROWS)
@pytest.mark.parametrize("op", ["mark_cell", "drop_row", "handout_1"])
def test_event_cost_against_group_size(benchmark: Any, op: str, rows: int) -> None:
    """One event in a row group of *rows* rows: compare the groups of one op across sizes."""
    case = next(c for c in scaling_cases(rows) if c.op == op)
    benchmark.group = f"scaling {op}"
    benchmark.pedantic(case.run, setup=lambda: ((case.setup(),), {}), rounds=5, iterations=1)
    if benchmark.stats is not None:
        benchmark.extra_info.update(
            {
                "ns_per_op": benchmark.stats.stats.min / case.ops * 1e9,
                "rows": rows,
                "description": case.description,
            }
        )
