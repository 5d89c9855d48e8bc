"""Running the workload J12-LLM by one backend against the fake endpoint, and what it measures.

Backends (one fake endpoint each, started for the run with the same settings, on 127.0.0.1):

- ``llm``: :class:`cellfrontier.Job` with ``cellfrontier.llm`` model columns (the product);
- ``openai``, ``openai-aiohttp``, ``httpx``, ``aiohttp``: the same ``Job``, its cell columns plain
  ``async def`` generators over that client (:mod:`cellfrontier.simulate.llm_clients`);
- ``datadesigner``: DataDesigner's own engine and LLM text columns, in a subprocess with its
  telemetry off and every connection outside 127.0.0.1 refused
  (:mod:`cellfrontier.simulate.datadesigner_llm`).

Every backend sends the same prompts, so every output is J12-LLM's, checked cell by cell after
the timing (:func:`cellfrontier.testing.j12_llm.check_j12_llm_output`).  Figures
(:class:`LlmJobFigures`): calls per second and their share of the ceiling the job's cap allows
(1,024 calls over the mean latency), CPU per call of the client (this process and every
process it started and waited for: the worker processes of ``workers=N``, the DataDesigner
subprocess; every thread), the endpoint's own CPU per call (it shares the machine), and the
client's peak RSS growth.
"""

from __future__ import annotations

import contextlib
import gc
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellfrontier.simulate.reporting import PeakRss
from cellfrontier.testing.j12 import build_j12_graph
from cellfrontier.testing.j12_llm import check_j12_llm_output, j12_llm_ceiling, j12_llm_job_options

__all__ = ["LLM_BACKENDS", "LlmJobFigures", "run_j12_llm"]

LLM_BACKENDS = ("llm", "openai", "openai-aiohttp", "httpx", "aiohttp", "datadesigner")
"""In the order ``--compare`` runs them."""


@dataclass(frozen=True)
class LlmJobFigures:
    """One run of J12-LLM by one backend."""

    backend: str
    rows: int
    calls: int
    """Model calls the endpoint answered during the run."""
    seconds: float
    cpu_seconds: float
    """CPU time of the client: this process and the processes it waited for, every thread."""
    endpoint_cpu_seconds: float
    ceiling: float
    latency_scale: float
    workers: int | None
    records: int
    checked: bool
    peak_rss_growth: int | None = None
    """Bytes this process's peak resident set rose over the run (None: the run was elsewhere)."""

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    @property
    def share_of_ceiling(self) -> float:
        return self.calls_per_second / self.ceiling

    @property
    def cpu_us_per_call(self) -> float:
        return self.cpu_seconds * 1e6 / self.calls if self.calls else 0.0

    @property
    def endpoint_cpu_us_per_call(self) -> float:
        return self.endpoint_cpu_seconds * 1e6 / self.calls if self.calls else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: getattr(self, k) for k in self.__dataclass_fields__},
            "calls_per_second": self.calls_per_second,
            "share_of_ceiling": self.share_of_ceiling,
            "cpu_us_per_call": self.cpu_us_per_call,
            "endpoint_cpu_us_per_call": self.endpoint_cpu_us_per_call,
        }


def cpu_of_this_process_tree() -> float:
    """CPU seconds of this process and of the children it waited for (every thread)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _generators(backend: str, base_url: str) -> dict[str, Any]:
    if backend == "llm":
        from cellfrontier.testing.j12_llm import j12_llm_generators

        return j12_llm_generators(base_url)
    from cellfrontier.simulate.llm_clients import client_generators

    return client_generators(backend, base_url)


@contextlib.contextmanager
def _endpoint(latency_scale: float, lifetime: float) -> Iterator[Any]:
    from cellfrontier.testing.fake_endpoint import FakeEndpoint

    with FakeEndpoint(latency_scale=latency_scale, max_lifetime=lifetime) as endpoint:
        yield endpoint


def run_j12_llm(
    rows: int,
    backend: str = "llm",
    *,
    latency_scale: float = 1.0,
    workers: int | None = None,
    check: bool = True,
    output_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    lifetime: float = 7_200.0,
) -> LlmJobFigures:
    """Run J12-LLM at *rows* by *backend* against a fake endpoint at *latency_scale* (module doc).

    Writes Parquet under *output_dir* (kept), else under a temporary directory.  *workers*
    runs the job on that many local worker processes (``Job.run(workers=N)``; not for
    ``datadesigner``).  *progress* is called now and then with the tasks (DataDesigner: calls)
    done so far.  With *check* the output is compared cell by cell after the timing.
    """
    if backend not in LLM_BACKENDS:
        raise KeyError(f"unknown J12-LLM backend {backend!r}; known: {', '.join(LLM_BACKENDS)}")
    if backend == "datadesigner" and workers is not None:
        raise ValueError("--workers runs cellfrontier's Job on worker processes; DataDesigner runs in one")
    with contextlib.ExitStack() as stack:
        target = (
            Path(output_dir)
            if output_dir is not None
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cellfrontier-llm-"))) / "out"
        )
        endpoint = stack.enter_context(_endpoint(latency_scale, lifetime))
        if backend == "datadesigner":
            from cellfrontier.simulate.datadesigner_llm import run_dd_j12_llm_subprocess

            before = endpoint.stats()
            run = run_dd_j12_llm_subprocess(endpoint.base_url, rows, target)
            after = endpoint.stats()
            seconds, cpu, records, rss = (
                run["seconds"],
                run["cpu_seconds"],
                run["records"],
                run["peak_rss_growth"],
            )
            data = run_output(run["output"], rows) if check else None
        else:
            from cellfrontier import Job
            from cellfrontier.job.output import require_pyarrow

            require_pyarrow("writing Parquet")  # imported outside the timing
            options = j12_llm_job_options()
            if progress is not None:
                report = progress
                options["progress"] = lambda snapshot: report(snapshot.tasks)
            job = Job(
                build_j12_graph(),
                _generators(backend, endpoint.base_url),
                rows,
                output_dir=target,
                progress_bar=False,
                **options,
            )
            gc.collect()
            before = endpoint.stats()
            with PeakRss() as peak:
                started, cpu_started = time.perf_counter(), cpu_of_this_process_tree()
                result = job.run(workers=workers) if workers is not None else job.run()
                seconds = time.perf_counter() - started
                cpu = cpu_of_this_process_tree() - cpu_started
            after = endpoint.stats()
            records, rss = result.records, None if workers is not None else peak.growth
            data = result.to_pydict(row_index=True) if check else None
        if data is not None:
            check_j12_llm_output(data, rows)
    return LlmJobFigures(
        backend=backend,
        rows=rows,
        calls=after.answered - before.answered,
        seconds=seconds,
        cpu_seconds=cpu,
        endpoint_cpu_seconds=after.cpu_seconds - before.cpu_seconds,
        ceiling=j12_llm_ceiling(latency_scale),
        latency_scale=latency_scale,
        workers=workers,
        records=records,
        checked=check,
        peak_rss_growth=rss,
    )


def run_output(directory: str, rows: int) -> dict[str, list[Any]]:
    """DataDesigner's output (its row-group files, in order) as ``{column: values}`` with ``_row``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(Path(directory).glob("batch_*.parquet"), key=lambda p: int(p.stem.split("_", 1)[1]))
    tables = [pq.read_table(path) for path in files]
    if not tables:
        raise AssertionError(f"DataDesigner wrote no row-group file under {directory}")
    order = tables[0].column_names
    table = pa.concat_tables([t.select(order) for t in tables])
    data = {name: table.column(name).to_pylist() for name in table.column_names}
    data["_row"] = list(range(len(table)))
    return data
