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

Two backends run them here: ``job`` (:class:`cellfrontier.Job`) and ``floor``, the plain
sequential loop over the tracker that calls the same generators, stores the values and writes
the same Parquet files: what a runner cannot beat by much, and is held to.
``run_job_workload`` is the one call the CLI and the benchmarks make.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "J12",
    "J12_COLUMNS",
    "J12_LAT",
    "JOB_BACKENDS",
    "JOB_WORKLOADS",
    "Delayed",
    "JobFigures",
    "JobWorkload",
    "build_j12_graph",
    "check_j12_output",
    "j12_expected_row",
    "j12_generators",
    "j12_lat_generators",
    "j12_task_count",
    "run_floor",
    "run_job_workload",
]

REGIONS = ("north", "south", "east", "west")

J12_COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("region", "full_column", ()),
    ("price", "full_column", ()),
    ("order_id", "full_column", ()),
    ("row_key", "full_column", ()),
    ("h", "cell_by_cell", ("row_key",)),
    ("bucket", "cell_by_cell", ("h",)),
    ("code", "cell_by_cell", ("row_key", "bucket", "h")),
    ("label", "cell_by_cell", ("region", "bucket")),
    ("total", "cell_by_cell", ("price", "bucket")),
    ("sig", "cell_by_cell", ("code", "h")),
    ("summary", "full_column", ("code", "label", "total")),
    ("final", "cell_by_cell", ("summary", "sig", "order_id")),
)
CELL_COLUMNS = tuple(name for name, strategy, _ in J12_COLUMNS if strategy == "cell_by_cell")


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


def j12_expected_row(i: int) -> dict[str, Any]:
    """Every column's value at global row *i*, straight from the formulas."""
    h = (i * 2654435761) % 1000
    bucket = h // 100
    code = f"{i}-{bucket}-{h}"
    label = f"{REGIONS[i % 4]}/{bucket}"
    price = 1 + (i * 37) % 100
    total = price * (bucket + 1)
    summary = f"{len(code)}:{label}:{total}"
    sig = len(code) + h
    order_id = f"o{i:09d}"
    return {
        "region": REGIONS[i % 4],
        "price": price,
        "order_id": order_id,
        "row_key": i,
        "h": h,
        "bucket": bucket,
        "code": code,
        "label": label,
        "total": total,
        "sig": sig,
        "summary": summary,
        "final": f"{summary}|{sig}|{order_id}",
    }


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
        await asyncio.sleep(self.latency * latency_factor(row["_row"]))
        return self.fn(row)


def j12_lat_generators(latency: float = 0.050) -> dict[str, Callable[..., Any]]:
    """J12-LAT's generators: J12's, with every cell column async and delayed (mean *latency* s)."""
    generators = j12_generators()
    for name in CELL_COLUMNS:
        generators[name] = Delayed(generators[name], latency)
    return generators


def j12_task_count(rows: int, buffer_size: int = 1000) -> int:
    """Tasks of J12 at *rows*: 7 cells per row plus 5 full-column tasks per row group."""
    groups = -(-rows // buffer_size)
    return len(CELL_COLUMNS) * rows + (len(J12_COLUMNS) - len(CELL_COLUMNS)) * groups


def check_j12_output(data: Mapping[str, list[Any]], rows: int) -> None:
    """Raise AssertionError unless *data* (``{column: values}`` with ``_row``) is J12 exactly."""
    row_ids = list(data["_row"])
    if row_ids != list(range(rows)):
        missing = sorted(set(range(rows)) - set(row_ids))[:5]
        raise AssertionError(f"rows differ from 0..{rows - 1}: {len(row_ids)} rows, first missing {missing}")
    columns = [(name, data[name]) for name, _, _ in J12_COLUMNS]
    for i in range(rows):
        expected = j12_expected_row(i)
        for name, values in columns:
            value = values[i]
            if value != expected[name] or type(value) is not type(expected[name]):
                raise AssertionError(f"column {name!r} row {i}: {value!r} != {expected[name]!r}")


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
J12_LAT = JobWorkload("J12-LAT", 200_000, 1000, None, 256, 1024, 0.050)
"""200,000 rows take about 70 s at the ceiling: the utilization is measured over >= 60 s."""
JOB_WORKLOADS: dict[str, JobWorkload] = {"J12": J12, "J12-LAT": J12_LAT}
JOB_BACKENDS = ("job", "floor")


@dataclass(frozen=True)
class JobFigures:
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

    @property
    def us_per_task(self) -> float:
        return self.seconds * 1e6 / self.tasks if self.tasks else 0.0

    @property
    def cpu_us_per_task(self) -> float:
        return self.cpu_seconds * 1e6 / self.tasks if self.tasks else 0.0

    @property
    def us_per_row(self) -> float:
        return self.seconds * 1e6 / self.rows if self.rows else 0.0

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
            "cpu_us_per_task": self.cpu_us_per_task,
            "us_per_row": self.us_per_row,
            "cell_tasks_per_second": self.cell_tasks_per_second,
            "utilization": self.utilization,
        }


def run_floor(
    rows: int, output_dir: str | Path | None, *, buffer_size: int = 1000, window: int = 3
) -> tuple[int, dict[str, list[Any]] | None]:
    """The floor: a plain sequential loop over the tracker calling J12's generators.

    Bulk API (a column's ready rows of a group at once), values in per-group lists, a row's
    mapping built with a dict comprehension, each finished group written as one Parquet file
    (same layout and columns as the job's, written plainly: no temporary file, no fsync, the
    least a loop can do) when *output_dir* is given, else kept in memory.  Returns the tasks
    processed and, without *output_dir*, the output.
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
    client: Any = None,
    shards: int | None = None,
    **job_options: Any,
) -> JobFigures:
    """Run job workload *name* (``J12`` or ``J12-LAT``) with *backend* and return its figures.

    Writes Parquet under *output_dir*, or under a temporary directory removed afterwards when
    *use_temp_dir* (the default), or keeps the output in memory (``use_temp_dir=False``).
    With *check*, the output is compared cell by cell with the formulas after the timing.
    *latency* scales J12-LAT's delays (tests use milliseconds); *job_options* go to ``Job``.
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
    with tempfile.TemporaryDirectory(prefix="cellfrontier-job-") as temp:
        target = (
            Path(output_dir) if output_dir is not None else (Path(temp) / "out" if use_temp_dir else None)
        )
        if target is not None:  # import outside the timing: the first import of pyarrow costs ~0.2 s
            from cellfrontier.job.output import require_pyarrow

            require_pyarrow("writing Parquet")
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        if backend == "floor":
            tasks, memory = run_floor(rows, target, buffer_size=workload.buffer_size)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            records, dropped, peak = rows, 0, workload.max_active_row_groups
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
    )
