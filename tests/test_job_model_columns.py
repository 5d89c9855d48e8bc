"""Model columns in the job, against the fake endpoint: exact output, usage, failures, caps, resume.

Every figure is checked against what the endpoint itself saw (its answers and latencies are
pure functions of the request, its counts are per (model, prompt)).  Failures are chosen by
the endpoint's deterministic switches (which requests fail, hang or are refused) and stops by
call number, never by the clock.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httptools")

from job_support import held_cells, needs_pyarrow

from cellfrontier import GeneratorTimeoutError, Job, JobProgress
from cellfrontier.llm import ChatModel, TemplateFieldError
from cellfrontier.llm.transport import _POOLS
from cellfrontier.testing import fake_answers
from cellfrontier.testing.fake_endpoint import EndpointStats, FakeEndpoint
from cellfrontier.testing.j12 import CELL_COLUMNS, build_j12_graph
from cellfrontier.testing.j12_llm import (
    check_j12_llm_output,
    j12_llm_expected,
    j12_llm_generators,
    j12_llm_model_id,
    j12_llm_requests,
)

pytestmark = pytest.mark.process  # the fake endpoint is a subprocess

WORKER = Path(__file__).with_name("llm_job_worker.py")
SCALE = 0.02  # 0.5-1.5 ms per answer


def j12_llm_job(base_url: str, rows: int, **options: Any) -> Job:
    settings: dict[str, Any] = {
        "buffer_size": 500,
        "concurrency": dict.fromkeys(CELL_COLUMNS, 16),
        "max_concurrency": 48,
        "progress_bar": False,
    }
    settings.update(options)
    model_options = settings.pop("model_options", {})
    return Job(build_j12_graph(), j12_llm_generators(base_url, **model_options), rows, **settings)


def assert_usage_is_the_servers(usage_total: Mapping[str, int], stats: EndpointStats) -> None:
    assert usage_total["calls"] == stats.answered
    assert (usage_total["prompt_tokens"], usage_total["completion_tokens"]) == (
        stats.prompt_tokens,
        stats.completion_tokens,
    )
    assert usage_total["rate_limit_waits"] == stats.overloaded


def band_of(column: str, prompt: str, endpoint: FakeEndpoint) -> str:
    config = endpoint.config
    fraction = fake_answers.switch_fraction(j12_llm_model_id(column), prompt)
    return fake_answers.switch_band(fraction, config.fail_share, config.hang_share, config.invalid_json_share)


# ---------------------------------------------------------------------- exact output, usage, progress


@pytest.mark.parametrize("rows", [1, 999, 2_500])
def test_j12_llm_in_memory_is_exact_and_its_usage_is_the_servers(rows: int) -> None:
    seen: list[JobProgress] = []
    with FakeEndpoint(latency_scale=SCALE) as endpoint:
        result = j12_llm_job(endpoint.base_url, rows, progress=seen.append, progress_interval=0).run()
        stats = endpoint.stats()
    check_j12_llm_output(result.to_pydict(row_index=True), rows)
    assert stats.answered == stats.calls == len(CELL_COLUMNS) * rows
    assert set(stats.calls_by_request.values()) == {1}
    assert_usage_is_the_servers(result.usage.total, stats)
    assert set(result.usage.columns) == set(CELL_COLUMNS)
    assert set(result.usage.models) == {j12_llm_model_id(c) for c in CELL_COLUMNS}
    assert all(result.usage.columns[c]["calls"] == rows for c in CELL_COLUMNS)
    assert result.usage.models[j12_llm_model_id("h")] == result.usage.columns["h"]
    assert result.calls == len(CELL_COLUMNS) * rows + 5 * -(-rows // 500)
    final = seen[-1]
    assert final.calls_per_second is not None and final.calls_per_second > 0
    assert final.tokens_per_second is not None and final.tokens_per_second > final.calls_per_second
    assert "calls/s" in final.describe() and "tokens/s" in final.describe()


@needs_pyarrow
def test_j12_llm_on_disk_is_exact_and_its_checkpoint_header_holds_the_usage(tmp_path: Path) -> None:
    from cellfrontier.job import OutputLayout
    from cellfrontier.job.store.shard_checkpoint import read_checkpoint_header
    from cellfrontier.job.store.status_reader import usage_from_header

    rows = 1_500
    with FakeEndpoint(latency_scale=SCALE) as endpoint:
        result = j12_llm_job(endpoint.base_url, rows, output_dir=tmp_path / "out").run()
        stats = endpoint.stats()
    check_j12_llm_output(result.to_pydict(row_index=True), rows)
    assert_usage_is_the_servers(result.usage.total, stats)
    [checkpoint] = list(OutputLayout(tmp_path / "out").root.rglob("epoch-*.ckpt"))
    header = read_checkpoint_header(checkpoint)
    assert header is not None
    assert usage_from_header(header) == {name: dict(counts) for name, counts in result.usage.columns.items()}
    # ... which is what `cellfrontier status` reads and sums.
    from cellfrontier.job import read_job_status

    assert read_job_status(tmp_path / "out").usage == usage_from_header(header)


def test_a_plain_job_reports_no_usage_and_no_call_rates() -> None:
    from cellfrontier.testing.j12 import j12_generators

    seen: list[JobProgress] = []
    result = Job(build_j12_graph(), j12_generators(), 100, progress=seen.append, progress_interval=0).run()
    assert not result.usage and result.usage.total == {}
    assert seen[-1].calls_per_second is None and "calls/s" not in seen[-1].describe()


def test_the_job_closes_the_model_connections_of_its_loop_when_a_shard_ends() -> None:
    with FakeEndpoint(latency_scale=SCALE) as endpoint:
        job = j12_llm_job(endpoint.base_url, 300)

        async def main() -> list[bool]:
            await job.run_async()
            pools = _POOLS.get(asyncio.get_running_loop()) or {}
            return [pool.closed for pool in pools.values()]

        assert asyncio.run(main()) == []  # every pool of the loop closed and forgotten


# ---------------------------------------------------------------------- rate limits, failures, refusals


def test_a_429_storm_through_the_job_drops_no_row_and_counts_every_wait() -> None:
    rows = 800
    with FakeEndpoint(latency_scale=SCALE, max_in_flight=6, retry_after=0.005) as endpoint:
        result = j12_llm_job(endpoint.base_url, rows, retries=0).run()
        stats = endpoint.stats()
    assert (result.records, result.dropped, result.errors) == (rows, 0, 0)
    check_j12_llm_output(result.to_pydict(row_index=True), rows)
    assert stats.overloaded > 0 and stats.peak_in_flight <= 6
    assert_usage_is_the_servers(result.usage.total, stats)
    assert result.usage.total["retryable_errors"] == 0


@pytest.mark.parametrize(("fail_attempts", "dropped"), [(1, False), (2, True)], ids=["retried", "dropped"])
def test_server_errors_are_retried_then_their_rows_dropped(fail_attempts: int, dropped: bool) -> None:
    rows = 600
    with FakeEndpoint(latency_scale=SCALE, fail_share=0.02, fail_attempts=fail_attempts) as endpoint:
        result = j12_llm_job(endpoint.base_url, rows, retries=1, retry_backoff=0).run()
        stats = endpoint.stats()
        failing = {
            row
            for (_, prompt), (column, row) in j12_llm_requests(rows)
            if band_of(column, prompt, endpoint) == "fail"
        }
    assert failing  # the switch hits some rows at this size
    data = result.to_pydict(row_index=True)
    if not dropped:
        assert (result.records, result.dropped) == (rows, 0)
        check_j12_llm_output(data, rows)
        assert result.errors == stats.server_errors == result.usage.total["retryable_errors"]
        assert all(n <= 2 for n in stats.calls_by_request.values())
        return
    # A row whose request fails twice is dropped; its later columns are never asked.
    assert result.dropped == len(failing) and data["_row"] == [i for i in range(rows) if i not in failing]
    expected = j12_llm_expected(rows)
    for name in data:
        if name != "_row":
            assert data[name] == [expected[name][i] for i in data["_row"]], name
    assert result.usage.total["retryable_errors"] == stats.server_errors == 2 * len(failing)


def test_a_refused_request_drops_its_rows_at_once_without_retries() -> None:
    rows = 120
    with FakeEndpoint(latency_scale=SCALE, unknown_models=(j12_llm_model_id("bucket"),)) as endpoint:
        result = j12_llm_job(
            endpoint.base_url, rows, retries=3, retry_backoff=0, min_error_sample=10_000
        ).run()
        stats = endpoint.stats()
    assert (result.records, result.dropped, result.errors) == (0, rows, rows)
    assert {s.error_type for s in result.error_samples} == {"ModelRequestError"}
    bucket_calls = [
        n for (model, _), n in stats.calls_by_request.items() if model == j12_llm_model_id("bucket")
    ]
    assert len(bucket_calls) == rows and set(bucket_calls) == {1}
    assert result.usage.columns["bucket"]["request_errors"] == rows


def test_a_template_naming_a_column_that_is_not_upstream_is_refused_before_any_call() -> None:
    with FakeEndpoint(latency_scale=SCALE) as endpoint:
        generators = j12_llm_generators(endpoint.base_url)
        model = ChatModel(j12_llm_model_id("h"), base_url=endpoint.base_url)
        generators["h"] = model.text("Hash {row_key} with {price}.")  # price is not upstream of h
        with pytest.raises(TemplateFieldError, match="price"):
            Job(build_j12_graph(), generators, 100)
        assert endpoint.stats().calls == 0


# ---------------------------------------------------------------------- timeouts


def test_a_call_the_endpoint_never_answers_times_out_under_the_job_timeout() -> None:
    """Every request hangs (the endpoint never answers it): whatever the machine's speed, each
    call ends by the job's timeout, and with no retries its row is dropped."""
    rows = 30
    with FakeEndpoint(latency_scale=SCALE, hang_share=1.0, hang_attempts=10) as endpoint:
        result = j12_llm_job(endpoint.base_url, rows, buffer_size=10, call_timeout=0.05, retries=0).run()
        stats = endpoint.stats()
    assert (result.records, result.dropped, result.errors) == (0, rows, rows)
    assert {s.error_type for s in result.error_samples} == {GeneratorTimeoutError.__name__}
    assert stats.calls == stats.hangs == rows  # only h was ever asked


