"""Reading what a job's output directory holds, without changing it: :func:`read_job_status`.

Used by ``cellfrontier status`` and by ``cellfrontier run`` after a failure.  Only plain files
are read: the manifest (JSON), the shard directories' names, the claims (JSON records) and the
checkpoints' JSON headers, and the data directory's listing (plus the Parquet footers of the
groups written since their shard's checkpoint).  No payload is unpickled, so nothing of the job's own code
(its generators' modules) is imported, and a directory a run is writing right now can be read
at any moment: every file read is replaced atomically or written once.

The reading of each on-disk format lives in one small function, so that a change of format
changes one place: :func:`describe_manifest` (manifest -> :class:`JobDescription`),
:func:`list_shards` (the shard directories and the row groups none covers),
:func:`read_shard_files` (a shard's claims and newest checkpoint header, as
:class:`ShardFiles`), :func:`summarize_shard` (those files -> :class:`ShardStatus`) and
:func:`usage_from_header`.  The rest only combines plain values.

Whether an attempt looks *live*: on this host, from its claim's process id (running or gone);
on another host, from time: a claim newer than the newest checkpoint, or a checkpoint younger
than :data:`LIVE_INTERVALS` checkpoint intervals.  The process test is what makes a run killed a
moment ago read as stale rather than live; time is all there is for another host.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellfrontier.errors import CheckpointError
from cellfrontier.graph import ExecutionGraph
from cellfrontier.job.errors import OutputDirError
from cellfrontier.job.output import OutputLayout, read_group_rows
from cellfrontier.job.result import GeneratorFailure
from cellfrontier.job.status import (
    ClaimRecord,
    ColumnDescription,
    JobDescription,
    JobStatus,
    ShardStatus,
    format_duration,
)
from cellfrontier.job.store.fencing import (
    checkpoint_epochs,
    claim_path,
    claimed_epochs,
    epoch_checkpoint_path,
)
from cellfrontier.job.store.manifest import job_digest, read_manifest
from cellfrontier.job.store.shard_checkpoint import read_checkpoint_header

__all__ = [
    "LIVE_INTERVALS",
    "ShardFiles",
    "describe_manifest",
    "list_shards",
    "process_running",
    "read_job_status",
    "read_shard_files",
    "summarize_shard",
    "usage_from_header",
]

LIVE_INTERVALS = 3
"""A checkpoint younger than this many checkpoint intervals looks live (when no process can be asked)."""
DEFAULT_INTERVAL = 5.0
"""The interval assumed where no checkpoint records one (``Job``'s default)."""


@dataclass(frozen=True)
class ShardFiles:
    """What one shard's directory holds, as read (none of it interpreted yet)."""

    row_groups: range
    registered: bool
    claim: ClaimRecord | None = None
    """The highest claim, or None."""
    header: Mapping[str, Any] | None = None
    """The newest checkpoint's header, or None."""
    header_mtime: float | None = None
    problem: str | None = None
    """Why the newest checkpoint could not be read, if it could not."""


# ---------------------------------------------------------------------- reading the formats


def describe_manifest(manifest: Mapping[str, Any]) -> JobDescription:
    """The job a manifest describes (its graph rebuilt for the columns' order; nothing imported)."""
    try:
        graph = ExecutionGraph.from_signature(manifest["graph"])
        generators = manifest.get("generators") or {}
        aliases: dict[str, list[str]] = {}
        for alias, producer in manifest["graph"].get("side_effects", ()):
            aliases.setdefault(producer, []).append(alias)
        columns = tuple(
            ColumnDescription(
                name,
                graph.get_strategy(name).value,
                str(generators.get(name, "?")),
                tuple(sorted(aliases.get(name, ()))),
            )
            for name in graph.get_topological_order()
        )
        return JobDescription(
            columns=columns,
            num_records=int(manifest["num_records"]),
            buffer_size=int(manifest["buffer_size"]),
            fingerprint=job_digest(manifest),
            manifest_version=int(manifest.get("version", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise OutputDirError(f"the job manifest cannot be read: {type(exc).__name__}: {exc}") from None


def list_shards(layout: OutputLayout, num_row_groups: int) -> list[tuple[range, bool]]:
    """``(row groups, registered)`` for every shard directory and every range none covers, in order."""
    found: list[tuple[range, bool]] = []
    position = 0
    for shard in layout.shard_ranges():
        if shard.start > position:
            found.append((range(position, min(shard.start, num_row_groups)), False))
        found.append((shard, True))
        position = max(position, shard.stop)
    if position < num_row_groups:
        found.append((range(position, num_row_groups), False))
    return [(groups, registered) for groups, registered in found if len(groups)]


def _read_claim(directory: Path, epoch: int) -> ClaimRecord:
    """What the claim file of *epoch* records; only its epoch when it cannot be read."""
    try:
        record = json.loads(claim_path(directory, epoch).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ClaimRecord(epoch)
    if not isinstance(record, dict):
        return ClaimRecord(epoch)
    pid, at = record.get("pid"), record.get("claimed_at")
    return ClaimRecord(
        epoch,
        host=str(record["host"]) if "host" in record else None,
        pid=int(pid) if isinstance(pid, int) else None,
        claimed_at=float(at) if isinstance(at, (int, float)) else None,
    )


def read_shard_files(layout: OutputLayout, shard: range, registered: bool) -> ShardFiles:
    """A shard's highest claim and newest checkpoint header (nothing for an unregistered range)."""
    if not registered:
        return ShardFiles(shard, registered)
    directory = layout.shard_dir(shard.start, shard.stop)
    claims = claimed_epochs(directory)
    claim = _read_claim(directory, claims[-1]) if claims else None
    for epoch in reversed(checkpoint_epochs(directory)):
        path = epoch_checkpoint_path(directory, epoch)
        try:
            mtime = path.stat().st_mtime
            header = read_checkpoint_header(path)
        except FileNotFoundError:  # removed meanwhile by a newer attempt's first save
            continue
        except (CheckpointError, OSError) as exc:
            return ShardFiles(shard, registered, claim, problem=str(exc))
        if header is not None:
            return ShardFiles(shard, registered, claim, header, mtime)
    return ShardFiles(shard, registered, claim)


def usage_from_header(header: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Usage counters per column from a checkpoint header (``usage``), or none when it has none."""
    usage = header.get("usage")
    if not isinstance(usage, Mapping):
        return {}
    return {
        str(column): {str(k): int(v) for k, v in counts.items() if isinstance(v, (int, float))}
        for column, counts in usage.items()
        if isinstance(counts, Mapping)
    }


# ---------------------------------------------------------------------- interpreting them


def process_running(pid: int) -> bool:
    """Whether process *pid* of this host is running (a zombie, dead but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it exists
        return True
    except OSError:
        return False
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    return True


def _liveness(
    files: ShardFiles,
    saved_at: float | None,
    interval: float,
    now: float,
    host: str,
    running: Callable[[int], bool],
) -> tuple[str, str]:
    """``(state, detail)`` of a shard that is neither finished nor untouched (module doc)."""
    claim, header = files.claim, files.header
    checkpoint_epoch = int(header.get("epoch", 0)) if header is not None else 0
    claimed_at = None
    if claim is not None and claim.epoch > checkpoint_epoch and claim.claimed_at is not None:
        claimed_at = claim.claimed_at  # an attempt that has not saved yet
    if claimed_at is not None:
        age = now - claimed_at
        live = stale = f"claimed {format_duration(age)} ago, no checkpoint yet"
    elif saved_at is not None:
        age = now - saved_at
        live = f"last checkpoint {format_duration(age)} ago"
        stale = f"no checkpoint for {format_duration(age)}"
    else:
        age, live, stale = math.inf, "no checkpoint yet", "no checkpoint yet"
    if claim is not None and claim.pid is not None and claim.host == host:
        if running(claim.pid):
            return "live", f"{live}; process {claim.pid} on this host"
        return "stale", f"{stale}; process {claim.pid} on this host is gone"
    if age < LIVE_INTERVALS * interval:
        return "live", live
    return "stale", stale + (f"; claimed on {claim.host}" if claim is not None and claim.host else "")


def _written_rows(job: JobDescription, written: Mapping[int, Path]) -> tuple[int, int]:
    """Rows and drops of written groups, from their files' footers (sizes assumed without pyarrow)."""
    rows = dropped = 0
    for rg, path in written.items():
        try:
            count = read_group_rows(path)
        except Exception:  # no pyarrow, or a file being replaced: count the group as whole
            count = job.group_size(rg)
        rows += count
        dropped += job.group_size(rg) - count
    return rows, dropped


def summarize_shard(
    job: JobDescription,
    files: ShardFiles,
    written: Mapping[int, Path],
    *,
    now: float,
    host: str,
    running: Callable[[int], bool] = process_running,
) -> ShardStatus:
    """One shard's status from its files and the groups written in it (*written*)."""
    shard, header = files.row_groups, files.header
    rows_total = job.rows_in(shard)
    tasks_total = job.estimate_tasks(shard)
    if header is None:
        rows, dropped = _written_rows(job, written)
        if files.claim is None and files.problem is None:
            state, detail = "not started", "not claimed yet" if files.registered else "in no shard yet"
        else:
            state, detail = _liveness(files, None, DEFAULT_INTERVAL, now, host, running)
        return ShardStatus(
            shard,
            files.registered,
            state,
            detail if files.problem is None else f"{detail}; {files.problem}",
            epoch=None,
            claimed_epoch=files.claim.epoch if files.claim else None,
            checkpoint_age=None,
            rows_total=rows_total,
            rows_done=rows,
            rows_dropped=dropped,
            groups_written=len(written),
            groups_active=0,
            groups_pending=len(shard) - len(written),
            tasks=None,
            tasks_total=tasks_total,
            tasks_per_second=None,
            errors=0,
            claim=files.claim,
            problem=files.problem,
        )
    saved_at = _number(header.get("saved_at"), files.header_mtime)
    interval = _number(header.get("interval"), DEFAULT_INTERVAL) or DEFAULT_INTERVAL
    active = [rg for rg in header.get("active_groups", ()) if rg not in written and rg in shard]
    problem = None
    if header.get("job") != job.fingerprint:
        problem = f"its checkpoint was written by another job (digest {header.get('job')!r})"
    if header.get("final") and len(written) == len(shard) and problem is None:
        state, detail = "finished", f"all {len(shard):,} row groups written"
    else:
        state, detail = _liveness(files, saved_at, interval, now, host, running)
    rows, dropped = int(header.get("records", 0)), int(header.get("dropped", 0))
    counted = _counted_groups(header)
    if counted is not None:  # add the groups written since the checkpoint, from their files
        later = {rg: path for rg, path in written.items() if not any(rg in r for r in counted)}
        more_rows, more_dropped = _written_rows(job, later)
        rows, dropped = rows + more_rows, dropped + more_dropped
    tasks = _integer(header.get("tasks"))
    return ShardStatus(
        shard,
        files.registered,
        state,
        detail if problem is None else f"{detail}; {problem}",
        epoch=_integer(header.get("epoch")),
        claimed_epoch=files.claim.epoch if files.claim else None,
        checkpoint_age=None if saved_at is None else max(0.0, now - saved_at),
        rows_total=rows_total,
        rows_done=rows,
        rows_dropped=dropped,
        groups_written=len(written),
        groups_active=len(active),
        groups_pending=max(0, len(shard) - len(written) - len(active)),
        tasks=tasks,
        tasks_total=_integer(header.get("tasks_total")) or tasks_total,
        tasks_per_second=_rate(header),
        errors=int(header.get("errors", 0)),
        error_samples=tuple(
            GeneratorFailure.from_record(r) for r in header.get("error_samples", ()) if isinstance(r, Mapping)
        ),
        usage=usage_from_header(header),
        claim=files.claim,
        problem=problem,
    )


def _number(value: Any, default: float | None) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default


def _integer(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _counted_groups(header: Mapping[str, Any]) -> list[range] | None:
    """The groups whose rows the header's ``records`` counts, or None when it does not say."""
    pairs = header.get("counted_groups")
    if not isinstance(pairs, list):
        return None
    try:
        return [range(int(a), int(b)) for a, b in pairs]
    except (TypeError, ValueError):
        return None


def _rate(header: Mapping[str, Any]) -> float | None:
    """Tasks per second between the attempt's start and its newest checkpoint (two observations)."""
    tasks, started_tasks = _integer(header.get("tasks")), _integer(header.get("started_tasks"))
    saved_at, started_at = _number(header.get("saved_at"), None), _number(header.get("started_at"), None)
    if tasks is None or started_tasks is None or saved_at is None or started_at is None:
        return None
    if saved_at <= started_at or tasks <= started_tasks:
        return None
    return (tasks - started_tasks) / (saved_at - started_at)


def read_job_status(
    output_dir: str | os.PathLike[str],
    *,
    now: float | None = None,
    running: Callable[[int], bool] = process_running,
) -> JobStatus:
    """Read what *output_dir* holds (module doc); raises :class:`OutputDirError` if it holds no job.

    *now* (wall clock, default the current time) and *running* (is a process of this host
    running?) are the two outside facts the answer depends on.
    """
    root = Path(output_dir)
    if not root.is_dir():
        raise OutputDirError(f"{str(root)!r} is not a directory; give a job's output_dir")
    layout = OutputLayout(root)
    manifest = read_manifest(layout)
    if manifest is None:
        raise OutputDirError(
            f"{str(root)!r} holds no cellfrontier job: it has no {layout.manifest_path.name} "
            "(give the output_dir of a job that has started)"
        )
    job = describe_manifest(manifest)
    now = time.time() if now is None else now
    host = socket.gethostname()
    found = [
        read_shard_files(layout, groups, registered)
        for groups, registered in list_shards(layout, job.num_row_groups)
    ]
    # Listed after the headers were read: every group a header counts was written before its
    # save, so it is in the listing, and the counts never exceed the files (a run going on
    # meanwhile only makes the answer a little older).
    written = layout.written_groups(0, job.num_row_groups)
    shards = []
    for files in found:
        in_shard = {rg: path for rg, path in written.items() if rg in files.row_groups}
        shards.append(summarize_shard(job, files, in_shard, now=now, host=host, running=running))
    return JobStatus(root, job, tuple(shards), now)
