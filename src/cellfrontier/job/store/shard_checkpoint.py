"""An attempt's checkpoint of a shard: the tracker's state and the buffered values of its active groups.

Each attempt of a shard (a range of row groups) writes its own file,
``checkpoints/shard-<first>-<stop>/epoch-<epoch>.ckpt``, named by the epoch it claimed (see
:mod:`cellfrontier.job.store.fencing`), and replaces it atomically (temp file, fsync, rename) at
every save, so the tracker's state and the values it reports as done are always committed
together, and no attempt ever overwrites another's.  Layout::

    b"CFJOBCK\\n"                magic
    4 bytes, big endian          length of the JSON header
    JSON header                  version, first, stop, epoch, seq, attempt, job (the manifest's
                                 digest), records, dropped, final, usage, payload length and sha256
    payload                      pickle of {"tracker": bytes, "groups": {rg: {column: values}},
                                            "stats": {...}}

The values are pickled, so a checkpoint can hold any picklable value a generator returns;
like any pickle, it must only be loaded from a directory you trust.  ``seq`` grows by one per
save of an attempt.  The header alone answers whether a shard is finished (``final``) and how
many rows it wrote, without reading the payload.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellfrontier._durable import replace_atomically
from cellfrontier.errors import CheckpointError

__all__ = [
    "CHECKPOINT_VERSION",
    "ShardCheckpoint",
    "header_usage",
    "load_checkpoint",
    "read_checkpoint_header",
    "save_checkpoint",
]

_MAGIC = b"CFJOBCK\n"
CHECKPOINT_VERSION = 2
_HEADER_LIMIT = 1 << 20


@dataclass
class ShardCheckpoint:
    """What one save holds."""

    first: int
    stop: int
    seq: int
    attempt: str
    tracker: bytes
    epoch: int = 0
    job: str = ""
    """Digest of the job's manifest: a checkpoint copied from another job's directory is refused."""
    groups: dict[int, dict[str, list[Any]]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    """``records``, ``dropped``, ``final`` (ints) and ``usage`` (``{column: {counter: int}}``)."""


def save_checkpoint(path: Path, checkpoint: ShardCheckpoint) -> None:
    """Write *checkpoint* to *path* atomically."""
    payload = pickle.dumps(
        {"tracker": checkpoint.tracker, "groups": checkpoint.groups, "stats": checkpoint.stats},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    header = json.dumps(
        {
            "version": CHECKPOINT_VERSION,
            "first": checkpoint.first,
            "stop": checkpoint.stop,
            "seq": checkpoint.seq,
            "epoch": checkpoint.epoch,
            "attempt": checkpoint.attempt,
            "job": checkpoint.job,
            "records": int(checkpoint.stats.get("records", 0)),
            "dropped": int(checkpoint.stats.get("dropped", 0)),
            "final": bool(checkpoint.stats.get("final", 0)),
            "usage": checkpoint.stats.get("usage", {}),
            "payload_bytes": len(payload),
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
        },
        sort_keys=True,
    ).encode("utf-8")

    def write(handle: Any) -> None:
        handle.write(_MAGIC)
        handle.write(struct.pack(">I", len(header)))
        handle.write(header)
        handle.write(payload)

    replace_atomically(path, write)


def _read_header(handle: Any, path: Path) -> dict[str, Any]:
    magic = handle.read(len(_MAGIC))
    if magic != _MAGIC:
        raise CheckpointError(f"{path} is not a job checkpoint (bad magic)")
    raw = handle.read(4)
    if len(raw) != 4:
        raise CheckpointError(f"{path} is truncated (no header length)")
    (length,) = struct.unpack(">I", raw)
    if length > _HEADER_LIMIT:
        raise CheckpointError(f"{path} has an implausible header length {length}")
    text = handle.read(length)
    if len(text) != length:
        raise CheckpointError(f"{path} is truncated (header)")
    try:
        header = json.loads(text)
    except ValueError:
        raise CheckpointError(f"{path} has a corrupted header") from None
    if not isinstance(header, dict) or header.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has an unknown checkpoint version {header.get('version')!r}")
    return header


def header_usage(header: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The usage counters per column a checkpoint's header records (empty when none)."""
    usage = header.get("usage") or {}
    return {str(column): {str(k): int(v) for k, v in counts.items()} for column, counts in usage.items()}


def read_checkpoint_header(path: Path) -> dict[str, Any] | None:
    """The header of the checkpoint at *path* (None when there is none): cheap, payload unread."""
    try:
        with open(path, "rb") as handle:
            return _read_header(handle, path)
    except FileNotFoundError:
        return None


def load_checkpoint(path: Path) -> ShardCheckpoint | None:
    """Read and verify the checkpoint at *path*; None when there is none."""
    try:
        with open(path, "rb") as handle:
            header = _read_header(handle, path)
            payload = handle.read()
    except FileNotFoundError:
        return None
    if len(payload) != header.get("payload_bytes") or hashlib.sha256(payload).hexdigest() != header.get(
        "payload_sha256"
    ):
        raise CheckpointError(f"{path} is truncated or corrupted (payload checksum mismatch)")
    data = pickle.loads(payload)
    return ShardCheckpoint(
        first=int(header["first"]),
        stop=int(header["stop"]),
        seq=int(header["seq"]),
        attempt=str(header["attempt"]),
        epoch=int(header.get("epoch", 0)),
        job=str(header.get("job", "")),
        tracker=data["tracker"],
        groups=data["groups"],
        stats=data.get("stats", {}),
    )
