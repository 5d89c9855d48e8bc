"""J12-LLM end to end: today's ``cellfrontier.Job`` runs model columns as plain async generators."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("httptools")


from cellfrontier import Job
from cellfrontier.llm import Usage, check_model_columns
from cellfrontier.llm.transport import close_loop_pools
from cellfrontier.testing.fake_endpoint import FakeEndpoint
from cellfrontier.testing.j12 import CELL_COLUMNS, build_j12_graph
from cellfrontier.testing.j12_llm import j12_llm_expected, j12_llm_generators, j12_llm_model_id

pytestmark = pytest.mark.process

ROWS = 2000
COLUMN_CAP = 8
JOB_CAP = 24


def test_j12_llm_through_job_cell_by_cell() -> None:
    with FakeEndpoint(latency_scale=0.02) as endpoint:
        graph = build_j12_graph()
        generators = j12_llm_generators(endpoint.base_url, max_concurrency=256)
        check_model_columns(graph, generators)  # what the job will do before any call
        job = Job(
            graph,
            generators,
            ROWS,
            buffer_size=1000,
            concurrency=dict.fromkeys(CELL_COLUMNS, COLUMN_CAP),
            max_concurrency=JOB_CAP,
            progress_bar=False,
        )

        async def run_job() -> object:
            try:
                return await job.run_async()
            finally:
                close_loop_pools()

        result = asyncio.run(run_job())
        stats = endpoint.stats()
    assert result.records == ROWS and result.dropped == 0  # type: ignore[attr-defined]
    data = result.to_pydict(row_index=True)  # type: ignore[attr-defined]
    assert data["_row"] == list(range(ROWS))
    expected = j12_llm_expected(ROWS)
    for name, values in expected.items():
        assert data[name] == values, name
    # Every call answered once, and the caps held at the server.
    assert stats.answered == stats.calls == len(CELL_COLUMNS) * ROWS
    assert set(stats.calls_by_request.values()) == {1}
    assert stats.peak_in_flight <= JOB_CAP
    assert set(stats.peak_in_flight_by_model) == {j12_llm_model_id(c) for c in CELL_COLUMNS}
    assert max(stats.peak_in_flight_by_model.values()) <= COLUMN_CAP
    # Usage per column adds up to the server's counts.
    total = Usage.total(generators[c].usage for c in CELL_COLUMNS)
    assert total.calls == stats.answered
    assert (total.prompt_tokens, total.completion_tokens) == (stats.prompt_tokens, stats.completion_tokens)
    assert all(generators[c].usage.calls == ROWS for c in CELL_COLUMNS)


SECRET = "sk-test-recognisable-4f9c2e7a"


def test_a_job_with_a_key_writes_and_prints_no_trace_of_it(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The key comes from the environment; nothing under output_dir, nothing printed holds it."""
    from pathlib import Path

    pytest.importorskip("pyarrow")
    monkeypatch.setenv("CF_JOB_TEST_KEY", SECRET)
    out = Path(str(tmp_path)) / "out"
    with FakeEndpoint(latency_scale=0.02, api_key=SECRET) as endpoint:
        generators = j12_llm_generators(endpoint.base_url, api_key_env="CF_JOB_TEST_KEY")
        job = Job(build_j12_graph(), generators, 300, buffer_size=100, output_dir=out, progress_bar=True)
        result = job.run()
        stats = endpoint.stats()
    assert result.records == 300 and stats.answered == len(CELL_COLUMNS) * 300  # the key was accepted
    printed = capfd.readouterr()
    assert SECRET not in printed.out + printed.err
    files = [path for path in out.rglob("*") if path.is_file()]
    assert files and not [path for path in files if SECRET.encode() in path.read_bytes()]
