"""Job versions: which job an output directory holds now, and the switch to an edited one.

Every job run on a directory is a *job version*, numbered by its *generation* (1, 2, ...).  A
version's record is a JSON file created once and never changed, ``versions/g<N>.json``::

    {"format": "cellfrontier-job", "version": 2, "generation": 3, "previous": 2,
     "graph": {"columns": [...], "edges": [...], "side_effects": [...]},
     "columns": {"h": {"strategy": "cell_by_cell", "outputs": ["h"], "upstream": ["row_key"],
                       "generator": "mod:gen_h", "print_source": "code", "print": "..",
                       "volatile": false}, ...},
     "fingerprints": {"h": "..", ...},
     "num_records": 1000000, "buffer_size": 1000, "python_version": "3.11"}

The newest record is the directory's current version, the one truth.  ``cellfrontier-job.json``
(the manifest, format version 2) is a copy of it, replaced atomically after each switch, for
people and for tools that read one file (``cellfrontier status``): it may lag the truth by
the moment between a switch and its copy, never lead it.

Switching (:func:`resolve_version`): a run whose job equals the current version's (same
graph, generator prints, sizes: :func:`version_key`) adopts it and resumes.  Otherwise it
creates the next record with an exclusive create (temp file, fsync, hard link: see
:func:`~cellfrontier._durable.create_once`), so of any number of processes starting at once
exactly one creates each generation; the others read the record that won and adopt it when it
is their job (the same edited job started by several shards agrees on one version), or switch
again when it is not.  A switch is refused, before any file is touched, when the directory
could not hold the result: fewer records than it holds (:class:`RerunRefusedError`) or
another ``buffer_size``.

A fresh directory may be empty or hold only the job's own layout (another process is creating
it); anything else is refused as someone else's files.  Temporary files of the manifest's copy
name their writer (``h<host>p<pid>``); a run removes only those of a process of this host that
is gone, never a write another live process may be making.

A directory of the format before versions (manifest version 1: no ``versions/``, shards under
``checkpoints/shard-*``, files without footers) is *migrated* by a run of the same job: it
becomes version 1 (its shard directories move under ``checkpoints/g000001/``, its checkpoints
are accepted, its files count as version 1's).  An edited job on such a directory is refused,
with what to do: its files record no fingerprints, so what to keep cannot be known.

Each version keeps its checkpoints under ``checkpoints/g<N>/`` and never reads another's; the
older versions' directories are removed once the new version has saved a checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cellfrontier._durable import TEMP_SUFFIX, create_once, replace_atomically
from cellfrontier.job.errors import OutputDirError, RerunRefusedError, StaleShardError
from cellfrontier.job.fingerprint import ColumnPrintInput, column_fingerprints, python_version
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.spec import JobSpec

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "JobVersion",
    "adopt_version",
    "job_version",
    "legacy_columns",
    "legacy_fingerprint",
    "newer_generation",
    "newest_version",
    "planned_version",
    "read_manifest",
    "record_digest",
    "remove_older_generations",
    "resolve_version",
    "version_key",
    "version_request",
]

MANIFEST_FORMAT = "cellfrontier-job"
MANIFEST_VERSION = 2
_LAYOUT_NAMES = frozenset({"cellfrontier-job.json", "versions", "data", "checkpoints"})
_WRITER_TAG = re.compile(r"\.h([0-9a-f]{8})p(\d+)\.")
_MAX_SWITCHES = 64


@dataclass(frozen=True)
class JobVersion:
    """A job version of a directory: its generation, its record and its column fingerprints."""

    generation: int
    record: Mapping[str, Any]
    fingerprints: Mapping[str, str]
    legacy: Mapping[str, tuple[str, tuple[str, ...]]] | None = None
    """The columns of files written before versions (a migrated directory's version 1)."""

    @property
    def digest(self) -> str:
        """Stamped on this version's checkpoints, to tie them to it."""
        return _digest(self.record)

    @property
    def accepted_digests(self) -> frozenset[str]:
        """Checkpoint digests this version resumes from (a migrated directory's old ones too)."""
        legacy = self.record.get("migrated_from")
        return frozenset({self.digest} | ({str(legacy)} if legacy else set()))


# ---------------------------------------------------------------------- what a job's version is


def version_request(spec: JobSpec) -> dict[str, Any]:
    """The record *spec* asks for, without its generation (module doc)."""
    signature = spec.graph.signature()
    columns = {
        column.name: {
            "strategy": "full_column" if column.batch else "cell_by_cell",
            "outputs": list(column.outputs),
            "upstream": sorted(spec.graph.get_upstream_columns(column.name)),
            "generator": column.identity,
            "print_source": column.print_source,
            "print": column.print_digest,
            "volatile": column.volatile,
        }
        for column in spec.columns
    }
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "graph": {
            "columns": sorted(signature["columns"]),
            "edges": signature["edges"],
            "side_effects": signature["side_effects"],
        },
        "columns": columns,
        "num_records": spec.num_records,
        "buffer_size": spec.buffer_size,
        "python_version": python_version(),
    }


