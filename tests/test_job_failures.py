"""Failed generator calls: retried, then their rows dropped; too many stop the job; bad results refused."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from job_support import needs_pyarrow

from cellfrontier import (
    ErrorRateExceededError,
    ExecutionGraph,
    GeneratorOutputError,
    Job,
)
from cellfrontier.job import OutputLayout, latest_checkpoint
from cellfrontier.job.shard.failures import RetryPolicy
from cellfrontier.testing.j12 import build_j12_graph, j12_expected_row, j12_generators


class Flaky:
    """Fails the first *failures* calls for rows where ``i % every == 3`` (forever if None)."""

    def __init__(self, fn: Any, every: int, failures: int | None, asynchronous: bool = False) -> None:
        self.fn, self.every, self.failures, self.asynchronous = fn, every, failures, asynchronous
        self.calls: Counter[int] = Counter()

    def _call(self, row: dict[str, Any]) -> Any:
        i = row["_row"]
        self.calls[i] += 1
        if i % self.every == 3 and (self.failures is None or self.calls[i] <= self.failures):
            raise ValueError(f"flaky at row {i}")
        return self.fn(row)

    def __call__(self, row: dict[str, Any]) -> Any:
        if not self.asynchronous:
            return self._call(row)

        async def run() -> Any:
            await asyncio.sleep(0)
            return self._call(row)

        return run()


def _job(generators: dict[str, Any], rows: int = 2500, **options: Any) -> Job:
    options.setdefault("retry_backoff", 0)
    options.setdefault("progress_bar", False)
    return Job(build_j12_graph(), generators, rows, **options)


def _asynchronous(flaky: Flaky) -> Any:
    async def call(row: dict[str, Any]) -> Any:
        return await flaky(row)

    return call


@pytest.mark.parametrize("asynchronous", [False, True])
def test_retries_recover_failed_calls(asynchronous: bool) -> None:
    generators = j12_generators()
    flaky = Flaky(generators["bucket"], every=50, failures=2, asynchronous=asynchronous)
    generators["bucket"] = _asynchronous(flaky) if asynchronous else flaky
    result = _job(generators, retries=2).run()
    failing = [i for i in range(2500) if i % 50 == 3]
    assert (result.records, result.dropped) == (2500, 0)
    assert result.errors == 2 * len(failing)
    assert all(flaky.calls[i] == 3 for i in failing)
    assert sum(flaky.calls.values()) == 2500 + 2 * len(failing)
    data = result.to_pydict()
    assert data["bucket"][3] == j12_expected_row(3)["bucket"]


@needs_pyarrow
@pytest.mark.parametrize("asynchronous", [False, True])
def test_rows_are_dropped_when_retries_are_spent(tmp_path, asynchronous: bool) -> None:
    generators = j12_generators()
    flaky = Flaky(generators["code"], every=7, failures=None, asynchronous=asynchronous)
    generators["code"] = _asynchronous(flaky) if asynchronous else flaky
    calls_downstream: Counter[int] = Counter()
    sig = generators["sig"]

    def counting_sig(row: dict[str, Any]) -> Any:
        calls_downstream[row["_row"]] += 1
        return sig(row)

    generators["sig"] = counting_sig
    result = _job(generators, retries=1, keep_errors=3, output_dir=tmp_path / "o").run()
    failing = {i for i in range(2500) if i % 7 == 3}
    assert (result.records, result.dropped) == (2500 - len(failing), len(failing))
    assert result.errors == 2 * len(failing)
    assert not failing & set(calls_downstream)  # a dropped row's downstream cells never run
    rows = result.table(row_index=True).column("_row").to_pylist()
    assert rows == [i for i in range(2500) if i not in failing]
    assert len(result.error_samples) == 3
    sample = result.error_samples[0]
    assert sample.column == "code" and sample.row == 3 and sample.error_type == "ValueError"
    assert "flaky at row 3" in sample.traceback and "Traceback" in sample.traceback
    final = result.to_pydict()["final"]
    assert final[0] == j12_expected_row(0)["final"]


def test_a_full_column_failure_drops_the_groups_live_rows() -> None:
    generators = j12_generators()
    summary = generators["summary"]
    calls: Counter[int] = Counter()

    def failing_summary(batch: dict[str, list[Any]]) -> list[str]:
        rg = batch["_row"][0] // 1000
        calls[rg] += 1
        if rg == 1:
            raise RuntimeError("summary service down")
        return summary(batch)

    generators["summary"] = failing_summary
    result = _job(generators, retries=2).run()
    assert calls == Counter({0: 1, 1: 3, 2: 1})
    assert (result.records, result.dropped, result.errors) == (1500, 1000, 3)
    rows = result.to_pydict(row_index=True)["_row"]
    assert rows == list(range(1000)) + list(range(2000, 2500))


@needs_pyarrow
def test_too_many_failures_stop_the_job_after_checkpointing(tmp_path) -> None:
    generators = j12_generators()
    calls: Counter[str] = Counter()

    def always_fails(row: dict[str, Any]) -> int:
        calls["h"] += 1
        raise ConnectionError("endpoint refused")

    generators["h"] = always_fails
    job = _job(generators, 3000, max_error_rate=0.5, min_error_sample=100, output_dir=tmp_path / "o")
    with pytest.raises(ErrorRateExceededError, match=r"generator calls failed.*max_error_rate=0\.5") as info:
        job.run()
    assert "ConnectionError: endpoint refused" in str(info.value)
    assert 100 <= calls["h"] <= 1000  # stopped within the first batch's aftermath, long before 3,000
    checkpoint = latest_checkpoint(OutputLayout(tmp_path / "o"), range(0, 3))
    assert checkpoint is not None


def test_error_rate_under_the_threshold_lets_the_job_finish() -> None:
    generators = j12_generators()
    generators["h"] = Flaky(generators["h"], every=10, failures=None)
    result = _job(generators, max_error_rate=0.2, min_error_sample=10).run()
    assert result.dropped == 250 and result.records == 2250


@needs_pyarrow
def test_wrong_length_from_a_full_column_is_a_clear_error(tmp_path) -> None:
    generators = j12_generators()
    summary = generators["summary"]

    def short_summary(batch: dict[str, list[Any]]) -> list[str]:
        out = summary(batch)
        return out[:-1] if batch["_row"][0] >= 1000 else out

    generators["summary"] = short_summary
    with pytest.raises(
        GeneratorOutputError, match=r"'summary' returned 999 values.*row group 1.*1000 live rows"
    ):
        _job(generators, output_dir=tmp_path / "o").run()
    assert (tmp_path / "o" / "data" / "part-00000000.parquet").exists()  # the group before it was kept


def test_missing_alias_keys_are_a_clear_error() -> None:
    graph = ExecutionGraph()
    graph.add_column("a", "cell_by_cell")
    graph.set_side_effect("a__trace", "a")
    with pytest.raises(GeneratorOutputError, match=r"exactly the keys \['a', 'a__trace'\].*row 0.*\['a'\]"):
        Job(graph, {"a": lambda row: {"a": 1}}, 10).run()
    with pytest.raises(GeneratorOutputError, match="exactly the keys"):
        Job(graph, {"a": lambda row: {"a": 1, "a__trace": 2, "extra": 3}}, 10).run()
    with pytest.raises(GeneratorOutputError, match="exactly the keys"):
        Job(graph, {"a": lambda row: 5}, 10).run()


def test_full_column_alias_mapping_is_checked() -> None:
    graph = ExecutionGraph()
    graph.add_column("a", "full_column")
    graph.set_side_effect("a__n", "a")
    with pytest.raises(GeneratorOutputError, match=r"exactly the keys \['a', 'a__n'\]"):
        Job(graph, {"a": lambda batch: {"a": batch["_row"]}}, 10).run()


def test_a_plain_function_returning_a_coroutine_is_refused() -> None:
    graph = ExecutionGraph()
    graph.add_column("a", "cell_by_cell")

    async def value() -> int:
        return 1

    with pytest.raises(GeneratorOutputError, match="async def"):
        Job(graph, {"a": lambda row: value()}, 10).run()


def test_retry_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(retries=5, backoff=0.5, max_backoff=3.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert RetryPolicy(3, 0.0, 10.0).delay(3) == 0.0


def test_retries_with_backoff_still_finish() -> None:
    generators = j12_generators()
    flaky = Flaky(generators["label"], every=500, failures=1, asynchronous=True)
    generators["label"] = _asynchronous(flaky)
    result = _job(generators, 1200, retries=1, retry_backoff=0.01).run()
    assert (result.records, result.errors) == (1200, 3)


def test_queued_cells_of_a_dropped_row_are_not_called() -> None:
    generators = j12_generators()
    code, label = generators["code"], generators["label"]
    label_rows: list[int] = []

    async def failing_code(row: dict[str, Any]) -> str:
        await asyncio.sleep(0)
        if row["_row"] % 100 == 50:
            raise ValueError("no code")
        return code(row)

    async def slow_label(row: dict[str, Any]) -> str:  # one at a time: its queue lags behind code's
        label_rows.append(row["_row"])
        await asyncio.sleep(0)
        return label(row)

    generators["code"], generators["label"] = failing_code, slow_label
    result = _job(generators, 1000, concurrency={"label": 1}).run()
    failing = set(range(50, 1000, 100))
    assert (result.records, result.dropped) == (990, 10)
    assert not failing & set(label_rows)
    assert len(label_rows) == 990
