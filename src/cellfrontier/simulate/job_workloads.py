"""The job workloads J12 and J12-LAT: whole jobs with generators, and how to run them.

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

Three backends run them: ``job`` (:class:`cellfrontier.Job`); ``floor``, the plain sequential
loop over the tracker that calls the same generators, stores the values and writes the same
Parquet files: what a runner cannot beat by much, and is held to; and ``datadesigner``, NVIDIA
DataDesigner's own engine running the same job
(:mod:`cellfrontier.simulate.datadesigner_jobs`, imported only when asked for).
``run_job_workload`` is the one call the CLI and the benchmarks make.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from cellfrontier.simulate.reporting import PeakRss, Throughput

__all__ = [
    "CELL_COLUMNS",
    "FULL_COLUMNS",
    "J12",
    "J12_COLUMNS",
    "J12_LAT",
    "JOB_BACKENDS",
    "JOB_WORKLOADS",
    "LAT_CEILING_PER_SECOND",
    "LAT_COLUMN_CAP",
    "LAT_JOB_CAP",
    "LAT_MEAN_SECONDS",
    "ROOT_COLUMNS",
    "Delayed",
    "J12Column",
    "JobFigures",
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
    "run_floor",
    "run_job_workload",
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


def build_j12_graph() -> Any:
    """J12's :class:`cellfrontier.ExecutionGraph` (a new one each call: graphs freeze when used)."""
    from cellfrontier import ExecutionGraph

    graph = ExecutionGraph()
    for name, strategy, _ in J12_COLUMNS:
        graph.add_column(name, strategy)
    for name, _, upstream in J12_COLUMNS:
        for up in upstream:
            graph.add_edge(up, name)
    return graph


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
    data: Mapping[str, Sequence[Any]], rows: int, *, start: int = 0, limit: int = 5
) -> list[str]:
    """How *data* (``{column: values}``, item ``k`` being global row ``start + k``) differs from J12.

    Every J12 column must be present with *rows* values, each equal to the expected one and of
    the same type (an int is not a str).  Lists at most *limit* wrong cells per column, then a
    count of the rest; empty when every cell is right.  Other columns are ignored.
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
        for name, want in j12_expected_columns(count, start + first).items():
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
JOB_BACKENDS = ("job", "floor", "datadesigner")
"""``datadesigner`` needs NVIDIA DataDesigner (the ``datadesigner`` extra)."""


@dataclass(frozen=True)
class JobFigures(Throughput):
    """One run of a job workload by one backend."""

    workload: str
    backend: str
    rows: int
    tasks: int
    cell_tasks: int
    seconds: float
    cpu_seconds: float
    records: int
    dropped: int
    peak_active_row_groups: int | None
    ceiling: float | None
    checked: bool
    peak_rss_growth: int | None = None
    """Bytes the process's peak resident set rose over the run (when measured)."""

    @property
    def cpu_us_per_task(self) -> float:
        return self.cpu_seconds * 1e6 / self.tasks if self.tasks else 0.0

    @property
    def us_per_row(self) -> float:
        return self.seconds * 1e6 / self.rows if self.rows else 0.0

    @property
    def cpu_us_per_row(self) -> float:
        return self.cpu_seconds * 1e6 / self.rows if self.rows else 0.0

    @property
    def cell_tasks_per_second(self) -> float:
        return self.cell_tasks / self.seconds if self.seconds > 0 else 0.0

    @property
    def utilization(self) -> float | None:
        """Cell tasks per second over the ceiling the caps allow (J12-LAT)."""
        return None if not self.ceiling else self.cell_tasks_per_second / self.ceiling

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: getattr(self, k) for k in self.__dataclass_fields__},
            "us_per_task": self.us_per_task,
            "tasks_per_second": self.tasks_per_second,
            "cpu_us_per_task": self.cpu_us_per_task,
            "us_per_row": self.us_per_row,
            "cpu_us_per_row": self.cpu_us_per_row,
            "cell_tasks_per_second": self.cell_tasks_per_second,
            "utilization": self.utilization,
        }


