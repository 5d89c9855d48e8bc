"""Helpers for the rerun tests: J12 whose generators log every cell they compute, pinned or edited.

Every generator logs one line per cell it computes (``column global_row``), full-column ones
included (one line per row of their batch), through ``job_support.CallLog``: so a test counts
calls per cell, across processes and kills, and sees exactly which cells a rerun computed.
Columns are pinned with ``cellfrontier.generator(..., version=...)``, so an *edit* is a
version bump (the values stay J12's, so any output is checked against J12's formulas) or one
of the variants below (other values, checked against a fresh run).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from job_support import CallLog, LoggedCell, checkpointed_cells

from cellfrontier import ExecutionGraph, Job, generator
from cellfrontier.testing.j12 import J12_COLUMNS, build_j12_graph, j12_generators

CELL = {c.name for c in J12_COLUMNS if c.strategy == "cell_by_cell"}
NAMES = [c.name for c in J12_COLUMNS]


class LoggedRows:
    """A full-column generator that logs ``column row`` for every row of its batch."""

    def __init__(self, name: str, fn: Callable[[Mapping[str, Any]], Any], log: CallLog) -> None:
        self.name, self.fn, self.log = name, fn, log

    def __call__(self, batch: Mapping[str, Any]) -> Any:
        for row in batch["_row"]:
            self.log.record(self.name, row)
        return self.fn(batch)


class FailingCell(LoggedCell):
    """A logged cell generator that raises on rows where ``(row * 7 + salt) % modulus == 0``."""

    def __init__(self, name: str, fn: Any, log: CallLog, salt: int, modulus: int = 11) -> None:
        super().__init__(name, fn, log)
        self.salt, self.modulus = salt, modulus

    def __call__(self, row: Mapping[str, Any]) -> Any:
        self.log.record(self.name, row["_row"])
        if (row["_row"] * 7 + self.salt) % self.modulus == 0:
            raise ValueError(f"{self.name} fails at row {row['_row']}")
        return self.fn(row)


def final_hash(row: Mapping[str, Any]) -> str:
    """``final`` edited: another separator."""
    return f"{row['summary']}#{row['sig']}#{row['order_id']}"


def extra_from_h(row: Mapping[str, Any]) -> int:
    """An added column: reads ``h``."""
    return row["h"] * 3 + 1


def pinned_j12(
    log: CallLog,
    versions: Mapping[str, str] | None = None,
    *,
    variants: Mapping[str, Callable[..., Any]] | None = None,
    failing: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """J12's generators, logged and pinned (``version="1"`` unless *versions* says otherwise).

    *variants* replaces a column's function; *failing* makes a cell column fail on the rows of
    its salt (the salt is part of the pinned version, as the values it decides).
    """
    versions = dict(versions or {})
    variants = dict(variants or {})
    failing = dict(failing or {})
    out: dict[str, Any] = {}
    for name, fn in j12_generators().items():
        fn = variants.get(name, fn)
        version = versions.get(name, "1")
        if name in failing:
            logged: Any = FailingCell(name, fn, log, failing[name])
            version = f"{version}-fails{failing[name]}"
        elif name in CELL:
            logged = LoggedCell(name, fn, log)
        else:
            logged = LoggedRows(name, fn, log)
        out[name] = generator(logged, version=version)
    return out


def j12_job(
    out: Path | None,
    rows: int,
    generators: Mapping[str, Any],
    *,
    graph: ExecutionGraph | None = None,
    **options: Any,
) -> Job:
    """J12 (or *graph*) over *generators*, no progress shown, failures dropping rows without stopping."""
    settings: dict[str, Any] = {
        "buffer_size": 1000,
        "max_error_rate": 1.0,
        "progress_bar": False,
        **options,
    }
    return Job(graph or build_j12_graph(), generators, rows, output_dir=out, **settings)


def run_calls(log_path: Path) -> Counter[tuple[str, int]]:
    """Calls per ``(column, row)`` in a log (everything in it)."""
    counts: Counter[tuple[str, int]] = Counter()
    if not log_path.exists():
        return counts
    for line in log_path.read_text().splitlines():
        if line and not line.startswith("#"):
            column, key = line.split()
            counts[(column, int(key))] += 1
    return counts


def cells(columns: set[str] | list[str], rows: range | list[int]) -> Counter[tuple[str, int]]:
    """Each of *columns* once on each of *rows*."""
    return Counter((column, row) for column in columns for row in rows)


def downstream_of(name: str, graph: ExecutionGraph | None = None) -> set[str]:
    """*name* and every column downstream of it in J12."""
    graph = graph or build_j12_graph()
    found = {name}
    changed = True
    while changed:
        changed = False
        for column in graph.columns:
            if column not in found and set(graph.get_upstream_columns(column)) & found:
                found.add(column)
                changed = True
    return found


def held_now(output_dir: Path, rows: int, buffer: int = 1000) -> set[tuple[str, int]]:
    """Every J12 cell the directory holds as done for its current job version, as ``(column, row)``.

    A written group's cells of the columns whose fingerprint in its file is the current
    version's, on the rows the file holds; plus what the current version's checkpoints hold of
    active groups.  (Full columns count per row, as :class:`LoggedRows` logs them.)
    """
    from cellfrontier.job import OutputLayout
    from cellfrontier.job.store.generations import newest_version
    from cellfrontier.job.store.group_files import read_group_stamp

    record = newest_version(output_dir)
    if record is None:
        return set()
    current = record["fingerprints"]
    layout = OutputLayout(output_dir, int(record["generation"]))
    groups = -(-rows // buffer)
    written = layout.written_groups(0, groups)
    held: set[tuple[str, int]] = set()
    settled: set[int] = set()
    for rg, path in written.items():
        stamp = read_group_stamp(path)
        if stamp is None or stamp.columns is None:
            continue
        kept = [name for name in NAMES if name in stamp.columns and stamp.columns[name][0] == current[name]]
        stored = [r for r in range(stamp.size) if r not in stamp.dropped]
        held.update((name, rg * buffer + r) for name in kept for r in stored)
        if len(kept) == len(NAMES) and stamp.size == min(buffer, rows - rg * buffer):
            settled.add(rg)
    held |= checkpointed_cells(layout, rows, buffer, skip=settled, batch_rows=True)
    return held
