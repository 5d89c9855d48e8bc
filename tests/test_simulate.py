"""The reference workloads end to end: every backend processes the fixed task count."""

from __future__ import annotations

import pytest

from cellfrontier.simulate import drivers
from cellfrontier.simulate.workloads import W10, W64, expected_task_count, row_groups


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
    from cellfrontier.simulate.cli import main

    assert main(["simulate", "--rows", "10000", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "69,630" in out


def test_simulate_compare_runs_every_backend_and_prints_the_ratio_matrix(capsys) -> None:
    from cellfrontier.simulate.cli import OPTIONS, main

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
