"""Reruns of an edited job on the same ``output_dir``: only what changed is computed.

Every generator logs each cell it computes (``rerun_support``), so each test checks exactly
which cells a rerun called: a changed column and everything downstream of it once per live
row, nothing that was kept, every new row once.  Outputs are checked against J12's formulas
(version bumps keep the values) or against a fresh run of the final job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from job_support import CallLog, LoggedCell
from rerun_support import (
    NAMES,
    cells,
    downstream_of,
    extra_from_h,
    final_hash,
    j12_job,
    pinned_j12,
    run_calls,
)

from cellfrontier import Job, OutputDirError, RerunRefusedError, generator
from cellfrontier.job import OutputLayout
from cellfrontier.job.store.generations import legacy_fingerprint, newest_version, read_manifest
from cellfrontier.job.store.group_files import read_group_stamp
from cellfrontier.testing.j12 import build_j12_graph, check_j12_output, j12_generators

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROWS = 4500  # five groups of 1,000, the last one short


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, CallLog]:
    log_path = tmp_path / "calls"
    return tmp_path / "out", log_path, CallLog(log_path)


def calls_of(log_path: Path, run: Any) -> Any:
    """The calls logged by *run()* alone."""
    before = run_calls(log_path)
    result = run()
    return result, run_calls(log_path) - before


def data_of(result: Any) -> dict[str, list[Any]]:
    return result.to_pydict(row_index=True)


def test_a_version_bump_recomputes_the_column_and_its_downstream_once_per_row(setup: Any) -> None:
    out, log_path, log = setup
    first = j12_job(out, ROWS, pinned_j12(log)).run()
    assert run_calls(log_path) == cells(NAMES, range(ROWS))  # every cell once
    job = j12_job(out, ROWS, pinned_j12(log, {"bucket": "2"}))
    plan = job.plan_rerun()
    result, calls = calls_of(log_path, job.run)
    changed = downstream_of("bucket")
    assert changed == {"bucket", "code", "label", "total", "sig", "summary", "final"}
    assert calls == cells(changed, range(ROWS))
    check_j12_output(data_of(result), ROWS)
    assert result.table().equals(first.table())
    assert set(plan.kept) == set(NAMES) - changed and not plan.added and not plan.removed
    assert {(c.column, c.reason) for c in plan.recomputed} == {("bucket", "changed")} | {
        (name, "upstream changed") for name in changed - {"bucket"}
    }
    assert plan.tasks_to_compute == result.tasks == 6 * ROWS + 5  # six cell columns, and summary per group
    assert result.cells_kept == len(set(NAMES) - changed) * ROWS
    again, calls = calls_of(log_path, job.run)  # the same job again: nothing to do
    assert not calls and again.tasks == 0


def test_a_code_change_recomputes_only_that_column(setup: Any) -> None:
    out, log_path, log = setup
    j12_job(out, ROWS, pinned_j12(log)).run()
    generators = pinned_j12(log)
    generators["final"] = LoggedCell("final", final_hash, log)  # not pinned: its code decides
    result, calls = calls_of(log_path, j12_job(out, ROWS, generators).run)
    assert calls == cells({"final"}, range(ROWS))
    fresh = j12_job(None, ROWS, generators).run()
    assert data_of(result) == data_of(fresh)
    assert data_of(result)["final"][7].count("#") == 2


def test_add_and_remove_a_column(setup: Any) -> None:
    out, log_path, log = setup
    j12_job(out, ROWS, pinned_j12(log)).run()
    graph = build_j12_graph()
    graph.add_column("extra", "cell_by_cell")
    graph.add_edge("h", "extra")
    generators = {
        **pinned_j12(log),
        "extra": generator(LoggedCell("extra", extra_from_h, log), version="1"),
    }
    job = j12_job(out, ROWS, generators, graph=graph)
    plan = job.plan_rerun()
    assert plan.added == ("extra",) and not plan.recomputed and not plan.removed
    result, calls = calls_of(log_path, job.run)
    assert calls == cells({"extra"}, range(ROWS))
    data = data_of(result)
    assert data["extra"] == [h * 3 + 1 for h in data["h"]]
    check_j12_output(data, ROWS)

    # Remove it again, and `final` too: nothing is computed, the files lose the columns.
    smaller = build_j12_graph()
    smaller_gens = pinned_j12(log)
    graph_without_final = _without(smaller, "final")
    del smaller_gens["final"]
    job = j12_job(out, ROWS, smaller_gens, graph=graph_without_final)
    plan = job.plan_rerun()
    assert set(plan.removed) == {"extra", "final"} and plan.tasks_to_compute == 0
    result, calls = calls_of(log_path, job.run)
    assert not calls and result.tasks == 0
    table = result.table()
    assert "extra" not in table.column_names and "final" not in table.column_names
    for path in (out / "data").glob("*.parquet"):
        assert "final" not in pq.read_schema(path).names


def _without(graph: Any, column: str) -> Any:
    from cellfrontier import ExecutionGraph

    smaller = ExecutionGraph()
    for name in graph.get_topological_order():
        if name != column:
            smaller.add_column(name, graph.get_strategy(name))
    for name in smaller.columns:
        for up in graph.get_upstream_columns(name):
            smaller.add_edge(up, name)
    return smaller


@pytest.mark.parametrize("start", [4500, 10])
def test_growing_computes_only_the_new_rows(setup: Any, start: int) -> None:
    """A partial last group is completed: its old rows keep every column, full columns included."""
    out, log_path, log = setup
    j12_job(out, start, pinned_j12(log)).run()
    grown = 6200
    job = j12_job(out, grown, pinned_j12(log))
    plan = job.plan_rerun()
    result, calls = calls_of(log_path, job.run)
    assert calls == cells(NAMES, range(start, grown))  # each new cell once, no old one again
    check_j12_output(data_of(result), grown)
    assert plan.rows_added == grown - start and plan.tasks_to_compute == result.tasks
    assert not plan.recomputed and set(plan.kept) == set(NAMES)


def test_a_volatile_column_is_recomputed_by_each_new_version_only(setup: Any) -> None:
    out, log_path, log = setup
    generators = pinned_j12(log)
    generators["label"] = generator(generators["label"].__wrapped__, volatile=True)
    j12_job(out, ROWS, generators).run()
    _, calls = calls_of(log_path, j12_job(out, ROWS, generators).run)
    assert not calls  # the same version resumes: what it computed stays
    bumped = {**generators, "order_id": generator(generators["order_id"].__wrapped__, version="2")}
    job = j12_job(out, ROWS, bumped)
    plan = job.plan_rerun()
    assert ("label", "volatile") in {(c.column, c.reason) for c in plan.recomputed}
    result, calls = calls_of(log_path, job.run)
    assert calls == cells({"order_id", "label", "summary", "final"}, range(ROWS))
    check_j12_output(data_of(result), ROWS)


def _tree(out: Path) -> dict[str, tuple[int, int, int]]:
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(out.rglob("*"))
    }


def test_shrinking_or_another_buffer_size_is_refused_with_the_directory_untouched(setup: Any) -> None:
    out, log_path, log = setup
    j12_job(out, ROWS, pinned_j12(log)).run()
    before = _tree(out)
    with pytest.raises(
        RerunRefusedError, match=r"num_records=4,500.*asks for 4,000.*keep num_records >= 4,500"
    ):
        j12_job(out, 4000, pinned_j12(log)).run()
    with pytest.raises(RerunRefusedError, match=r"buffer_size=1000.*buffer_size=500.*use buffer_size=1000"):
        j12_job(out, ROWS, pinned_j12(log), buffer_size=500).plan_rerun()
    with pytest.raises(RerunRefusedError, match="buffer_size"):
        j12_job(out, ROWS, pinned_j12(log, {"h": "9"}), buffer_size=500).run()
    assert isinstance(RerunRefusedError("x"), OutputDirError)
    assert _tree(out) == before
    assert run_calls(log_path) == cells(NAMES, range(ROWS))


def test_drops_of_a_kept_column_stay_and_a_recomputed_columns_get_another_chance(setup: Any) -> None:
    out, log_path, log = setup
    first = j12_job(out, ROWS, pinned_j12(log, failing={"total": 3})).run()
    dropped = {i for i in range(ROWS) if (i * 7 + 3) % 11 == 0}
    assert first.dropped == len(dropped)
    stamp = read_group_stamp(out / "data" / "part-00000000.parquet")
    assert stamp is not None and set(stamp.dropped.values()) == {"total"}

    # `final` changes, `total` (which dropped the rows) is kept: the drops stay, total is not called.
    result, calls = calls_of(
        log_path, j12_job(out, ROWS, pinned_j12(log, {"final": "2"}, failing={"total": 3})).run
    )
    assert calls == cells({"final"}, sorted(set(range(ROWS)) - dropped))
    assert result.dropped == len(dropped)

    # `total` changes and no longer fails: the dropped rows are computed in every column
    # (the kept ones only on those rows), and total and its downstream everywhere.
    job = j12_job(out, ROWS, pinned_j12(log, {"final": "2", "total": "2"}))
    result, calls = calls_of(log_path, job.run)
    again = downstream_of("total")
    expected = cells(again, range(ROWS)) + cells(set(NAMES) - again, sorted(dropped))
    assert calls == expected
    check_j12_output(data_of(result), ROWS)


def test_preview_computes_the_first_rows_in_memory_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    log = CallLog(tmp_path / "calls")
    job = j12_job(out, 1_000_000, pinned_j12(log, failing={"code": 1}))
    preview = job.preview(10)
    assert not out.exists()
    assert preview.records + preview.dropped == 10 and preview.table.num_rows == preview.records
    failed = [i for i in range(10) if (i * 7 + 1) % 11 == 0]
    assert preview.data["_row"] == [i for i in range(10) if i not in failed]
    assert failed and {s.row for s in preview.error_samples} == set(failed)
    assert set(run_calls(tmp_path / "calls")) <= {(n, i) for n in NAMES for i in range(10)}


def test_a_directory_of_the_format_before_versions_is_migrated_by_the_same_job(setup: Any) -> None:
    out, log_path, log = setup
    generators = pinned_j12(log)
    job = j12_job(out, ROWS, generators)
    job.run(row_groups=range(0, 3))
    _make_legacy(out, job)
    before = _tree(out)
    edited = {**generators, "final": final_hash}  # another generator: version 1 told that apart
    with pytest.raises(RerunRefusedError, match=r"before job versions.*run the job it was made with once"):
        j12_job(out, ROWS, edited).run()
    assert _tree(out) == before
    result, calls = calls_of(log_path, j12_job(out, ROWS, generators).run)
    assert calls == cells(NAMES, range(3000, ROWS))  # the unchanged job resumes: only what was left
    check_j12_output(data_of(result), ROWS)
    record = newest_version(out)
    assert record is not None and record["generation"] == 1 and record["migrated_from"]
    # Now an edit keeps what the old files hold.
    result, calls = calls_of(log_path, j12_job(out, ROWS, pinned_j12(log, {"final": "2"})).run)
    assert calls == cells({"final"}, range(ROWS))
    check_j12_output(data_of(result), ROWS)


def _make_legacy(out: Path, job: Job) -> None:
    """Turn *out* into what a release before job versions wrote: manifest 1, no footers, no versions."""
    import shutil

    for path in (out / "data").glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.replace_schema_metadata({}), path)
    shutil.rmtree(out / "versions")
    shutil.rmtree(out / "checkpoints")
    (out / "checkpoints").mkdir()
    manifest = legacy_fingerprint(job.spec())
    (out / "cellfrontier-job.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def test_the_manifest_names_the_current_version_and_readers_need_no_user_code(setup: Any) -> None:
    out, _, log = setup
    j12_job(out, 2000, pinned_j12(log)).run()
    j12_job(out, 2000, pinned_j12(log, {"sig": "3"})).run()
    manifest = read_manifest(out)
    assert manifest is not None and manifest == newest_version(out)
    assert manifest["generation"] == 2 and manifest["previous"] == 1
    assert manifest["columns"]["sig"]["print_source"] == "version"
    assert sorted(p.name for p in (out / "versions").iterdir()) == ["g000001.json", "g000002.json"]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["g000002"]  # older version's removed
    stamp = read_group_stamp(out / "data" / "part-00000001.parquet")
    assert stamp is not None and stamp.generation == 2 and stamp.size == 1000 and stamp.rows == 1000
    assert stamp.columns is not None and stamp.columns["sig"][0] == manifest["fingerprints"]["sig"]
    assert OutputLayout(out).current_generation() == 2


def test_the_plan_names_columns_a_new_python_recomputes_and_how_to_pin_them(tmp_path: Path) -> None:
    """A version record written under another Python, whose code print of ``h`` differs from today's."""
    out = tmp_path / "out"
    generators = {**j12_generators(), "label": generator(j12_generators()["label"], version="1")}
    Job(build_j12_graph(), generators, 2000, output_dir=out, progress_bar=False).run()
    path = out / "versions" / "g000001.json"
    record = json.loads(path.read_text())
    record["python_version"] = "3.1"
    record["columns"]["h"]["print"] = "bytecode-of-another-python"
    record["fingerprints"]["h"] = "another"
    path.write_text(json.dumps(record))
    plan = Job(build_j12_graph(), generators, 2000, output_dir=out).plan_rerun()
    assert [(c.column, c.reason) for c in plan.recomputed] == [("h", "python version")]
    assert plan.python_versions is not None and plan.python_versions[0] == "3.1"
    assert "pin them with cellfrontier.generator(fn, version=...)" in str(plan)
