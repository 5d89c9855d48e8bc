"""Checkpoint format: the whole completion state of a tracker, saved atomically.

File layout (all integers little-endian)::

    magic      8 bytes   b"CFRONTIR"
    version    u32       FORMAT_VERSION
    length     u64       length of the payload
    payload    bytes     u64 header length, JSON header (UTF-8), then the array blob
    checksum   32 bytes  SHA-256 of the payload

The JSON header holds the graph (columns, strategies, edges, side-effect aliases), the
row-group plan, and for every active row group the byte ranges of its bit and flag arrays in
the blob (see ``_core.pyx``; counters are recomputed on load, never trusted); for every
compacted group its size and packed dropped rows; and the per-column progress totals of
compacted groups.  A tracker built without a graph stores, per row group, its size (once
known), the rows recorded so far and the byte ranges of its dropped-row and per-column done
bitmaps (see :mod:`cellfrontier.completion_only`).  Version 1 kept a graph-less tracker's
bitmaps as integers in the header; it is still read.

Resume semantics: the frontier is rebuilt from completion state on load, so tasks that had
been handed out but not completed are ready again (but those of rows dropped since: a dropped
row's tasks are never ready), and nothing completed is offered again.
Ready bits that were in the file (tasks put in with ``add_ready_tasks`` included) stay.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cellfrontier.errors import (
    CheckpointError,
    CheckpointFileError,
    CheckpointNotFoundError,
    InvalidArgumentError,
)
from cellfrontier.graph import ExecutionGraph
from cellfrontier.row_groups import RowGroupPlan

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "load_tracker",
    "save_tracker",
    "tracker_from_bytes",
    "tracker_to_bytes",
]

MAGIC = b"CFRONTIR"
FORMAT_VERSION = 2
"""Version 2 stores a graph-less tracker's bitmaps in the blob (version 1: integers in the header)."""
READABLE_VERSIONS = (1, 2)
_PREFIX = struct.Struct("<8sIQ")
_DIGEST = 32


def tracker_to_bytes(tracker: Any) -> bytes:
    """Serialise *tracker* (a :class:`~cellfrontier.CompletionTracker`) to checkpoint bytes."""
    blob = bytearray()

    def put(data: bytes) -> list[int]:
        start = len(blob)
        blob.extend(data)
        return [start, len(data)]

    core = tracker._core
    if core is None:
        plain = tracker._plain
        with plain._lock:  # one instant: mutations of the graph-less state hold this lock
            header: dict[str, Any] = {
                "kind": "plain",
                "groups": [
                    {
                        "row_group": rg,
                        "size": group.size,
                        "extent": group.extent,
                        "dropped": put(group.dropped.astype("<u8").tobytes()),
                        "columns": [
                            [c, put(w.astype("<u8").tobytes())] for c, w in sorted(group.done.items())
                        ],
                        "batches": sorted(group.batches),
                    }
                    for rg, group in sorted(plain.groups.items())
                ],
                "compacted": [
                    [rg, rows, put(packed)] for rg, (rows, packed) in sorted(plain.compacted.items())
                ],
            }
    else:
        plan = tracker._plan
        plan_dict = (
            plan.to_dict() if isinstance(plan, RowGroupPlan) else RowGroupPlan.explicit(plan).to_dict()
        )
        # One consistent instant of the state, even while other threads record events.
        active, compacted, compacted_completed, compacted_dropped = core.snapshot()
        groups = []
        for rg, size, bits, flags in sorted(active, key=lambda entry: entry[0]):
            if sys.byteorder != "little":  # the file stores the words little-endian
                bits = np.frombuffer(bits, dtype=np.uint64).astype("<u8").tobytes()
            groups.append({"row_group": rg, "size": size, "bits": put(bits), "flags": put(flags)})
        header = {
            "kind": "graph",
            "graph": tracker._graph.signature(),
            "column_order": list(core.names),
            "plan": plan_dict,
            "groups": groups,
            "compacted": [[rg, size, put(packed)] for rg, (size, packed) in sorted(compacted.items())],
            "compacted_completed": [int(x) for x in compacted_completed],
            "compacted_dropped": [int(x) for x in compacted_dropped],
        }
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    payload = struct.pack("<Q", len(head)) + head + bytes(blob)
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(payload)) + payload + hashlib.sha256(payload).digest()


