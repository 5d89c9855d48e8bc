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


@pytest.mark.process
def test_a_changed_template_reruns_only_that_column_and_its_downstream(tmp_path: object) -> None:
    """J12-LLM on an output_dir, then ``total``'s template edited: the server sees only the calls it needs."""
    from collections import Counter
    from pathlib import Path

    from cellfrontier.llm import ChatModel
    from cellfrontier.testing.j12_llm import J12_LLM_TEMPLATES

    pytest.importorskip("pyarrow")
    out = Path(str(tmp_path)) / "out"
    rows = 300

    def calls_by_model(stats: object) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (model, _), n in stats.calls_by_request.items():  # type: ignore[attr-defined]
            counts[model] += n
        return counts

    with FakeEndpoint(latency_scale=0.01) as endpoint:
        first = j12_llm_generators(endpoint.base_url)
        Job(build_j12_graph(), first, rows, buffer_size=100, output_dir=out, progress_bar=False).run()
        before = calls_by_model(endpoint.stats())
        assert before == Counter({j12_llm_model_id(c): rows for c in CELL_COLUMNS})
        edited = j12_llm_generators(endpoint.base_url)
        model = ChatModel(j12_llm_model_id("total"), base_url=endpoint.base_url)
        edited["total"] = model.text("Price {price} times bucket {bucket}, plus one.")
        assert edited["total"].identity() != first["total"].identity()
        job = Job(build_j12_graph(), edited, rows, buffer_size=100, output_dir=out, progress_bar=False)
        plan = job.plan_rerun()
        assert {c.column for c in plan.recomputed} == {"total", "summary", "final"}
        assert plan.tasks_to_compute == 2 * rows + 3  # total and final per row, summary per group
        result = job.run()
        after = calls_by_model(endpoint.stats()) - before
        assert after == Counter({j12_llm_model_id("total"): rows, j12_llm_model_id("final"): rows})
        fresh = Job(
            build_j12_graph(), j12_llm_generators(endpoint.base_url) | {"total": edited["total"]}, rows
        )
        expected = fresh.run().to_pydict(row_index=True)
    assert result.to_pydict(row_index=True) == expected
    assert J12_LLM_TEMPLATES["total"] != "Price {price} times bucket {bucket}, plus one."