def run_floor(
    rows: int,
    output_dir: str | Path | None,
    *,
    buffer_size: int = 1000,
    window: int = 3,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, dict[str, list[Any]] | None]:
    """The floor: a plain sequential loop over the tracker calling J12's generators.

    Bulk API (a column's ready rows of a group at once), values in per-group lists, a row's
    mapping built with a dict comprehension, each finished group written as one Parquet file
    (same layout and columns as the job's, written plainly: no temporary file, no fsync, the
    least a loop can do) when *output_dir* is given, else kept in memory.  Returns the tasks
    processed and, without *output_dir*, the output.  *progress*, if given, is called with the
    tasks processed so far after each pass over the active groups.
    """
    from cellfrontier import CompletionTracker, RowGroupPlan
    from cellfrontier.job.output import OutputLayout, require_pyarrow, table_from_columns

    graph = build_j12_graph()
    generators = j12_generators()
    upstream = {name: ups for name, _, ups in J12_COLUMNS}
    is_batch = {name: strategy == "full_column" for name, strategy, _ in J12_COLUMNS}
    names = [name for name, _, _ in J12_COLUMNS]
    plan = RowGroupPlan.uniform(rows, buffer_size)
    tracker = CompletionTracker.with_graph(graph, plan)
    layout = OutputLayout(Path(output_dir)) if output_dir is not None else None
    if layout is not None:
        layout.create()
    memory: dict[str, list[Any]] | None = None if layout is not None else {n: [] for n in ["_row", *names]}
    pending = list(plan)[::-1]
    active: dict[int, tuple[int, dict[str, list[Any]]]] = {}
    tasks = 0
    while pending or active:
        while pending and len(active) < window:
            rg, size = pending.pop()
            active[rg] = (size, {name: [None] * size for name in names})
            tracker.add_root_tasks(rg, size)
        for rg in list(active):
            size, buffers = active[rg]
            base = rg * buffer_size
            while True:
                ready = tracker.ready_columns(rg)
                if not ready:
                    break
                for name in ready:
                    fn, out = generators[name], buffers[name]
                    if is_batch[name]:
                        tracker.pop_ready_batch(name, rg)
                        batch: dict[str, Any] = {up: list(buffers[up]) for up in upstream[name]}
                        batch["_row"] = list(range(base, base + size))
                        out[:] = fn(batch)
                        tracker.mark_row_range_complete(name, rg, size)
                        tasks += 1
                    else:
                        ready_rows = tracker.ready_rows(name, rg, take=True)
                        inputs = [(up, buffers[up]) for up in upstream[name]]
                        for r in ready_rows.tolist():
                            row = {up: values[r] for up, values in inputs}
                            row["_row"] = base + r
                            out[r] = fn(row)
                        tracker.mark_cells_complete(name, rg, ready_rows)
                        tasks += len(ready_rows)
            if tracker.is_row_group_complete(rg, size, names):
                buffers["_row"] = list(range(base, base + size))
                if layout is not None:
                    _, pq = require_pyarrow("the floor")
                    pq.write_table(table_from_columns(["_row", *names], buffers), layout.part_path(rg))
                else:
                    assert memory is not None
                    for name, values in buffers.items():
                        memory[name].extend(values)
                tracker.compact_row_group(rg)
                del active[rg]
        if progress is not None:
            progress(tasks)
    return tasks, memory


