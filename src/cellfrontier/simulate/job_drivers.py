"""Running the job workloads J12 and J12-LAT (:mod:`cellfrontier.testing.j12`) by three backends.

``job`` is :class:`cellfrontier.Job`; ``floor`` is the plain sequential loop over the tracker
that calls the same generators, stores the values and writes the same Parquet files: what a
runner cannot beat by much, and is held to; ``datadesigner`` is NVIDIA DataDesigner's own
engine running the same job (:mod:`cellfrontier.simulate.datadesigner_jobs`, imported only
when asked for).  :func:`run_job_workload` is the one call the CLI and the benchmarks make.
"""

from __future__ import annotations

import contextlib
import gc
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellfrontier import CompletionTracker, Job, RowGroupPlan
from cellfrontier.job.output import OutputLayout, read_tables, require_pyarrow, table_from_columns
from cellfrontier.simulate.datadesigner_jobs import run_dd_j12
from cellfrontier.simulate.reporting import PeakRss, Throughput
from cellfrontier.testing.j12 import (
    CELL_COLUMNS,
    J12_COLUMNS,
    JOB_WORKLOADS,
    JobWorkload,
    build_j12_graph,
    check_j12_output,
    j12_generators,
)

__all__ = ["JOB_BACKENDS", "JobFigures", "run_floor", "run_job_workload"]

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
                assert target is not None
                layout = OutputLayout(target)
                written = layout.written_groups(0, 1 << 62)
                pa, _ = require_pyarrow("checking the floor's output")
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