def tracker_from_bytes(data: bytes, graph: ExecutionGraph | None = None, method: str = "from_bytes") -> Any:
    """Rebuild a tracker from :func:`tracker_to_bytes` output.

    With *graph*, the saved graph must be the same (same columns, strategies, edges and
    aliases) and the restored tracker uses that graph object.
    """
    from cellfrontier.tracker import CompletionTracker

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(f"{method}() needs bytes, got {type(data).__name__}")
    if graph is not None and not isinstance(graph, ExecutionGraph):
        raise InvalidArgumentError(
            f"{method}() needs a cellfrontier ExecutionGraph, got {type(graph).__name__}"
        )
    header, blob, version = _parse(bytes(data))
    if not isinstance(header, dict):
        raise CheckpointError("checkpoint is malformed: its header is not an object")
    try:
        if header["kind"] == "plain":
            if graph is not None:
                raise CheckpointError(f"{method}() got a graph, but the checkpoint has no graph")
            return _plain_tracker(header, blob, version)
        saved_graph = ExecutionGraph.from_signature(header["graph"])
        if graph is not None:
            if graph.signature() != header["graph"]:
                raise CheckpointError(
                    f"{method}() got a graph that differs from the one in the checkpoint: "
                    + _graph_difference(graph, saved_graph)
                )
            saved_graph = graph
        if saved_graph.compile().names != tuple(header["column_order"]):
            raise CheckpointError("checkpoint column order does not match its graph")
        plan = RowGroupPlan.from_dict(header["plan"])
        tracker = CompletionTracker.with_graph(saved_graph, plan)
        core = tracker._need_core("load")
        for entry in header["groups"]:
            bits = np.frombuffer(_slice(blob, entry["bits"]), dtype="<u8").astype(np.uint64)
            flags = np.frombuffer(_slice(blob, entry["flags"]), dtype="u1").astype(np.uint8)
            if plan.row_group_size(entry["row_group"]) != entry["size"]:
                raise CheckpointError(f"checkpoint row group {entry['row_group']!r} has the wrong size")
            core.restore_group(entry["row_group"], bits, flags)
            core.rebuild_frontier(entry["row_group"])
        for rg, size, span in header["compacted"]:
            if not plan.has_row_group(rg) or plan.row_group_size(rg) != size or rg in core.groups:
                raise CheckpointError(f"checkpoint compacted row group {rg!r} does not fit the plan")
            core.restore_compacted(rg, size, _slice(blob, span))
        core.compacted_completed[:] = header["compacted_completed"]
        core.compacted_dropped[:] = header["compacted_dropped"]
        return tracker
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise CheckpointError(f"checkpoint is malformed: {exc}") from exc


