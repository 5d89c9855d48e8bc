"""Worker of ``test_concurrent_start.py``: start one shard of J12 when a barrier releases every worker.

A module of its own so that ``multiprocessing`` (spawn) can import the worker function in the
child processes.  Each trial has two phases, each released by the barrier: the job on a fresh
directory, then the same job edited (``final`` pinned to another version) on that directory.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from cellfrontier import Job, generator
from cellfrontier.testing.j12 import build_j12_graph, j12_generators

ROWS = 4000  # four row groups: one shard each


def edited_generators(phase: int) -> dict[str, Any]:
    generators = j12_generators()
    generators["final"] = generator(generators["final"], version=str(phase))
    return generators


def start_shard(index: int, barrier: Any, root: str, trials: int, outcomes: Any) -> None:
    """Run shard *index* (row group *index*) of trial *t*'s job, phase by phase, released by *barrier*."""
    for trial in range(trials):
        out = Path(root) / f"trial-{trial:02d}"
        for phase in (1, 2):
            barrier.wait(timeout=120)
            job = Job(build_j12_graph(), edited_generators(phase), ROWS, output_dir=out, progress_bar=False)
            try:
                result = job.run(row_groups=range(index, index + 1))
            except Exception:
                outcomes.put((trial, phase, index, "error", traceback.format_exc()))
            else:
                outcomes.put((trial, phase, index, "ok", result.records))
