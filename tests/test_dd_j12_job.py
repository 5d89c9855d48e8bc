"""J12 run through NVIDIA DataDesigner's own engine produces J12's values, cell by cell.

J12 itself lives in ``cellfrontier.testing.j12``, the DataDesigner side of it in
``cellfrontier.simulate.datadesigner_jobs`` (the comparison side of the whole-job
benchmarks); these tests keep both honest at small sizes:

* J12's generators give the table's values, computed a whole column at a time or a row at a
  time alike, and the checker reports a wrong cell, a wrong type and a missing row;
* ``DatasetBuilder.build()`` with DataDesigner's tracker, and with cellfrontier's tracker
  installed, writes exactly J12 (several row groups, the last one short);
* the J12-LAT generators (``async``, awaiting latency under a per-column semaphore) write the
  same values and never run more calls of a column at once than its cap.

The DataDesigner runs are skipped when ``data-designer-engine`` is not installed, and fail
instead under CI, which installs it.
"""

from __future__ import annotations

import pytest
from dd_e2e_support import ci_requires_data_designer

from cellfrontier.simulate import datadesigner_jobs as dd_jobs
from cellfrontier.testing.j12 import (
    CELL_COLUMNS,
    FULL_COLUMNS,
    J12_COLUMNS,
    j12_expected_columns,
    j12_expected_row,
    j12_lat_delay,
)


@pytest.fixture
def data_designer() -> None:
    """Skip (or fail under CI) when DataDesigner's engine cannot be imported."""
    reason = dd_jobs.dd_skip_reason()
    if reason is None:
        return
    if ci_requires_data_designer():
        pytest.fail(f"{reason}; CI must install the 'datadesigner' extra", pytrace=False)
    pytest.skip(reason)


# -- the workload's definition and the checker (no DataDesigner needed) -----------------------


def test_column_wise_formulas_match_the_per_cell_formulas() -> None:
    start, rows = 999_990, 25  # crosses 10**6: order ids and codes change width there
    expected = j12_expected_columns(rows, start)
    assert list(expected) == [c.name for c in J12_COLUMNS]
    for k in range(rows):
        row = j12_expected_row(start + k)
        for name, values in expected.items():
            assert values[k] == row[name], (name, start + k)


def test_formulas_spot_values() -> None:
    # i = 6: region "east" (6 % 4 = 2), price 1 + 222 % 100 = 23, h = 6 * 2654435761 % 1000 = 566
    row = j12_expected_row(6)
    assert row["region"] == "east"
    assert row["price"] == 23
    assert row["order_id"] == "o000000006"
    assert row["h"] == 566
    assert row["bucket"] == 5
    assert row["code"] == "6-5-566"
    assert row["label"] == "east/5"
    assert row["total"] == 23 * 6
    assert row["sig"] == len("6-5-566") + 566
    assert row["summary"] == f"7:east/5:{23 * 6}"
    assert row["final"] == f"7:east/5:{23 * 6}|573|o000000006"
    # i = 1,000,003: "west" (i % 4 = 3), price 1 + 37,000,111 % 100 = 12, h = 3 * 761 % 1000 = 283
    assert j12_expected_row(1_000_003) == {
        "region": "west",
        "price": 12,
        "order_id": "o001000003",
        "row_key": 1_000_003,
        "h": 283,
        "bucket": 2,
        "code": "1000003-2-283",
        "label": "west/2",
        "total": 12 * 3,
        "sig": 13 + 283,
        "summary": "13:west/2:36",
        "final": "13:west/2:36|296|o001000003",
    }


def test_latency_is_seeded_by_the_row_and_within_25_to_75_ms() -> None:
    delays = [j12_lat_delay(i) for i in range(2000)]
    assert delays == [j12_lat_delay(i) for i in range(2000)]
    assert all(0.025 <= d < 0.075 for d in delays)
    assert 0.045 < sum(delays) / len(delays) < 0.055
    assert len(set(delays)) > 1900


