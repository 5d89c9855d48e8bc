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
compacted group its size and packed
dropped rows; and the per-column progress totals of compacted groups.  A tracker built
without a graph stores its integer bitsets in the header instead.

Resume semantics: the frontier is rebuilt from completion state on load, so tasks that had
been handed out but not completed are ready again, and nothing completed is offered again.
Ready bits that were in the file (tasks put in with ``add_ready_tasks`` included) stay.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cellfrontier.errors import CheckpointError
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
FORMAT_VERSION = 1
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
        header: dict[str, Any] = {
            "kind": "plain",
            "done": {str(rg): {c: hex(v) for c, v in cols.items()} for rg, cols in plain.done.items()},
            "dropped": {str(rg): hex(v) for rg, v in plain.dropped.items()},
            "batches": {str(rg): sorted(v) for rg, v in plain.batches.items()},
            "compacted": {str(rg): hex(v) for rg, v in plain.compacted.items()},
        }
    else:
        plan = tracker._plan
        plan_dict = (
            plan.to_dict() if isinstance(plan, RowGroupPlan) else RowGroupPlan.explicit(plan).to_dict()
        )
        groups = []
        for rg in sorted(core.groups):
            group = core.groups[rg]
            groups.append(
                {
                    "row_group": rg,
                    "size": group.n,
                    "bits": put(np.ascontiguousarray(group.bits, dtype="<u8").tobytes()),
                    "flags": put(np.ascontiguousarray(group.flags, dtype="u1").tobytes()),
                }
            )
        header = {
            "kind": "graph",
            "graph": tracker._graph.signature(),
            "column_order": list(core.names),
            "plan": plan_dict,
            "groups": groups,
            "compacted": [[rg, size, put(packed)] for rg, (size, packed) in sorted(core.compacted.items())],
            "compacted_completed": [int(x) for x in core.compacted_completed],
            "compacted_dropped": [int(x) for x in core.compacted_dropped],
        }
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    payload = struct.pack("<Q", len(head)) + head + bytes(blob)
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(payload)) + payload + hashlib.sha256(payload).digest()


def tracker_from_bytes(data: bytes, graph: ExecutionGraph | None = None) -> Any:
    """Rebuild a tracker from :func:`tracker_to_bytes` output.

    With *graph*, the saved graph must be the same (same columns, strategies, edges and
    aliases) and the restored tracker uses that graph object.
    """
    from cellfrontier.tracker import CompletionTracker

    header, blob = _parse(bytes(data))
    try:
        if header["kind"] == "plain":
            if graph is not None:
                raise CheckpointError("from_bytes() got a graph, but the checkpoint has no graph")
            tracker = CompletionTracker()
            plain = tracker._completion_only()
            plain.done = {
                int(rg): {c: int(v, 16) for c, v in cols.items()} for rg, cols in header["done"].items()
            }
            plain.dropped = {int(rg): int(v, 16) for rg, v in header["dropped"].items()}
            plain.batches = {int(rg): set(v) for rg, v in header["batches"].items()}
            plain.compacted = {int(rg): int(v, 16) for rg, v in header["compacted"].items()}
            return tracker
        saved_graph = ExecutionGraph.from_signature(header["graph"])
        if graph is not None:
            if graph.signature() != header["graph"]:
                raise CheckpointError("load() got a graph that differs from the one in the checkpoint")
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
            core.compacted[rg] = (size, _slice(blob, span))
        core.compacted_completed[:] = header["compacted_completed"]
        core.compacted_dropped[:] = header["compacted_dropped"]
        return tracker
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
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
        raise CheckpointError(f"load() found no checkpoint at {os.fspath(path)!r}") from None
    return tracker_from_bytes(data, graph)


def _parse(data: bytes) -> tuple[dict[str, Any], bytes]:
    if len(data) < _PREFIX.size + _DIGEST:
        raise CheckpointError(f"checkpoint is truncated ({len(data)} bytes)")
    magic, version, length = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise CheckpointError("not a cellfrontier checkpoint (bad magic bytes)")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format version {version} is not supported (expected {FORMAT_VERSION})"
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
    return header, payload[8 + head_len :]


def _slice(blob: bytes, span: list[int]) -> bytes:
    start, length = span
    if start < 0 or length < 0 or start + length > len(blob):
        raise CheckpointError("checkpoint array range lies outside the file")
    return blob[start : start + length]
