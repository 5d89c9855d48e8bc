"""``Job`` produces exactly the values its generators define: J12 cell by cell, aliases, every mode."""

from __future__ import annotations

import asyncio
import itertools
import sys
from typing import Any

import pytest
from job_support import needs_pyarrow

from cellfrontier import ExecutionGraph, Job, JobProgress, RunningLoopError, blocking
from cellfrontier.testing.j12 import (
    build_j12_graph,
    check_j12_output,
    j12_expected_row,
    j12_generators,
    j12_lat_generators,
    j12_task_count,
)

SIZES = (1, 999, 1000, 2500)  # one row, one short group, one full group, a last short group


@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("where", ["memory", pytest.param("output_dir", marks=needs_pyarrow)])
def test_j12_equals_the_formulas(tmp_path, rows: int, where: str) -> None:
    output_dir = tmp_path / "out" if where == "output_dir" else None
    result = Job(build_j12_graph(), j12_generators(), rows, output_dir=output_dir, progress_bar=False).run()
    assert (result.records, result.dropped, result.errors) == (rows, 0, 0)
    assert result.tasks == j12_task_count(rows)
    check_j12_output(result.to_pydict(row_index=True), rows)


@needs_pyarrow
def test_table_keeps_types_and_row_order(tmp_path) -> None:
    import pyarrow as pa

    result = Job(
        build_j12_graph(), j12_generators(), 2500, output_dir=tmp_path / "out", progress_bar=False
    ).run()
    table = result.table(row_index=True)
    assert table.column_names[0] == "_row"
    assert table.column("_row").to_pylist() == list(range(2500))
    assert table.schema.field("price").type == pa.int64()
    assert table.schema.field("code").type == pa.string()
    assert table.column("final").to_pylist()[1234] == j12_expected_row(1234)["final"]
    assert "_row" not in result.table().column_names
    assert set(result.table().column_names) == {name for name in build_j12_graph().columns}


@needs_pyarrow
def test_zero_rows(tmp_path) -> None:
    result = Job(
        build_j12_graph(), j12_generators(), 0, output_dir=tmp_path / "out", progress_bar=False
    ).run()
    assert (result.records, result.tasks) == (0, 0)
    assert result.table().num_rows == 0


def test_async_cells_give_the_same_output() -> None:
    result = Job(build_j12_graph(), j12_lat_generators(0.0), 2500, progress_bar=False).run()
    check_j12_output(result.to_pydict(row_index=True), 2500)
    assert result.tasks == j12_task_count(2500)


def test_blocking_generators_run_on_the_pool_and_give_the_same_output() -> None:
    import threading

    threads: set[str] = set()
    generators = j12_generators()
    code, summary = generators["code"], generators["summary"]

    @blocking(batch_size=7)
    def blocking_code(row: dict[str, Any]) -> str:
        threads.add(threading.current_thread().name)
        return code(row)

    generators["code"] = blocking_code
    generators["summary"] = blocking(summary)
    result = Job(build_j12_graph(), generators, 2500, progress_bar=False).run()
    check_j12_output(result.to_pydict(row_index=True), 2500)
    assert threads and all(name.startswith("cellfrontier-blocking") for name in threads)


@needs_pyarrow
def test_mixed_async_blocking_and_inline(tmp_path) -> None:
    generators = j12_lat_generators(0.0)
    generators["total"] = blocking(j12_generators()["total"])
    generators["sig"] = j12_generators()["sig"]
    result = Job(build_j12_graph(), generators, 2500, output_dir=tmp_path / "o", progress_bar=False).run()
    check_j12_output(result.to_pydict(row_index=True), 2500)


def _alias_graph() -> ExecutionGraph:
    graph = ExecutionGraph()
    graph.add_column("topic", "cell_by_cell")
    graph.add_column("answer", "cell_by_cell")
    graph.add_column("judge", "full_column")
    graph.add_column("final", "cell_by_cell")
    graph.add_edge("topic", "answer")
    graph.add_edge("answer", "judge")
    graph.add_edge("judge", "final")
    graph.set_side_effect("answer__trace", "answer")
    graph.set_side_effect("judge__why", "judge")
    return graph


