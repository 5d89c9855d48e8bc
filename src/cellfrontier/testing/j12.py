"""The job workloads J12 and J12-LAT: whole jobs with generators, and their expected output.

J12 is twelve columns whose values are pure functions of the global row index ``i``, so an
output can be checked cell by cell against :func:`j12_expected_row`:

=========  ============  ======================  ========================================
column     strategy      depends on              value
=========  ============  ======================  ========================================
region     full_column                           ``["north", "south", "east", "west"][i % 4]``
price      full_column                           ``1 + (i * 37) % 100``
order_id   full_column                           ``f"o{i:09d}"``
row_key    full_column                           ``i``
h          cell_by_cell  row_key                 ``(row_key * 2654435761) % 1000``
bucket     cell_by_cell  h                       ``h // 100``
code       cell_by_cell  row_key, bucket, h      ``f"{row_key}-{bucket}-{h}"``
label      cell_by_cell  region, bucket          ``f"{region}/{bucket}"``
total      cell_by_cell  price, bucket           ``price * (bucket + 1)``
sig        cell_by_cell  code, h                 ``len(code) + h``
summary    full_column   code, label, total      ``f"{len(code)}:{label}:{total}"`` per row
final      cell_by_cell  summary, sig, order_id  ``f"{summary}|{sig}|{order_id}"``
=========  ============  ======================  ========================================

Row groups of 1,000 rows, at most 3 active, no drops: 7 cell tasks per row plus 5 full-column
tasks per group.  J12-LAT is the same job whose cell generators are ``async`` and first wait
``latency * (0.5 + u)`` seconds (``u`` uniform in [0, 1) from a generator seeded by the row
index: 25-75 ms, mean 50 ms), with at most 256 calls in flight per column and 1,024 in all;
its figure is the cell tasks per second against the 1,024 / 50 ms = 20,480 the caps allow.

J12's generators (``gen_region`` ... ``gen_final``) are the one definition of its values in
code; the table above is the same for people.  The expected output
(:func:`j12_expected_columns`, :func:`j12_expected_row`) is what those generators give when
called directly, column by column in dependency order with no tracker and no runner, so a
runner is checked against what its generators alone produce for each row; the spot values
in the tests pin the generators to the table.

A test of one's own runner, or of a job built on ``cellfrontier.Job``, can run J12 with
:func:`j12_generators` over :func:`build_j12_graph` and check its output with
:func:`check_j12_output`.  :mod:`cellfrontier.simulate.job_drivers` runs these workloads
through the job, a plain loop over the tracker and DataDesigner's engine, side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from cellfrontier.graph import ExecutionGraph
from cellfrontier.testing.workloads import graph_from_columns

__all__ = [
    "CELL_COLUMNS",
    "FULL_COLUMNS",
    "J12",
    "J12_COLUMNS",
    "J12_LAT",
    "JOB_WORKLOADS",
    "LAT_CEILING_PER_SECOND",
    "LAT_COLUMN_CAP",
    "LAT_JOB_CAP",
    "LAT_MEAN_SECONDS",
    "ROOT_COLUMNS",
    "Delayed",
    "J12Column",
    "JobWorkload",
    "build_j12_graph",
    "check_j12_output",
    "j12_differences",
    "j12_expected_columns",
    "j12_expected_row",
    "j12_generators",
    "j12_lat_delay",
    "j12_lat_generators",
    "j12_task_count",
]

REGIONS = ("north", "south", "east", "west")


class J12Column(NamedTuple):
    """One column of J12: its strategy and the columns it reads (unpacks as a plain triple)."""

    name: str
    strategy: str  # "full_column" or "cell_by_cell"
    depends_on: tuple[str, ...]


J12_COLUMNS: tuple[J12Column, ...] = (
    J12Column("region", "full_column", ()),
    J12Column("price", "full_column", ()),
    J12Column("order_id", "full_column", ()),
    J12Column("row_key", "full_column", ()),
    J12Column("h", "cell_by_cell", ("row_key",)),
    J12Column("bucket", "cell_by_cell", ("h",)),
    J12Column("code", "cell_by_cell", ("row_key", "bucket", "h")),
    J12Column("label", "cell_by_cell", ("region", "bucket")),
    J12Column("total", "cell_by_cell", ("price", "bucket")),
    J12Column("sig", "cell_by_cell", ("code", "h")),
    J12Column("summary", "full_column", ("code", "label", "total")),
    J12Column("final", "cell_by_cell", ("summary", "sig", "order_id")),
)
"""In dependency order: every column comes after the columns it reads."""
ROOT_COLUMNS = tuple(c.name for c in J12_COLUMNS if not c.depends_on)
CELL_COLUMNS = tuple(c.name for c in J12_COLUMNS if c.strategy == "cell_by_cell")
FULL_COLUMNS = tuple(c.name for c in J12_COLUMNS if c.strategy == "full_column")

LAT_MEAN_SECONDS = 0.050
LAT_COLUMN_CAP = 256
LAT_JOB_CAP = 1024
LAT_CEILING_PER_SECOND = LAT_JOB_CAP / LAT_MEAN_SECONDS
"""J12-LAT's ceiling: 1,024 calls at once over a mean latency of 50 ms, 20,480 cell tasks/s."""