def test_checker_accepts_j12_and_reports_each_kind_of_difference() -> None:
    pa = pytest.importorskip("pyarrow")
    columns = j12_expected_columns(50, 100)
    assert dd_jobs.check_j12_table(pa.table(columns), 50, start=100) == []
    assert dd_jobs.check_j12_table(pa.table(columns), 50, start=101) != []

    wrong_cell = dict(columns, total=[*columns["total"][:7], -1, *columns["total"][8:]])
    assert dd_jobs.check_j12_table(pa.table(wrong_cell), 50, start=100) == [
        f"total[107] = -1, expected {columns['total'][7]!r}"
    ]
    wrong_type = dict(columns, row_key=[str(v) for v in columns["row_key"]])
    problems = dd_jobs.check_j12_table(pa.table(wrong_type), 50, start=100, limit=2)
    assert problems[:2] == ["row_key[100] = '100', expected 100", "row_key[101] = '101', expected 101"]
    assert problems[2] == "row_key: 48 more wrong cells"
    short = {name: values[:-1] for name, values in columns.items()}
    assert dd_jobs.check_j12_table(pa.table(short), 50, start=100) == ["49 rows, expected 50"]
    bad_sampler = dict(columns, **{dd_jobs.SAMPLER_COLUMN: ["gold"] * 49 + ["tin"]})
    assert dd_jobs.check_j12_table(pa.table(bad_sampler), 50, start=100) == [
        f"tier: 1 values outside {dd_jobs.SAMPLER_VALUES}, e.g. 'tin'"
    ]


# -- DataDesigner's engine running the job ----------------------------------------------------


def _assert_j12(run, rows: int, buffer_size: int) -> None:
    table = run.dataset
    assert dd_jobs.check_j12_table(table, rows) == []
    assert set(table.column_names) == {c.name for c in J12_COLUMNS} | {dd_jobs.SAMPLER_COLUMN}
    assert run.checksum == dd_jobs.table_checksum(table)
    groups = -(-rows // buffer_size)
    assert run.row_groups == groups
    assert run.calls == {
        **dict.fromkeys(CELL_COLUMNS, rows),
        **dict.fromkeys(FULL_COLUMNS, groups),
    }
    assert run.cell_tasks == 7 * rows


@pytest.mark.usefixtures("data_designer")
def test_data_designer_engine_builds_j12_cell_by_cell() -> None:
    rows, buffer_size = 2000, 700  # groups of 700, 700 and 600
    run = dd_jobs.run_dd_j12(rows, buffer_size, keep_dataset=True)
    _assert_j12(run, rows, buffer_size)
    assert run.tracker.startswith("data_designer.")
    assert run.backend == "datadesigner"


@pytest.mark.usefixtures("data_designer")
def test_data_designer_engine_with_cellfrontier_installed_builds_the_same_j12() -> None:
    from cellfrontier.integrations import data_designer as cf_dd

    rows, buffer_size = 1000, 300  # groups of 300, 300, 300 and 100
    run = dd_jobs.run_dd_j12(rows, buffer_size, cellfrontier_backend=True, keep_dataset=True)
    _assert_j12(run, rows, buffer_size)
    assert run.tracker == f"{cf_dd.__name__}.CompletionTracker"
    assert run.backend == "datadesigner+cellfrontier"
    assert not cf_dd.is_installed()
    expected = dd_jobs.table_checksum(__import__("pyarrow").table(j12_expected_columns(rows)))
    assert run.checksum == expected


@pytest.mark.usefixtures("data_designer")
def test_latency_generators_write_j12_and_respect_the_column_cap() -> None:
    rows, buffer_size, cap = 240, 64, 6
    run = dd_jobs.run_dd_j12(rows, buffer_size, latency=True, column_cap=cap, keep_dataset=True)
    _assert_j12(run, rows, buffer_size)
    assert run.workload == "J12-LAT"
    assert set(run.peak_in_flight_by_column) == set(CELL_COLUMNS)
    assert all(1 <= peak <= cap for peak in run.peak_in_flight_by_column.values())
    assert 1 <= run.peak_in_flight <= cap * len(CELL_COLUMNS)
    assert 1 <= run.peak_row_groups_in_flight <= dd_jobs.DD_DEFAULT_MAX_ACTIVE_ROW_GROUPS
    asked = len(CELL_COLUMNS) * sum(j12_lat_delay(i) for i in range(rows))
    assert run.latency_asked_seconds == pytest.approx(asked)
    assert run.latency_taken_seconds >= 0.99 * asked  # a sleep never ends (much) early
