"""Attempt epochs: which run of a shard is the current one.

A shard may be run by several attempts over time (a resumed job, a shard retried after its
worker died) and, rarely, by two at once: a worker presumed dead keeps running after its
shard was rescheduled elsewhere.  Every attempt therefore starts by claiming an *epoch*: it
creates ``claim-<epoch>`` in the shard's directory with ``O_CREAT | O_EXCL``, one more than
the highest claim it sees, and takes the next number if that one exists.  Exclusive creation
is atomic on local filesystems and on NFS (v3 and later), so no two attempts ever hold the
same epoch, and the newest attempt holds the highest.  Claims are never deleted, so a claim
above one's own always means a newer attempt exists.

What an epoch decides:

- each attempt writes its checkpoint to its own file, ``epoch-<epoch>.ckpt``: an older
  attempt can never overwrite a newer attempt's checkpoint, whatever it is doing;
- a new attempt resumes from the checkpoint of the highest epoch below its own (every
  checkpoint is self-consistent, whichever attempt wrote it);
- before it starts and before every save, an attempt looks for a higher claim and stops with
  :class:`~cellfrontier.job.errors.StaleShardError` if there is one, so a stale attempt stops
  wasting work at its next checkpoint at the latest;
- row-group files are written once (the first attempt to finish a group wins), so whatever a
  stale attempt writes before it notices is either a whole, valid group file or nothing.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from cellfrontier._durable import fsync_directory

__all__ = [
    "ShardClaim",
    "checkpoint_epochs",
    "claim_epoch",
    "claim_path",
    "claimed_epochs",
    "epoch_checkpoint_path",
]

_CLAIM = re.compile(r"^claim-(\d+)$")
_EPOCH_CHECKPOINT = re.compile(r"^epoch-(\d+)\.ckpt$")


def claim_path(directory: Path, epoch: int) -> Path:
    """The claim file of *epoch* in the shard *directory*."""
    return directory / f"claim-{epoch:06d}"


def epoch_checkpoint_path(directory: Path, epoch: int) -> Path:
    """Where the attempt of *epoch* saves its checkpoint of the shard in *directory*."""
    return directory / f"epoch-{epoch:06d}.ckpt"


def claimed_epochs(directory: Path) -> list[int]:
    """Every epoch claimed in the shard *directory*, ascending."""
    return _numbers(directory, _CLAIM)


def checkpoint_epochs(directory: Path) -> list[int]:
    """The epochs that have a checkpoint file in the shard *directory*, ascending."""
    return _numbers(directory, _EPOCH_CHECKPOINT)


def _numbers(directory: Path, pattern: re.Pattern[str]) -> list[int]:
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return []
    with entries:
        return sorted(int(m.group(1)) for e in entries if (m := pattern.match(e.name)))


@dataclass(frozen=True)
class ShardClaim:
    """An attempt's claim on a shard: its directory, its epoch and its attempt id."""

    directory: Path
    epoch: int
    attempt: str

    def newer_epoch(self) -> int | None:
        """The highest epoch claimed after this one, or None while this attempt is the newest."""
        epochs = claimed_epochs(self.directory)
        newest = epochs[-1] if epochs else 0
        return newest if newest > self.epoch else None

    @property
    def checkpoint_path(self) -> Path:
        return epoch_checkpoint_path(self.directory, self.epoch)


def claim_epoch(directory: Path, attempt: str) -> ShardClaim:
    """Claim the next epoch of the shard in *directory* (created if missing), atomically.

    The epoch is above every claim and every checkpoint in the directory, so the newest
    checkpoint there is always one this attempt resumes from (and checks).

    The claim file records who claimed it (attempt id, host, process, time) for diagnosis;
    only its name matters to the job.
    """
    directory.mkdir(parents=True, exist_ok=True)
    epochs = claimed_epochs(directory) + checkpoint_epochs(directory)  # above any checkpoint found too
    epoch = max(epochs, default=0) + 1
    record = {"attempt": attempt, "host": socket.gethostname(), "pid": os.getpid(), "claimed_at": time.time()}
    while True:
        path = claim_path(directory, epoch)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            epoch += 1
            continue
        try:
            os.write(fd, json.dumps({"epoch": epoch, **record}).encode("utf-8") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_directory(directory)
        return ShardClaim(directory, epoch, attempt)