def build_j12_graph() -> ExecutionGraph:
    """J12's :class:`cellfrontier.ExecutionGraph` (a new one each call: graphs freeze when used)."""
    return graph_from_columns(J12_COLUMNS)


# -- the generators (module-level functions: picklable by reference, stable manifest names) --


def gen_region(batch: Mapping[str, list[Any]]) -> list[str]:
    return [REGIONS[i % 4] for i in batch["_row"]]


def gen_price(batch: Mapping[str, list[Any]]) -> list[int]:
    return [1 + (i * 37) % 100 for i in batch["_row"]]


def gen_order_id(batch: Mapping[str, list[Any]]) -> list[str]:
    return [f"o{i:09d}" for i in batch["_row"]]


def gen_row_key(batch: Mapping[str, list[Any]]) -> list[int]:
    return list(batch["_row"])


def gen_h(row: Mapping[str, Any]) -> int:
    return (row["row_key"] * 2654435761) % 1000


def gen_bucket(row: Mapping[str, Any]) -> int:
    return row["h"] // 100


def gen_code(row: Mapping[str, Any]) -> str:
    return f"{row['row_key']}-{row['bucket']}-{row['h']}"


def gen_label(row: Mapping[str, Any]) -> str:
    return f"{row['region']}/{row['bucket']}"


def gen_total(row: Mapping[str, Any]) -> int:
    return row["price"] * (row["bucket"] + 1)


def gen_sig(row: Mapping[str, Any]) -> int:
    return len(row["code"]) + row["h"]


def gen_summary(batch: Mapping[str, list[Any]]) -> list[str]:
    columns = zip(batch["code"], batch["label"], batch["total"], strict=True)
    return [f"{len(code)}:{label}:{total}" for code, label, total in columns]


def gen_final(row: Mapping[str, Any]) -> str:
    return f"{row['summary']}|{row['sig']}|{row['order_id']}"


def j12_generators() -> dict[str, Callable[..., Any]]:
    """J12's plain generators, one per column."""
    return {
        "region": gen_region,
        "price": gen_price,
        "order_id": gen_order_id,
        "row_key": gen_row_key,
        "h": gen_h,
        "bucket": gen_bucket,
        "code": gen_code,
        "label": gen_label,
        "total": gen_total,
        "sig": gen_sig,
        "summary": gen_summary,
        "final": gen_final,
    }


_MASK64 = (1 << 64) - 1


