"""``cellfrontier status DIR [--json]``: what a job's output directory holds, read without changing it.

The reading is :func:`cellfrontier.job.store.status_reader.read_job_status` (manifest, claims,
checkpoint headers, the data directory's listing: no generator's module is imported); this
module only prints its :class:`~cellfrontier.job.status.JobStatus`, as text or as JSON.
Exit status: 0, or 1 when DIR holds no job.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cellfrontier.job import OutputDirError
from cellfrontier.job.progress import format_clock
from cellfrontier.job.status import JobStatus, ShardStatus, format_duration
from cellfrontier.job.store.status_reader import read_job_status

__all__ = ["add_parser", "format_status", "status_command"]

STRATEGY = {"cell_by_cell": "cell", "full_column": "full"}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show what a job's output directory holds",
        description=(
            "Read a job's output_dir without changing it and without importing its generators: the "
            "job, rows done and dropped, row groups written, active and pending, each shard's state "
            "(live, stale, finished, not started) and newest checkpoint, the first errors, usage "
            "where recorded, and an ETA from the checkpoints' progress."
        ),
    )
    parser.add_argument("output_dir", metavar="DIR", help="the job's output_dir")
    parser.add_argument("--json", action="store_true", help="print the status as one JSON object")
    parser.set_defaults(handler=status_command)


def status_command(args: argparse.Namespace) -> int:
    try:
        status = read_job_status(args.output_dir)
    except OutputDirError as exc:
        print(f"cellfrontier status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
    else:
        print(format_status(status), end="")
    return 0


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{format_duration(seconds)} ago"


def _shard_line(shard: ShardStatus) -> list[str]:
    groups = shard.row_groups
    return [
        f"[{groups.start}, {groups.stop})",
        f"{shard.state} ({shard.detail})",
        "-" if shard.epoch is None else str(shard.epoch),
        _age(shard.checkpoint_age),
        f"{shard.rows_done:,}/{shard.rows_total:,}",
        f"{shard.rows_dropped:,}",
        f"{shard.groups_written}/{shard.groups_active}/{shard.groups_pending}",
    ]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
    return ["  " + line.rstrip() for line in lines]


def format_status(status: JobStatus) -> str:
    """The status as text: the job, the totals, the first errors, usage, then one line per shard."""
    job = status.job
    columns = ", ".join(f"{c.name} ({STRATEGY.get(c.strategy, c.strategy)})" for c in job.columns)
    lines = [
        f"{status.output_dir}: a cellfrontier job, {status.state}",
        f"  job: {job.num_records:,} rows in {job.num_row_groups:,} row groups of {job.buffer_size:,}; "
        f"fingerprint {job.fingerprint}",
        f"  columns: {columns}",
        f"  rows: {status.rows_done:,} done, {status.rows_dropped:,} dropped of {job.num_records:,}",
        f"  row groups: {status.groups_written:,} written, {status.groups_active:,} active, "
        f"{status.groups_pending:,} pending",
    ]
    rate, eta = status.tasks_per_second, status.eta_seconds
    if status.state != "finished":
        if rate is None or eta is None:
            lines.append("  ETA: unknown (no live shard has checkpointed progress)")
        else:
            pace = f"{rate:,.0f} tasks/s, the live shards' pace at their checkpoints"
            lines.append(f"  ETA: {format_clock(eta)} ({pace})")
    if status.errors:
        lines.append(f"  errors: {status.errors:,} failed calls; the first:")
        for sample in status.error_samples:
            lines.append(f"    {sample}" + (f"  [at {sample.origin}]" if sample.origin else ""))
    usage = status.usage
    if usage:
        lines.append("  usage:")
        for column, counts in sorted(usage.items()):
            figures = ", ".join(f"{name} {value:,}" for name, value in sorted(counts.items()))
            lines.append(f"    {column}: {figures}")
    header = ["row groups", "state", "epoch", "checkpoint", "rows done", "dropped", "written/active/pending"]
    lines += ["shards:", *_table([header, *(_shard_line(shard) for shard in status.shards)])]
    return "\n".join(lines) + "\n"