def save_tracker(tracker: Any, path: str | os.PathLike[str]) -> None:
    """Write a checkpoint atomically: temporary file, flush and fsync, then rename.

    A crash at any moment leaves either the previous checkpoint or the new one, never a
    partial file under *path*.
    """
    target = Path(path)
    data = tracker_to_bytes(tracker)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        # mkstemp creates the file private (0600); keep the mode of the checkpoint it replaces,
        # or give a new one the usual 0644, so that a checkpoint reads like any other file.
        try:
            mode = target.stat().st_mode & 0o777
        except OSError:
            mode = 0o644
        if hasattr(os, "fchmod"):  # POSIX
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(target.parent or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def load_tracker(path: str | os.PathLike[str], graph: ExecutionGraph | None = None) -> Any:
    """Read a checkpoint written by :func:`save_tracker`."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"load() found no checkpoint at {os.fspath(path)!r}") from None
    except OSError as exc:
        raise CheckpointFileError(f"load() cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    except TypeError as exc:
        raise InvalidArgumentError(f"load() needs a path, got {type(path).__name__} {path!r}") from exc
    return tracker_from_bytes(data, graph, method="load")


def _plain_tracker(header: dict[str, Any], blob: bytes, version: int) -> Any:
    """A graph-less tracker from its header (version 1 kept integer bitsets in the header)."""
    from cellfrontier.completion_only import PlainGroup
    from cellfrontier.tracker import CompletionTracker

    tracker = CompletionTracker()
    plain = tracker._completion_only()

    def words(data: bytes, minimum: int) -> np.ndarray:
        out = np.frombuffer(data, dtype="<u8").astype(np.uint64)
        return np.concatenate([out, np.zeros(max(minimum - out.size, 0), dtype=np.uint64)])

    def from_int(value: str) -> bytes:
        number = int(value, 16)
        return number.to_bytes((number.bit_length() + 63) // 64 * 8, "little")

    if version == 1:
        groups: dict[int, PlainGroup] = {}
        for rg, bits in header["dropped"].items():
            groups.setdefault(int(rg), PlainGroup()).dropped = words(from_int(bits), 0)
        for rg, cols in header["done"].items():
            group = groups.setdefault(int(rg), PlainGroup())
            for column, bits in cols.items():
                group.done[str(column)] = words(from_int(bits), 0)
        for rg, names in header["batches"].items():
            groups.setdefault(int(rg), PlainGroup()).batches = {str(n) for n in names}
        compacted = {int(rg): (int(v, 16).bit_length(), from_int(v)) for rg, v in header["compacted"].items()}
    else:
        groups = {}
        for entry in header["groups"]:
            size = entry["size"]
            group = PlainGroup(None if size is None else int(size))
            group.extent = int(entry["extent"])
            group.dropped = words(_slice(blob, entry["dropped"]), 0)
            for column, span in entry["columns"]:
                group.done[str(column)] = words(_slice(blob, span), 0)
            group.batches = {str(n) for n in entry["batches"]}
            groups[int(entry["row_group"])] = group
        compacted = {int(rg): (int(rows), _slice(blob, span)) for rg, rows, span in header["compacted"]}
    for group in groups.values():
        # Every bitmap of a group has the same number of words; counters are never trusted.
        width = max([group.dropped.size, *(w.size for w in group.done.values())])
        group.dropped = words(group.dropped.astype("<u8").tobytes(), width)
        group.done = {c: words(w.astype("<u8").tobytes(), width) for c, w in group.done.items()}
        group.recount()
        if group.size is not None and (group.size < group.extent or width * 64 < group.size):
            raise CheckpointError("checkpoint graph-less row group has inconsistent sizes")
    plain.groups = groups
    plain.compacted = compacted
    return tracker


def _parse(data: bytes) -> tuple[dict[str, Any], bytes, int]:
    if len(data) < _PREFIX.size + _DIGEST:
        raise CheckpointError(f"checkpoint is truncated ({len(data)} bytes)")
    magic, version, length = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise CheckpointError("not a cellfrontier checkpoint (bad magic bytes)")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"checkpoint format version {version} is not supported (expected one of {READABLE_VERSIONS})"
        )
    end = _PREFIX.size + length
    if len(data) != end + _DIGEST:
        raise CheckpointError(
            f"checkpoint is truncated or has trailing bytes ({len(data)} bytes, expected {end + _DIGEST})"
        )
    payload = data[_PREFIX.size : end]
    if hashlib.sha256(payload).digest() != data[end:]:
        raise CheckpointError("checkpoint is corrupted (checksum mismatch)")
    (head_len,) = struct.unpack_from("<Q", payload)
    if 8 + head_len > len(payload):
        raise CheckpointError("checkpoint header is truncated")
    try:
        header = json.loads(payload[8 : 8 + head_len].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint header is unreadable: {exc}") from exc
    return header, payload[8 + head_len :], version


def _graph_difference(given: ExecutionGraph, saved: ExecutionGraph) -> str:
    """What differs between two graphs, in a few words, for an error message."""
    parts = []
    given_cols, saved_cols = set(given.columns), set(saved.columns)
    if given_cols != saved_cols:
        only_given, only_saved = sorted(given_cols - saved_cols), sorted(saved_cols - given_cols)
        parts.append(f"columns only given {only_given}, only saved {only_saved}")
    else:
        strategies = [c for c in given.columns if given.get_strategy(c) != saved.get_strategy(c)]
        if strategies:
            parts.append(f"strategies of {sorted(strategies)}")
        edges = [
            c
            for c in given.columns
            if set(given.get_upstream_columns(c)) != set(saved.get_upstream_columns(c))
        ]
        if edges:
            parts.append(f"upstream columns of {sorted(edges)}")
    return "; ".join(parts) or "side-effect aliases or column order"


def _slice(blob: bytes, span: list[int]) -> bytes:
    start, length = span
    if start < 0 or length < 0 or start + length > len(blob):
        raise CheckpointError("checkpoint array range lies outside the file")
    return blob[start : start + length]