def run_job_workload(
    name: str,
    rows: int | None = None,
    *,
    backend: str = "job",
    output_dir: str | Path | None = None,
    use_temp_dir: bool = True,
    latency: float | None = None,
    check: bool = True,
    progress_bar: bool | None = False,
    task_progress: Callable[[int], None] | None = None,
    measure_rss: bool = False,
    client: Any = None,
    shards: int | None = None,
    **job_options: Any,
) -> JobFigures:
    """Run job workload *name* (``J12`` or ``J12-LAT``) with *backend* and return its figures.

    Writes Parquet under *output_dir*, or under a temporary directory removed afterwards when
    *use_temp_dir* (the default), or keeps the output in memory (``use_temp_dir=False``; not
    for ``datadesigner``, whose engine always writes files).
    With *check*, the output is compared cell by cell with the formulas after the timing.
    *latency* scales J12-LAT's delays (tests use milliseconds); *job_options* go to ``Job``.
    *task_progress* is called now and then with the tasks done so far (a progress display);
    *measure_rss* records the peak RSS growth over the run (``datadesigner`` always does).
    With *client* (a ``distributed.Client``) the job runs on that Dask cluster, cut into
    *shards* (the default: four per worker thread); its output directory must then be one
    the workers can reach (a temporary directory on this machine is, for a local cluster).
    """
    workload = JOB_WORKLOADS.get(name.upper())
    if workload is None:
        raise KeyError(f"unknown job workload {name!r}; known: {', '.join(JOB_WORKLOADS)}")
    if backend not in JOB_BACKENDS:
        raise KeyError(f"unknown job backend {backend!r}; known: {', '.join(JOB_BACKENDS)}")
    rows = workload.default_rows if rows is None else rows
    if backend == "floor" and workload.latency is not None:
        raise ValueError("the floor backend runs J12 only (it calls plain generators in one loop)")
    if backend == "datadesigner":
        return _run_on_data_designer(workload, rows, output_dir, latency, check, task_progress)
    with tempfile.TemporaryDirectory(prefix="cellfrontier-job-") as temp:
        target = (
            Path(output_dir) if output_dir is not None else (Path(temp) / "out" if use_temp_dir else None)
        )
        if target is not None:  # import outside the timing: the first import of pyarrow costs ~0.2 s
            from cellfrontier.job.output import require_pyarrow

            require_pyarrow("writing Parquet")
        gc.collect()
        with contextlib.ExitStack() as measuring:
            rss = measuring.enter_context(PeakRss()) if measure_rss else None
            started, cpu_started = time.perf_counter(), time.process_time()
            if backend == "floor":
                window = workload.max_active_row_groups or 1
                tasks, memory = run_floor(
                    rows, target, buffer_size=workload.buffer_size, window=window, progress=task_progress
                )
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                groups = -(-rows // workload.buffer_size)
                records, dropped, peak = rows, 0, min(window, groups)
                output: Any = memory
            else:
                from cellfrontier import Job

                options: dict[str, Any] = {
                    "buffer_size": workload.buffer_size,
                    "max_active_row_groups": workload.max_active_row_groups,
                    "concurrency": workload.concurrency(),
                    "max_concurrency": workload.max_concurrency,
                    "output_dir": target,
                    "progress_bar": progress_bar,
                }
                if task_progress is not None:
                    report = task_progress
                    options["progress"] = lambda snapshot: report(snapshot.tasks)
                options.update(job_options)
                job = Job(build_j12_graph(), workload.generators(latency), rows, **options)
                result = job.run(client=client, shards=shards) if client is not None else job.run()
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                if client is not None:  # the workers' CPU (the shards' own), not this client's
                    cpu = result.cpu_seconds
                tasks, records, dropped, peak = (
                    result.tasks,
                    result.records,
                    result.dropped,
                    result.peak_active_row_groups,
                )
                output = result
        if check:
            if backend == "floor" and output is None:
                from cellfrontier.job.output import OutputLayout, read_tables

                assert target is not None
                layout = OutputLayout(target)
                written = layout.written_groups(0, 1 << 62)
                import pyarrow as pa

                table = pa.concat_tables(read_tables(written[rg] for rg in sorted(written)))
                data = {n: table.column(n).to_pylist() for n in table.column_names}
            elif backend == "floor":
                data = output
            else:
                data = output.to_pydict(row_index=True)
            check_j12_output(data, rows)
    return JobFigures(
        workload=workload.name,
        backend=backend,
        rows=rows,
        tasks=tasks,
        cell_tasks=len(CELL_COLUMNS) * rows,
        seconds=seconds,
        cpu_seconds=cpu,
        records=records,
        dropped=dropped,
        peak_active_row_groups=peak,
        ceiling=workload.ceiling(latency),
        checked=check,
        peak_rss_growth=None if rss is None else rss.growth,
    )


def _run_on_data_designer(
    workload: JobWorkload,
    rows: int,
    output_dir: str | Path | None,
    latency: float | None,
    check: bool,
    task_progress: Callable[[int], None] | None,
) -> JobFigures:
    """The workload through DataDesigner's engine; raises ``DataDesignerUnavailable`` without it.

    Its task count has one more full-column task per row group (the sampler column the engine
    needs to start a group); its peak active row groups are measured only with latency (the
    most groups with a call in flight), None otherwise.
    """
    from cellfrontier.simulate.datadesigner_jobs import run_dd_j12

    with_latency = workload.latency is not None
    run = run_dd_j12(
        rows,
        workload.buffer_size,
        latency=with_latency,
        mean_latency=latency,
        verify=check,
        artifact_dir=output_dir,
        progress=task_progress,
    )
    return JobFigures(
        workload=workload.name,
        backend="datadesigner",
        rows=rows,
        tasks=run.tasks,
        cell_tasks=run.cell_tasks,
        seconds=run.seconds,
        cpu_seconds=run.cpu_seconds,
        records=rows,  # run_dd_j12 refuses a run that wrote any other number
        dropped=0,
        peak_active_row_groups=run.peak_row_groups_in_flight if with_latency else None,
        ceiling=workload.ceiling(latency),
        checked=check,
        peak_rss_growth=run.peak_rss_growth,
    )