_NOT_KEY = ("generation", "previous", "fingerprints", "python_version", "migrated_from")


def version_key(record: Mapping[str, Any]) -> str:
    """What makes two records the same job version: everything but the numbering and the interpreter."""
    return _digest({k: v for k, v in record.items() if k not in _NOT_KEY})


def _fingerprints(record: Mapping[str, Any], generation: int, order: list[str]) -> dict[str, str]:
    columns = record["columns"]
    inputs = [
        ColumnPrintInput(
            name=name,
            strategy=columns[name]["strategy"],
            outputs=tuple(columns[name]["outputs"]),
            upstream=tuple(columns[name]["upstream"]),
            print_digest=columns[name]["print"],
            volatile=bool(columns[name]["volatile"]),
        )
        for name in order
    ]
    return column_fingerprints(inputs, generation)


def _with_generation(
    request: Mapping[str, Any], generation: int, previous: int | None, order: list[str]
) -> dict[str, Any]:
    record = dict(request)
    record["generation"] = generation
    record["previous"] = previous
    record["fingerprints"] = _fingerprints(request, generation, order)
    return record


def legacy_fingerprint(spec: JobSpec) -> dict[str, Any]:
    """What a manifest of version 1 (before job versions) held for *spec*."""
    signature = spec.graph.signature()
    return {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "graph": {
            "columns": sorted(signature["columns"]),
            "edges": signature["edges"],
            "side_effects": signature["side_effects"],
        },
        "generators": dict(sorted((c.name, c.identity) for c in spec.columns)),
        "num_records": spec.num_records,
        "buffer_size": spec.buffer_size,
    }


def record_digest(record: Mapping[str, Any]) -> str:
    """The digest of a job version record (or a manifest): what its checkpoints are stamped with."""
    return _digest(record)


