"""Checkpoint format: a tracker's state (:mod:`cellfrontier.state`) as bytes, written atomically.

This module is a codec and a file writer, nothing more: :func:`encode` and :func:`decode`
turn state values into bytes and back, :func:`write_atomic` and :func:`read` move bytes to
and from a file.  It knows nothing of trackers; ``CompletionTracker.save`` / ``load`` /
``to_bytes`` / ``from_bytes`` use it, and the compiled core rebuilds itself from the decoded
values with ``TrackerCore.from_state``, which trusts nothing in them.

File layout (all integers little-endian)::

    magic      8 bytes   b"CFRONTIR"
    version    u32       FORMAT_VERSION
    length     u64       length of the payload
    payload    bytes     u64 header length, JSON header (UTF-8), then the array blob
    checksum   32 bytes  SHA-256 of the payload

The JSON header holds the graph (columns, strategies, edges, side-effect aliases), the
row-group plan, and for every active row group the byte ranges of its word and flag arrays in
the blob (layout in :class:`~cellfrontier.state.ActiveGroup`; counters are recomputed on load,
never trusted); for every compacted group its size and packed dropped rows; and the
per-column progress totals of compacted groups.  A tracker built without a graph stores, per
row group, its size (once known), the rows recorded so far and the byte ranges of its
dropped-row and per-column done bitmaps.  Version 1 kept a graph-less tracker's bitmaps as
integers in the header; it is still read.

Resume semantics (applied by the core): tasks that had been handed out but not completed are
ready again (but those of rows dropped since), and nothing completed is offered again; ready
bits that were in the file (tasks put back with ``add_ready_tasks`` included) stay.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellfrontier._durable import replace_atomically
from cellfrontier.errors import (
    CheckpointError,
    CheckpointFileError,
    CheckpointNotFoundError,
    InvalidArgumentError,
)
from cellfrontier.state import ActiveGroup, CompactedGroup, CoreState, PlainGroupState, PlainState

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "GraphCheckpoint",
    "decode",
    "encode",
    "read",
    "write_atomic",
]

MAGIC = b"CFRONTIR"
FORMAT_VERSION = 2
"""Version 2 stores a graph-less tracker's bitmaps in the blob (version 1: integers in the header)."""
READABLE_VERSIONS = (1, 2)
_PREFIX = struct.Struct("<8sIQ")
_DIGEST = 32


@dataclass(frozen=True, slots=True)
class GraphCheckpoint:
    """What a checkpoint of a tracker with a graph holds.

    ``graph`` is ``ExecutionGraph.signature()``, ``plan`` is ``RowGroupPlan.to_dict()``.
    """

    graph: dict[str, Any]
    plan: dict[str, Any]
    state: CoreState


class _Blob:
    """The array blob being written: each array's bytes appended, its ``[start, length]`` kept."""

    def __init__(self) -> None:
        self.data = bytearray()

    def put(self, data: bytes) -> list[int]:
        start = len(self.data)
        self.data.extend(data)
        return [start, len(data)]


def encode(checkpoint: GraphCheckpoint | PlainState) -> bytes:
    """Checkpoint bytes of a tracker's state."""
    blob = _Blob()
    if isinstance(checkpoint, PlainState):
        header = _plain_header(checkpoint, blob)
    else:
        state = checkpoint.state
        if not state.has_bitmaps:
            raise InvalidArgumentError("encode() needs a state exported with its bitmaps")
        header = {
            "kind": "graph",
            "graph": checkpoint.graph,
            "column_order": list(state.columns),
            "plan": checkpoint.plan,
            "groups": [
                {
                    "row_group": g.row_group,
                    "size": g.size,
                    "bits": blob.put(g.words),
                    "flags": blob.put(g.flags),
                }
                for g in state.active
            ],
            "compacted": [[g.row_group, g.size, blob.put(g.dropped)] for g in state.compacted],
            "compacted_completed": list(state.compacted_completed),
            "compacted_dropped": list(state.compacted_dropped),
        }
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    payload = struct.pack("<Q", len(head)) + head + bytes(blob.data)
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(payload)) + payload + hashlib.sha256(payload).digest()


def _plain_header(state: PlainState, blob: _Blob) -> dict[str, Any]:
    return {
        "kind": "plain",
        "groups": [
            {
                "row_group": g.row_group,
                "size": g.size,
                "extent": g.extent,
                "dropped": blob.put(g.dropped),
                "columns": [[column, blob.put(words)] for column, words in g.columns],
                "batches": list(g.batches),
            }
            for g in state.groups
        ],
        "compacted": [[g.row_group, g.size, blob.put(g.dropped)] for g in state.compacted],
    }


