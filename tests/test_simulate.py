"""The reference workloads end to end: every backend processes the fixed task count."""

from __future__ import annotations

import pytest

from cellfrontier.simulate import drivers
from cellfrontier.testing.workloads import W10, W64, expected_task_count, row_groups


@pytest.mark.parametrize(
    ("workload", "rows", "expected"),
    [(W10, 10_000, 69_630), (W10, 100_000, 696_300), (W10, 1_000_000, 6_963_000), (W64, 100_000, 6_300_100)],
)
def test_expected_task_counts_match_the_workload_definitions(workload, rows, expected) -> None:
    assert expected_task_count(workload, rows) == expected


def test_row_groups_make_the_last_group_shorter() -> None:
    assert row_groups(2_500, 1_000) == [(0, 1_000), (1, 1_000), (2, 500)]


@pytest.mark.parametrize("runner", [drivers.run_cellfrontier_tasks, drivers.run_cellfrontier_bulk])
@pytest.mark.parametrize(("workload", "rows"), [(W10, 10_000), (W10, 2_345), (W64, 3_500)])
def test_cellfrontier_drivers_process_the_fixed_task_count(runner, workload, rows) -> None:
    result = runner(workload, rows)
    assert result.tasks == expected_task_count(workload, rows)
    assert result.peak_bytes is not None and result.peak_bytes > 0


def test_simulate_command_prints_the_processed_task_count(capsys) -> None:
    from cellfrontier.cli import main

    assert main(["simulate", "--rows", "10000", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "69,630" in out


def test_simulate_compare_runs_every_backend_and_prints_the_ratio_matrix(capsys) -> None:
    from cellfrontier.cli import main
    from cellfrontier.simulate.cli import OPTIONS

    assert main(["simulate", "--compare", "--rows", "2000", "--no-progress"]) == 0
    out = capsys.readouterr().out
    table, ratios = out.split("speed ratios")
    rows = {
        label: line
        for line in table.splitlines()
        for label in (o.label for o in OPTIONS.values())
        if line.startswith(label)
    }
    expected = f"{expected_task_count(W10, 2_000):,}"
    for key in ("tasks", "bulk"):
        assert expected in rows[OPTIONS[key].label]
    for key in ("adapter", "datadesigner"):
        line = rows[OPTIONS[key].label]
        assert expected in line or "skipped" in line
    # The matrix has one row per backend that ran, each with a ratio to every other backend.
    ran = [label for label, line in rows.items() if "skipped" not in line]
    matrix = ratios.splitlines()[2:]
    for label in ran:
        line = next(m for m in matrix if m.startswith(label))
        assert line.count("x") == len(ran) - 1


def test_simulate_runs_a_whole_job_and_keeps_its_parquet_output(capsys, tmp_path) -> None:
    import pyarrow.parquet as pq

    from cellfrontier.cli import main
    from cellfrontier.testing.j12 import j12_task_count

    target = tmp_path / "out"
    assert (
        main(
            ["simulate", "--workload", "J12", "--rows", "2500", "--no-progress", "--output-dir", str(target)]
        )
        == 0
    )
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("cellfrontier.Job"))
    assert f"{j12_task_count(2_500, 1_000):,}" in line
    assert "checked cell by cell" in out
    files = sorted(target.rglob("*.parquet"))
    assert len(files) == 3  # one per row group: 1,000 + 1,000 + 500 rows
    assert sum(pq.read_metadata(f).num_rows for f in files) == 2_500


def test_simulate_compares_job_floor_and_datadesigner_per_row(capsys) -> None:
    from cellfrontier.cli import main
    from cellfrontier.simulate.job_cli import LABELS

    assert main(["simulate", "--workload", "J12", "--compare", "--rows", "300", "--no-progress"]) == 0
    out = capsys.readouterr().out
    table, wall, cpu = out.split(" time ratios")
    for backend in ("job", "floor", "datadesigner"):
        line = next(line for line in table.splitlines() if line.startswith(LABELS[backend]))
        assert "300" in line or "skipped" in line
    ran = [
        b
        for b in ("job", "floor", "datadesigner")
        if "skipped" not in table.split(LABELS[b])[1].split("\n")[0]
    ]
    assert {"job", "floor"} <= set(ran)
    for block in (wall, cpu):
        rows = [line for line in block.splitlines() if any(line.startswith(LABELS[b]) for b in ran)]
        assert len(rows) == len(ran)
        assert all(line.count("x") >= len(ran) - 1 for line in rows)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workload", "J12-LAT", "--backend", "floor"], "floor backend runs J12 only"),
        (["--workload", "J12", "--backend", "bulk"], "drives the tracker workloads"),
        (["--workload", "W10", "--backend", "job"], "runs the job workloads"),
        (["--workload", "W10", "--output-dir", "x"], "--output-dir is for the job workloads"),
    ],
)
def test_simulate_refuses_options_that_do_not_fit_the_workload(capsys, argv, message) -> None:
    from cellfrontier.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["simulate", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_simulate_refuses_an_output_dir_that_holds_files(tmp_path) -> None:
    from cellfrontier.cli import main

    (tmp_path / "other.txt").write_text("not a job's")
    with pytest.raises(SystemExit, match="must be an empty or missing directory"):
        main(
            ["simulate", "--workload", "J12", "--rows", "100", "--no-progress", "--output-dir", str(tmp_path)]
        )
    assert [p.name for p in tmp_path.iterdir()] == ["other.txt"]


def test_ratio_matrix_keeps_small_ratios_readable() -> None:
    import io

    from cellfrontier.simulate.reporting import write_ratio_matrix

    out = io.StringIO()
    write_ratio_matrix(out, [("fast", "f", 1.0), ("slow", "s", 400.0)], label_width=6, cell_width=9)
    lines = out.getvalue().splitlines()
    assert lines[1].split()[-1] == "400.0x"
    assert lines[2].split()[-1] == "0.0025x"