def _alias_generators(seen: dict[str, set[str]], async_answer: bool = False) -> dict[str, Any]:
    def topic(row: dict[str, Any]) -> str:
        seen["topic"] = set(row)
        return f"t{row['_row']}"

    def answer(row: dict[str, Any]) -> dict[str, Any]:
        seen["answer"] = set(row)
        return {"answer": row["topic"].upper(), "answer__trace": len(row["topic"])}

    async def answer_async(row: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return answer(row)

    def judge(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        seen["judge"] = set(batch)
        return {
            "judge": [a + "!" for a in batch["answer"]],
            "judge__why": [t * 2 for t in batch["answer__trace"]],
        }

    def final(row: dict[str, Any]) -> str:
        seen["final"] = set(row)
        return f"{row['judge']}|{row['judge__why']}"

    return {
        "topic": topic,
        "answer": answer_async if async_answer else answer,
        "judge": judge,
        "final": final,
    }


@needs_pyarrow
@pytest.mark.parametrize("async_answer", [False, True])
def test_side_effect_aliases_are_outputs_and_inputs(tmp_path, async_answer: bool) -> None:
    import pyarrow as pa

    seen: dict[str, set[str]] = {}
    job = Job(
        _alias_graph(),
        _alias_generators(seen, async_answer),
        1500,
        buffer_size=400,
        output_dir=tmp_path / "o",
    )
    result = job.run()
    assert seen["topic"] == {"_row"}
    assert seen["answer"] == {"topic", "_row"}
    assert seen["judge"] == {"answer", "answer__trace", "_row"}
    assert seen["final"] == {"judge", "judge__why", "_row"}
    data = result.to_pydict(row_index=True)
    assert set(data) == {"_row", "topic", "answer", "answer__trace", "judge", "judge__why", "final"}
    for i in (0, 399, 400, 1499):
        t = f"t{i}"
        assert data["answer"][i] == t.upper() and data["answer__trace"][i] == len(t)
        assert data["judge__why"][i] == 2 * len(t)
        assert data["final"][i] == f"{t.upper()}!|{2 * len(t)}"
    assert result.table().schema.field("answer__trace").type == pa.int64()


def test_progress_callback_reports_to_the_end() -> None:
    updates: list[JobProgress] = []
    Job(build_j12_graph(), j12_generators(), 2500, progress=updates.append, progress_interval=0.0).run()
    assert updates
    last = updates[-1]
    assert (last.rows_total, last.rows_done, last.rows_dropped) == (2500, 2500, 0)
    assert last.tasks == j12_task_count(2500) and last.fraction == 1.0
    assert all(b.tasks >= a.tasks for a, b in itertools.pairwise(updates))


def test_progress_bar_draws_on_stderr(capsys) -> None:
    Job(build_j12_graph(), j12_generators(), 1500, progress_bar=True).run()
    err = capsys.readouterr().err
    assert "rows 1,500/1,500" in err and "tasks/s" in err and "ETA" in err and err.endswith("\n")


def test_run_async_inside_a_loop_and_run_refused_there() -> None:
    async def main() -> int:
        job = Job(build_j12_graph(), j12_generators(), 1200, progress_bar=False)
        with pytest.raises(RunningLoopError, match="run_async"):
            job.run()
        return (await job.run_async()).records

    assert asyncio.run(main()) == 1200


@needs_pyarrow
def test_a_shard_runs_only_its_row_groups(tmp_path) -> None:
    import pyarrow as pa

    out = tmp_path / "out"
    first = Job(build_j12_graph(), j12_generators(), 4500, output_dir=out).run(row_groups=range(0, 2))
    second = Job(build_j12_graph(), j12_generators(), 4500, output_dir=out).run(row_groups=range(2, 5))
    assert (first.records, second.records) == (2000, 2500)
    assert first.table(row_index=True).column("_row").to_pylist() == list(range(2000))
    tables = pa.concat_tables([first.table(row_index=True), second.table(row_index=True)])
    check_j12_output({name: tables.column(name).to_pylist() for name in tables.column_names}, 4500)
    shards = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert shards == ["shard-00000000-00000002", "shard-00000002-00000005"]
    for shard in shards:  # each shard: the claim of its one attempt and that attempt's checkpoint
        assert sorted(p.name for p in (out / "checkpoints" / shard).iterdir()) == [
            "claim-000001",
            "epoch-000001.ckpt",
        ]
    whole = Job(build_j12_graph(), j12_generators(), 4500, output_dir=out).run()
    assert (whole.tasks, whole.records) == (0, 4500)  # both shards finished: nothing runs again
    assert [(s.row_groups, s.skipped) for s in whole.shards] == [(range(0, 2), True), (range(2, 5), True)]


@pytest.mark.process
def test_base_install_needs_no_pyarrow_without_output_dir() -> None:
    import subprocess

    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from cellfrontier import Job, MissingDependencyError\n"
        "from cellfrontier.testing.j12 import build_j12_graph, j12_generators, check_j12_output\n"
        "r = Job(build_j12_graph(), j12_generators(), 1500).run()\n"
        "check_j12_output(r.to_pydict(row_index=True), 1500)\n"
        "try:\n    r.table()\nexcept MissingDependencyError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "pip install 'cellfrontier[job]'" in out.stdout


def test_collector_settings_are_tuned_during_the_run_and_restored() -> None:
    import gc

    seen: list[tuple[tuple[int, ...], int]] = []
    generators = j12_generators()
    h = generators["h"]

    def watching_h(row: dict[str, Any]) -> int:
        if not seen:
            seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return h(row)

    generators["h"] = watching_h
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    Job(build_j12_graph(), generators, 1200, progress_bar=False).run()
    assert seen[0][0][0] == 50_000 and seen[0][1] > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    seen.clear()
    Job(build_j12_graph(), generators, 1200, progress_bar=False, tune_gc=False).run()
    assert seen[0] == (before, 0)


def test_written_files_are_readable_by_others(tmp_path) -> None:
    """Row-group files, checkpoints and the manifest get the usual 0644, not mkstemp's 0600."""
    out = tmp_path / "out"
    Job(build_j12_graph(), j12_generators(), 1_500, output_dir=out).run()
    files = [p for p in out.rglob("*") if p.suffix in (".parquet", ".ckpt", ".json")]
    assert any(p.suffix == ".parquet" for p in files) and any(p.suffix == ".ckpt" for p in files)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: "0o644" for p in files}