def decode(data: bytes) -> GraphCheckpoint | PlainState:
    """The state in checkpoint bytes; :class:`CheckpointError` for anything malformed.

    Only the format is checked here (magic, version, length, checksum, header shape, array
    ranges); whether the state fits its graph and plan is for the core to decide.
    """
    header, blob, version = _parse(data)
    if not isinstance(header, dict):
        raise CheckpointError("checkpoint is malformed: its header is not an object")
    try:
        if header["kind"] == "plain":
            return _plain_state_v1(header) if version == 1 else _plain_state(header, blob)
        state = CoreState(
            columns=tuple(header["column_order"]),
            active=tuple(
                ActiveGroup(g["row_group"], g["size"], _slice(blob, g["bits"]), _slice(blob, g["flags"]))
                for g in header["groups"]
            ),
            compacted=tuple(
                CompactedGroup(rg, size, _slice(blob, span)) for rg, size, span in header["compacted"]
            ),
            compacted_completed=tuple(header["compacted_completed"]),
            compacted_dropped=tuple(header["compacted_dropped"]),
            completed=(),
            dropped=(),
        )
        return GraphCheckpoint(graph=header["graph"], plan=header["plan"], state=state)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise CheckpointError(f"checkpoint is malformed: {exc}") from exc


def _plain_state(header: dict[str, Any], blob: bytes) -> PlainState:
    groups = tuple(
        PlainGroupState(
            row_group=int(g["row_group"]),
            size=None if g["size"] is None else int(g["size"]),
            extent=int(g["extent"]),
            dropped=_slice(blob, g["dropped"]),
            columns=tuple((str(column), _slice(blob, span)) for column, span in g["columns"]),
            batches=tuple(str(name) for name in g["batches"]),
        )
        for g in header["groups"]
    )
    compacted = tuple(
        CompactedGroup(int(rg), int(rows), _slice(blob, span)) for rg, rows, span in header["compacted"]
    )
    return PlainState(groups=groups, compacted=compacted)


def _plain_state_v1(header: dict[str, Any]) -> PlainState:
    """Version 1 kept each bitmap as a hexadecimal integer in the header."""

    def words(value: str) -> bytes:
        number = int(value, 16)
        return number.to_bytes((number.bit_length() + 63) // 64 * 8, "little")

    dropped: dict[int, bytes] = {}
    done: dict[int, dict[str, bytes]] = {}
    batches: dict[int, tuple[str, ...]] = {}
    for rg, bits in header["dropped"].items():
        dropped[int(rg)] = words(bits)
    for rg, columns in header["done"].items():
        done.setdefault(int(rg), {}).update((str(column), words(bits)) for column, bits in columns.items())
    for rg, names in header["batches"].items():
        batches[int(rg)] = tuple(str(name) for name in names)
    groups = tuple(
        PlainGroupState(
            row_group=rg,
            size=None,
            extent=0,
            dropped=dropped.get(rg, b""),
            columns=tuple(done.get(rg, {}).items()),
            batches=batches.get(rg, ()),
        )
        for rg in sorted({*dropped, *done, *batches})
    )
    compacted = tuple(
        CompactedGroup(int(rg), int(value, 16).bit_length(), words(value))
        for rg, value in header["compacted"].items()
    )
    return PlainState(groups=groups, compacted=compacted)


def _parse(data: bytes) -> tuple[Any, bytes, int]:
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


def _slice(blob: bytes, span: list[int]) -> bytes:
    start, length = span
    if start < 0 or length < 0 or start + length > len(blob):
        raise CheckpointError("checkpoint array range lies outside the file")
    return blob[start : start + length]


# -- files ----------------------------------------------------------------------------------


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write *data* to *path* atomically: temporary file, flush and fsync, then rename.

    A crash at any moment leaves either the previous file or the new one, never a partial
    file under *path*; a replaced checkpoint keeps its file mode (see :mod:`cellfrontier._durable`).
    """
    replace_atomically(path, lambda handle: handle.write(data))


def read(path: str | os.PathLike[str], method: str = "load") -> bytes:
    """The bytes of the checkpoint at *path*, or the checkpoint error a caller expects."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"{method}() found no checkpoint at {os.fspath(path)!r}") from None
    except OSError as exc:
        raise CheckpointFileError(
            f"{method}() cannot read {os.fspath(path)!r}: {exc.strerror or exc}"
        ) from exc
    except TypeError as exc:
        raise InvalidArgumentError(f"{method}() needs a path, got {type(path).__name__} {path!r}") from exc