def test_a_model_timeout_goes_through_the_jobs_retries() -> None:
    rows = 20
    with FakeEndpoint(latency_scale=SCALE, hang_share=1.0, hang_attempts=10) as endpoint:
        job = j12_llm_job(
            endpoint.base_url,
            rows,
            buffer_size=10,
            retries=1,
            retry_backoff=0,
            model_options={"timeout": 0.05},
        )
        result = job.run()
        stats = endpoint.stats()
    assert (result.dropped, result.errors) == (rows, 2 * rows)
    assert {s.error_type for s in result.error_samples} == {"ModelTimeoutError"}
    assert set(stats.calls_by_request.values()) == {2}
    assert result.usage.columns["h"]["retryable_errors"] == 2 * rows


# ---------------------------------------------------------------------- caps


def test_caps_of_the_job_its_columns_and_its_models_hold_at_the_server() -> None:
    rows = 1_500
    with FakeEndpoint(latency_scale=0.2) as endpoint:
        concurrency = dict.fromkeys(CELL_COLUMNS, 8) | {"h": 3}
        job = j12_llm_job(
            endpoint.base_url,
            rows,
            concurrency=concurrency,
            max_concurrency=20,
            model_options={"max_concurrency": 5},
        )
        result = job.run()
        stats = endpoint.stats()
    assert result.records == rows
    assert stats.peak_in_flight <= 20
    assert stats.peak_in_flight_by_model[j12_llm_model_id("h")] <= 3
    assert max(stats.peak_in_flight_by_model.values()) <= 5


