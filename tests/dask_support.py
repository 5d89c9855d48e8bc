"""Helpers for the cluster tests: reading the call log every process appended to.

``job_support.CallLog`` travels with the job to the Dask workers; at a chosen call number of
one shard attempt, the first attempt to get there (its ``marker``) writes what the output
directory holds as done at that moment, then SIGKILLs its worker or the client.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path


def count_calls(path: Path) -> Counter[tuple[str, int]]:
    """Calls per task in a call log."""
    counts: Counter[tuple[str, int]] = Counter()
    for line in path.read_text().splitlines():
        column, key = line.split()
        counts[(column, int(key))] += 1
    return counts


def read_snapshot(path: Path) -> set[tuple[str, int]]:
    return {(column, int(key)) for column, key in json.loads(path.read_text())}
