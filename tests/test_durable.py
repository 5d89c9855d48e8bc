"""The one file-mode policy of every file the library writes (``cellfrontier._durable``).

A replaced file keeps its mode, a new one gets 0644 whatever the process's umask: a job's
manifest, its shard checkpoints and its row-group files follow the same rule as a tracker's
checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellfrontier._durable import create_once, replace_atomically


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """A umask that would make new files private: the policy must not depend on it."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.usefixtures("strict_umask")
def test_a_new_file_gets_0644_and_a_replaced_one_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "cellfrontier-job.json"
    replace_atomically(path, lambda handle: handle.write(b"one"))
    assert _mode(path) == 0o644
    path.chmod(0o600)
    replace_atomically(path, lambda handle: handle.write(b"two"))
    assert path.read_bytes() == b"two" and _mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cellfrontier-job.json"]


@pytest.mark.usefixtures("strict_umask")
def test_a_file_created_once_gets_0644(tmp_path: Path) -> None:
    path = tmp_path / "part-00000001.parquet"
    assert create_once(path, lambda handle: handle.write(b"rows"))
    assert _mode(path) == 0o644