# ---------------------------------------------------------------------- resuming


def run_worker(base_url: str, out: Path, rows: int, **settings: Any) -> subprocess.CompletedProcess[str]:
    settings.update(base_url=base_url, output_dir=str(out), rows=rows, checkpoint_every=600)
    command = [sys.executable, str(WORKER), json.dumps(settings)]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


@needs_pyarrow
def test_usage_stays_whole_across_an_interrupted_and_resumed_run(tmp_path: Path) -> None:
    """Ctrl-C after a call has its answer, one call in flight at a time: the checkpoint holds
    every answer received, so the resumed job's usage totals are the server's exactly."""
    rows, out = 1_200, tmp_path / "out"
    with FakeEndpoint(latency_scale=0.0) as endpoint:
        stopped = run_worker(endpoint.base_url, out, rows, act_at=3000, action="sigint", cap=1)
        assert stopped.returncode == 130, stopped.stderr
        first = endpoint.stats()
        finished = run_worker(endpoint.base_url, out, rows, cap=1)
        assert finished.returncode == 0, finished.stderr
        stats = endpoint.stats()
    assert 3000 <= first.answered < stats.answered
    summary = json.loads(finished.stdout.splitlines()[-1])
    assert summary["records"] == rows
    assert_usage_is_the_servers(summary["total"], stats)
    assert set(stats.calls_by_request.values()) == {1}  # nothing answered was asked again


