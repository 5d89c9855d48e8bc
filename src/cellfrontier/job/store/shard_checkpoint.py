"""An attempt's checkpoint of a shard: the tracker's state and the buffered values of its active groups.

Each attempt of a shard (a range of row groups) writes its own file,
``checkpoints/shard-<first>-<stop>/epoch-<epoch>.ckpt``, named by the epoch it claimed (see
:mod:`cellfrontier.job.store.fencing`), and replaces it atomically (temp file, fsync, rename) at
every save, so the tracker's state and the values it reports as done are always committed
together, and no attempt ever overwrites another's.  Layout::

    b"CFJOBCK\\n"                magic
    4 bytes, big endian          length of the JSON header
    JSON header                  version, first, stop, epoch, seq, attempt, job (the manifest's
                                 digest), records, dropped, final, usage, payload length and
                                 sha256; since version 3 also the shard's summary (below)
    payload                      pickle of {"tracker": bytes, "groups": {rg: {column: values}},
                                            "stats": {...}, "drops": {rg: {row: column}}}

``drops`` names, for each dropped row of an active group, the column whose failure dropped it
(what the group's file will record, so that a rerun knows which drops to keep); a checkpoint
without it (an older release's) counts its drops as of a column not known.  The checkpoints
of a job version live under ``checkpoints/g<N>/`` (:mod:`cellfrontier.job.store.generations`).

The values are pickled, so a checkpoint can hold any picklable value a generator returns;
like any pickle, it must only be loaded from a directory you trust.  ``seq`` grows by one per
save of an attempt.  The header alone answers whether a shard is finished (``final``) and how
many rows it wrote, without reading the payload.

The summary (version 3) is what a reader of the directory needs beyond that, so that it never
unpickles a payload (which could import the generators' modules): ``saved_at`` (wall clock),
``interval`` (the checkpoint interval, seconds), ``tasks`` / ``tasks_total`` (done, estimated
in all), ``started_at`` / ``started_tasks`` (the attempt's start: with ``saved_at`` / ``tasks``
two observations of its progress), ``active_groups`` (the groups held here), ``errors`` and
``error_samples`` (the first few failed calls as plain records, messages cut short) and
``counted_groups`` (``[start, stop)`` pairs: the groups whose rows ``records`` counts, left out
when there are very many).  Version 2 headers, without it, are still read.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellfrontier._durable import replace_atomically
from cellfrontier.errors import CheckpointError

__all__ = [
    "CHECKPOINT_VERSION",
    "ShardCheckpoint",
    "load_checkpoint",
    "read_checkpoint_header",
    "save_checkpoint",
]

_MAGIC = b"CFJOBCK\n"
CHECKPOINT_VERSION = 3
READABLE_VERSIONS = (2, 3)
_HEADER_LIMIT = 1 << 20
SUMMARY_NUMBERS = ("tasks", "tasks_total", "started_at", "started_tasks", "interval", "errors")
"""The stats copied into the header as they are (numbers): the summary of the module doc."""
MAX_HEADER_SAMPLES = 5
MAX_SAMPLE_MESSAGE = 300


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
    """``records``, ``dropped``, ``final``, ``usage`` (``{column: {counter: int}}``) and the summary's
    figures (module doc)."""
    drops: dict[int, dict[int, str]] = field(default_factory=dict)
    """For each active group, its dropped rows and the column that dropped each."""


def _summary(checkpoint: ShardCheckpoint) -> dict[str, Any]:
    """The header's summary of *checkpoint*: small and bounded whatever the shard holds."""
    stats = checkpoint.stats
    summary: dict[str, Any] = {key: stats[key] for key in SUMMARY_NUMBERS if key in stats}
    samples: list[Mapping[str, Any]] = list(stats.get("error_samples", ()))[:MAX_HEADER_SAMPLES]
    summary["error_samples"] = [
        {**sample, "message": str(sample.get("message", ""))[:MAX_SAMPLE_MESSAGE]} for sample in samples
    ]
    summary["active_groups"] = sorted(checkpoint.groups)
    if stats.get("counted_groups") is not None:
        summary["counted_groups"] = stats["counted_groups"]
    summary["saved_at"] = time.time()
    return summary


def save_checkpoint(path: Path, checkpoint: ShardCheckpoint) -> None:
    """Write *checkpoint* to *path* atomically."""
    payload = pickle.dumps(
        {
            "tracker": checkpoint.tracker,
            "groups": checkpoint.groups,
            "stats": checkpoint.stats,
            "drops": checkpoint.drops,
        },
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
            **_summary(checkpoint),
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
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a corrupted header")
    if header.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{path} has an unknown checkpoint version {header.get('version')!r}")
    return header


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
        drops=data.get("drops", {}),
    )
