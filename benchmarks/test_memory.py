"""MEM: W64 columns, every row group admitted, seed then c1..c32 completed; bytes the tracker holds."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import skip_unavailable
from harness import DD_BACKEND, FULL, MEM_RUNNERS, ONE_MILLION, mem_cellfrontier, mem_expected_tasks


def _cases() -> list[Any]:
    full_only = [] if FULL else [pytest.mark.skip(reason="set CELLFRONTIER_BENCH_FULL=1")]
    return [
        pytest.param("cellfrontier", 100_000, id="cellfrontier-100000"),
        pytest.param("cellfrontier", ONE_MILLION, id="cellfrontier-1000000", marks=full_only),
        pytest.param(DD_BACKEND, 10_000, id="data-designer-10000"),
        pytest.param(DD_BACKEND, 100_000, id="data-designer-100000", marks=full_only),
    ]


@pytest.mark.parametrize(("backend", "rows"), _cases())
def test_mem(benchmark: Any, dd_skip_reason: str | None, backend: str, rows: int) -> None:
    """Memory held in the MEM state, recorded in ``extra_info`` (the timing is of the build)."""
    skip_unavailable(backend, dd_skip_reason)
    benchmark.group = "MEM"
    result = benchmark.pedantic(MEM_RUNNERS[backend], args=(rows,), rounds=1, iterations=1)
    assert result.tasks == mem_expected_tasks(rows)
    benchmark.extra_info.update(result.as_dict())


def test_mem_tracing_shortcut(benchmark: Any) -> None:
    """Tracing only admission gives the same Python bytes as tracing the whole build (10k rows)."""
    benchmark.group = "MEM"
    short = mem_cellfrontier(10_000)
    whole = benchmark.pedantic(mem_cellfrontier, args=(10_000,), kwargs={"trace_all": True}, rounds=1)
    assert short.numpy_bytes == whole.numpy_bytes
    assert abs(short.python_bytes - whole.python_bytes) <= 4096