def _digest(data: Mapping[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()[:16]


def _encode(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, indent=2, sort_keys=True).encode("utf-8") + b"\n"


# ---------------------------------------------------------------------- reading (plain values)


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest ``cellfrontier-job.json`` of *root* as plain values (None when absent).

    Raises :class:`OutputDirError` when it is not a cellfrontier job manifest.  No user code is
    imported: a status view may call it.
    """
    return _read_record(Path(root) / "cellfrontier-job.json", "job manifest")


def _read_record(path: Path, what: str = "job version record") -> dict[str, Any] | None:
    """The JSON record at *path* (None when absent), refused unless it is a cellfrontier *what*."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise OutputDirError(f"{path} is not a readable {what}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise OutputDirError(f"{path} is not a cellfrontier {what}")
    return data


def newest_version(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The record of the directory's current job version as plain values (None: no version yet)."""
    layout = OutputLayout(Path(root))
    for generation in reversed(layout.generations()):
        record = _read_record(layout.version_path(generation))
        if record is not None:
            return record
    return None


def _columns_of(record: Mapping[str, Any]) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {
        name: (str(fp), tuple(record["columns"][name]["outputs"]))
        for name, fp in record["fingerprints"].items()
    }


def legacy_columns(
    layout: OutputLayout, record: Mapping[str, Any]
) -> dict[str, tuple[str, tuple[str, ...]]] | None:
    """The columns files without a footer count as having: a migrated directory's version 1's.

    None when the directory was not migrated (*record*, the version in use, may be that
    version 1 itself, not yet on disk).
    """
    first = record if int(record["generation"]) == 1 else _read_record(layout.version_path(1))
    if first is None or not first.get("migrated_from"):
        return None
    return _columns_of(first)


def job_version(layout: OutputLayout, record: Mapping[str, Any]) -> JobVersion:
    """The :class:`JobVersion` of *record* in the directory of *layout*."""
    return JobVersion(
        int(record["generation"]), record, dict(record["fingerprints"]), legacy_columns(layout, record)
    )


# ---------------------------------------------------------------------- switching


def planned_version(spec: JobSpec) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``(current record or None, the record a run of *spec* runs as)``, writing nothing.

    The planned record is the current one itself when the job is unchanged (the run resumes),
    else the next generation's.  Raises what :func:`resolve_version` would refuse.
    """
    assert spec.output_dir is not None
    root = Path(spec.output_dir)
    if root.exists() and not root.is_dir():
        raise OutputDirError(f"output_dir {str(root)!r} exists and is not a directory")
    request = version_request(spec)
    order = [column.name for column in spec.columns]
    current = newest_version(root)
    if current is None:
        legacy = read_manifest(root)
        record = _with_generation(request, 1, None, order)
        if legacy is not None and legacy.get("version") == 1:
            _check_legacy(root, legacy, spec)
            record["migrated_from"] = _digest(legacy)
        else:
            _refuse_foreign(root)
        return None, record
    if version_key(current) == version_key(request):
        return current, current
    _check_switch(root, current, request)
    generation = int(current["generation"]) + 1
    return current, _with_generation(request, generation, int(current["generation"]), order)


def resolve_version(spec: JobSpec) -> JobVersion:
    """The job version *spec* runs as on its ``output_dir``: the current one, or a new one (module doc).

    Creates the directory and its layout when needed.  Refuses (before touching any file) a
    directory that is not a job's, a non-directory, and a switch that cannot reuse what the
    directory holds.
    """
    assert spec.output_dir is not None
    layout = OutputLayout(spec.output_dir)
    if layout.root.is_dir():
        _remove_dead_writers_leftovers(layout.root)
    for _ in range(_MAX_SWITCHES):
        current, record = planned_version(spec)
        if record is current:
            _publish_manifest(layout, record)
            return job_version(layout, record)
        if record.get("migrated_from"):
            _migrate_legacy_checkpoints(layout)
        layout.create()
        layout.versions_dir.mkdir(parents=True, exist_ok=True)
        if create_once(layout.version_path(int(record["generation"])), _writer(_encode(record)), tag=_tag()):
            _publish_manifest(layout, record)
            return job_version(layout, record)
        # Another process created that generation first: read it and decide again.
    raise OutputDirError(
        f"output_dir {str(layout.root)!r} switched job versions {_MAX_SWITCHES} times while this run "
        "started: several different jobs are being run on it at once; run one job per directory"
    )


def adopt_version(layout: OutputLayout, spec: JobSpec, generation: int) -> JobVersion:
    """Job version *generation* for a shard of *spec*, refused if it is no longer current.

    A shard never switches versions (its run did): a newer version on disk stops it
    (:class:`StaleShardError`), and a version that is not *spec*'s job is refused.
    """
    newest = layout.generations()
    if newest and newest[-1] > generation:
        raise StaleShardError(
            f"a newer job version (generation {newest[-1]}) was started on {layout.root} after this "
            f"run's (generation {generation}); this run stops without writing"
        )
    record = _read_record(layout.version_path(generation))
    if record is None or version_key(record) != version_key(version_request(spec)):
        raise OutputDirError(
            f"output_dir {str(layout.root)!r} holds no job version {generation} of this job; run the "
            "job again (not one shard of it by hand) to start its version"
        )
    return job_version(layout, record)


def newer_generation(layout: OutputLayout, generation: int) -> int | None:
    """The newest generation above *generation* on disk, or None while *generation* is current."""
    found = layout.generations()
    return found[-1] if found and found[-1] > generation else None


def _check_switch(root: Path, current: Mapping[str, Any], request: Mapping[str, Any]) -> None:
    """Refuse a switch that could not reuse what the directory holds (module doc)."""
    if request["buffer_size"] != current["buffer_size"]:
        raise RerunRefusedError(
            f"output_dir {str(root)!r} holds row groups of buffer_size={current['buffer_size']}, this job "
            f"asks for buffer_size={request['buffer_size']}: a rerun keeps the row groups, so use "
            f"buffer_size={current['buffer_size']}, or another directory for the new size"
        )
    if request["num_records"] < current["num_records"]:
        raise RerunRefusedError(
            f"output_dir {str(root)!r} holds a job of num_records={current['num_records']:,}, this job asks "
            f"for {request['num_records']:,}: a rerun never removes rows, so keep num_records >= "
            f"{current['num_records']:,} (and read the first rows you need), or use another directory"
        )


def _check_legacy(root: Path, legacy: Mapping[str, Any], spec: JobSpec) -> None:
    if _digest(legacy) != _digest(legacy_fingerprint(spec)):
        raise RerunRefusedError(
            f"output_dir {str(root)!r} holds a job written before job versions (manifest version 1), "
            "and this job differs from it; its files record no column fingerprints, so a rerun cannot "
            "tell what to keep: run the job it was made with once (it resumes, or finds everything "
            "done) to migrate the directory, then run the edited job; or use another directory"
        )


def _migrate_legacy_checkpoints(layout: OutputLayout) -> None:
    """Move a version-1 directory's shard directories under ``checkpoints/g000001/`` (each one atomic)."""
    target = layout.generation_dir(1)
    legacy = OutputLayout(layout.root, None)
    if not legacy.checkpoint_dir.is_dir():
        return
    for entry in os.scandir(legacy.checkpoint_dir):
        if entry.is_dir() and entry.name.startswith("shard-"):
            target.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError, FileExistsError, OSError):
                os.rename(entry.path, target / entry.name)


def _refuse_foreign(root: Path) -> None:
    """Refuse a directory that holds anything but a job's own layout (another process may be making it)."""
    if not root.is_dir():
        return
    foreign = [
        entry.name
        for entry in os.scandir(root)
        if entry.name not in _LAYOUT_NAMES and not _is_manifest_temporary(entry.name)
    ]
    if foreign:
        raise OutputDirError(
            f"output_dir {str(root)!r} is not empty and holds no cellfrontier job manifest; "
            "give an empty or new directory"
        )


def _is_manifest_temporary(name: str) -> bool:
    return name.startswith(".cellfrontier-job.json.") and name.endswith(TEMP_SUFFIX)


def _host_tag() -> str:
    return hashlib.blake2b(socket.gethostname().encode("utf-8"), digest_size=4).hexdigest()


def _tag() -> str:
    """Names this process in its temporary files: ``h<host hash>p<pid>``."""
    return f"h{_host_tag()}p{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_writers_leftovers(root: Path) -> None:
    """Remove temporary files of the manifest's copy and of version records whose writer is gone.

    Only files that name a process of this host that no longer runs; any other (a live
    process's write under way, another host's, an unnamed one) is left alone: nothing reads
    temporary files.
    """
    host = _host_tag()
    for directory in (root, root / "versions"):
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
                continue
            match = _WRITER_TAG.search(entry.name)
            if match and match.group(1) == host and not _pid_alive(int(match.group(2))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _writer(payload: bytes) -> Callable[[BinaryIO], object]:
    """A ``write(file)`` callback that writes *payload*."""
    return lambda handle: handle.write(payload)


def _publish_manifest(layout: OutputLayout, record: Mapping[str, Any]) -> None:
    """Make the manifest a copy of the newest version's record (unless it already is)."""
    newest = newest_version(layout.root)
    if newest is not None and int(newest["generation"]) > int(record["generation"]):
        record = newest
    payload = _encode(record)
    with contextlib.suppress(FileNotFoundError):
        if layout.manifest_path.read_bytes() == payload:
            return

    replace_atomically(layout.manifest_path, _writer(payload), tag=_tag())


def remove_older_generations(layout: OutputLayout, generation: int) -> None:
    """Delete the checkpoints of job versions older than *generation* (it has saved its own)."""
    root = layout.checkpoint_dir
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return
    for entry in entries:
        match = re.match(r"^g(\d+)$", entry.name)
        if match and int(match.group(1)) < generation and entry.is_dir():
            shutil.rmtree(entry.path, ignore_errors=True)