def latency_factor(i: int) -> float:
    """``0.5 + u`` with ``u`` uniform in [0, 1) from a generator seeded by row *i*.

    The generator is SplitMix64 (one step from seed *i*, top 53 bits as the fraction): the
    same distribution as ``random.Random(i).random()`` at a tenth of the cost, since seeding a
    Mersenne Twister per call (about 4 us) would otherwise count as the runner's CPU per task.
    """
    z = (i + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return 0.5 + (z >> 11) / 9007199254740992.0


def j12_lat_delay(i: int, mean: float = LAT_MEAN_SECONDS) -> float:
    """J12-LAT's latency of every cell of row *i*: ``mean * (0.5 + u)``, 25-75 ms by default."""
    return mean * latency_factor(i)


class Delayed:
    """An async cell generator: waits ``latency * (0.5 + u)`` seconds, then returns *fn(row)*.

    A class rather than a closure so that it pickles (a distributed run ships it to workers).
    """

    def __init__(self, fn: Callable[[Mapping[str, Any]], Any], latency: float) -> None:
        self.fn = fn
        self.latency = latency
        self.__qualname__ = f"Delayed[{fn.__qualname__}]"
        self.__module__ = __name__

    async def __call__(self, row: Mapping[str, Any]) -> Any:
        await asyncio.sleep(j12_lat_delay(row["_row"], self.latency))
        return self.fn(row)


def j12_lat_generators(latency: float = LAT_MEAN_SECONDS) -> dict[str, Callable[..., Any]]:
    """J12-LAT's generators: J12's, with every cell column async and delayed (mean *latency* s)."""
    generators = j12_generators()
    for name in CELL_COLUMNS:
        generators[name] = Delayed(generators[name], latency)
    return generators


def j12_task_count(rows: int, buffer_size: int = 1000) -> int:
    """Tasks of J12 at *rows*: 7 cells per row plus 5 full-column tasks per row group."""
    groups = -(-rows // buffer_size)
    return len(CELL_COLUMNS) * rows + (len(J12_COLUMNS) - len(CELL_COLUMNS)) * groups


def j12_expected_columns(rows: int, start: int = 0) -> dict[str, list[Any]]:
    """Every J12 column for global rows ``start .. start + rows - 1``, column by column.

    The generators called directly, in dependency order, with no tracker and no runner: a
    full-column generator once over all the rows, a cell generator once per row.
    """
    generators = j12_generators()
    index = list(range(start, start + rows))
    columns: dict[str, list[Any]] = {}
    for name, strategy, upstream in J12_COLUMNS:
        fn = generators[name]
        if strategy == "full_column":
            batch: dict[str, list[Any]] = {up: columns[up] for up in upstream}
            batch["_row"] = index
            columns[name] = list(fn(batch))
            continue
        inputs = [(up, columns[up]) for up in upstream]
        values = []
        for k, i in enumerate(index):
            row: dict[str, Any] = {up: column[k] for up, column in inputs}
            row["_row"] = i
            values.append(fn(row))
        columns[name] = values
    return columns


def j12_expected_row(i: int) -> dict[str, Any]:
    """Every column's value at global row *i*."""
    return {name: values[0] for name, values in j12_expected_columns(1, i).items()}


CHECK_CHUNK_ROWS = 50_000
"""Rows of expected values built at a time while checking (bounds the checker's memory)."""


def j12_differences(
    data: Mapping[str, Sequence[Any]],
    rows: int,
    *,
    start: int = 0,
    limit: int = 5,
    expected_columns: Callable[[int, int], Mapping[str, list[Any]]] = j12_expected_columns,
) -> list[str]:
    """How *data* (``{column: values}``, item ``k`` being global row ``start + k``) differs from J12.

    Every J12 column must be present with *rows* values, each equal to the expected one and of
    the same type (an int is not a str).  Lists at most *limit* wrong cells per column, then a
    count of the rest; empty when every cell is right.  Other columns are ignored.
    *expected_columns* ``(rows, start)`` gives the expected values (another workload on J12's
    graph passes its own: J12-LLM).
    """
    missing = [c.name for c in J12_COLUMNS if c.name not in data]
    if missing:
        return [f"missing columns {missing}"]
    for column in J12_COLUMNS:
        if len(data[column.name]) != rows:
            return [f"{len(data[column.name]):,} rows, expected {rows:,}"]
    shown: dict[str, list[str]] = {c.name: [] for c in J12_COLUMNS}
    wrong = dict.fromkeys(shown, 0)
    for first in range(0, rows, CHECK_CHUNK_ROWS):
        count = min(CHECK_CHUNK_ROWS, rows - first)
        for name, want in expected_columns(count, start + first).items():
            got = data[name]
            for k, expected in enumerate(want):
                value = got[first + k]
                if value != expected or type(value) is not type(expected):
                    wrong[name] += 1
                    if wrong[name] <= limit:
                        shown[name].append(f"{name}[{start + first + k}] = {value!r}, expected {expected!r}")
    problems: list[str] = []
    for name, lines in shown.items():
        problems += lines
        if wrong[name] > limit:
            problems.append(f"{name}: {wrong[name] - limit:,} more wrong cells")
    return problems


def check_j12_output(data: Mapping[str, Sequence[Any]], rows: int) -> None:
    """Raise AssertionError unless *data* (``{column: values}`` with ``_row``) is J12 exactly."""
    row_ids = list(data["_row"])
    if row_ids != list(range(rows)):
        missing = sorted(set(range(rows)) - set(row_ids))[:5]
        raise AssertionError(f"rows differ from 0..{rows - 1}: {len(row_ids)} rows, first missing {missing}")
    problems = j12_differences(data, rows)
    if problems:
        raise AssertionError("output differs from J12: " + "; ".join(problems))


# -- workloads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JobWorkload:
    """A job workload: its generators and how the job is configured."""

    name: str
    default_rows: int
    buffer_size: int
    max_active_row_groups: int | None
    concurrency_per_column: int | None
    max_concurrency: int | None
    latency: float | None

    def generators(self, latency: float | None = None) -> dict[str, Callable[..., Any]]:
        if self.latency is None:
            return j12_generators()
        return j12_lat_generators(self.latency if latency is None else latency)

    def concurrency(self) -> dict[str, int]:
        if self.concurrency_per_column is None:
            return {}
        return dict.fromkeys(CELL_COLUMNS, self.concurrency_per_column)

    def ceiling(self, latency: float | None = None) -> float | None:
        """Cell tasks per second the caps allow (J12-LAT), None for J12."""
        if self.latency is None or self.max_concurrency is None:
            return None
        return self.max_concurrency / (self.latency if latency is None else latency)


J12 = JobWorkload("J12", 20_000, 1000, 3, None, None, None)
J12_LAT = JobWorkload("J12-LAT", 200_000, 1000, None, LAT_COLUMN_CAP, LAT_JOB_CAP, LAT_MEAN_SECONDS)
"""200,000 rows take about 70 s at the ceiling: the utilization is measured over >= 60 s."""
JOB_WORKLOADS: dict[str, JobWorkload] = {"J12": J12, "J12-LAT": J12_LAT}