@needs_pyarrow
def test_usage_of_a_finished_shard_comes_from_its_checkpoint(tmp_path: Path) -> None:
    rows = 1_000
    with FakeEndpoint(latency_scale=SCALE) as endpoint:
        first = j12_llm_job(endpoint.base_url, rows, output_dir=tmp_path / "out").run(row_groups=range(0, 1))
        assert first.usage.calls == 7 * 500
        result = j12_llm_job(endpoint.base_url, rows, output_dir=tmp_path / "out").run()
        stats = endpoint.stats()
    assert [s.skipped for s in result.shards] == [True, False]
    assert_usage_is_the_servers(result.usage.total, stats)
    assert result.shards[0].usage.calls == 7 * 500


@needs_pyarrow
def test_sigkill_mid_run_then_resume_repeats_no_call_answered_before_the_checkpoint(tmp_path: Path) -> None:
    rows, out = 3_000, tmp_path / "out"
    with FakeEndpoint(latency_scale=SCALE) as endpoint:
        killed = run_worker(endpoint.base_url, out, rows, act_at=9000, action="kill")
        assert killed.returncode == -9, killed.stderr
        held = {key for key in held_cells(out, rows, 500) if key[0] in CELL_COLUMNS}
        finished = run_worker(endpoint.base_url, out, rows)
        assert finished.returncode == 0, finished.stderr
        stats = endpoint.stats()
    assert len(held) > 600 * len(CELL_COLUMNS) // 7  # the kill came after some checkpoints
    by_cell = {cell: stats.calls_by_request[request] for request, cell in j12_llm_requests(rows)}
    assert {by_cell[cell] for cell in held} == {1}  # held at the kill: never asked again
    assert set(by_cell.values()) <= {1, 2}  # in flight at the kill: asked once more
    assert json.loads(finished.stdout.splitlines()[-1])["records"] == rows
    check_j12_llm_output(output_data(out), rows)


def output_data(out: Path) -> dict[str, list[Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cellfrontier.job import OutputLayout

    written = OutputLayout(out).written_groups(0, 1 << 20)
    table = pa.concat_tables([pq.read_table(written[rg]) for rg in sorted(written)])
    return {name: table.column(name).to_pylist() for name in table.column_names}
