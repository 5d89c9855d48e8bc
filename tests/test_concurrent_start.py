"""Shards of one job started at the same instant on one directory: all succeed and agree.

Four processes each start one shard of a 4,000-row J12 job, released together by a barrier,
on a fresh directory; then the same job edited, again all at once (the switch to the new job
version must be race-free too).  Twenty trials: every shard succeeds every time, exactly one
job version is created per phase, and the dataset is exact.
"""

from __future__ import annotations

import multiprocessing
import queue
from pathlib import Path

import pytest
from concurrent_support import ROWS, start_shard

from cellfrontier.job.store.generations import newest_version, read_manifest
from cellfrontier.job.store.group_files import read_group_stamp
from cellfrontier.testing.j12 import check_j12_output

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytestmark = pytest.mark.process

PROCESSES = 4
TRIALS = 20


def test_four_shards_started_at_once_all_succeed_twenty_times(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    outcomes = context.Queue()
    workers = [
        context.Process(target=start_shard, args=(k, barrier, str(tmp_path), TRIALS, outcomes), daemon=True)
        for k in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        results = []
        for _ in range(PROCESSES * TRIALS * 2):
            try:
                results.append(outcomes.get(timeout=180))
            except queue.Empty:
                pytest.fail(f"only {len(results)} shard runs reported; a worker is stuck or died")
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
                worker.join()
    errors = [r for r in results if r[3] != "ok"]
    assert not errors, f"{len(errors)} shards failed, the first: {errors[0][4]}"
    assert sorted(r[4] for r in results) == [1000] * (PROCESSES * TRIALS * 2)
    for trial in range(TRIALS):
        out = tmp_path / f"trial-{trial:02d}"
        assert sorted(p.name for p in (out / "versions").iterdir()) == ["g000001.json", "g000002.json"]
        current = newest_version(out)
        assert current is not None and read_manifest(out) == current
        paths = sorted((out / "data").glob("part-*.parquet"))
        assert len(paths) == 4
        for path in paths:
            stamp = read_group_stamp(path)
            assert stamp is not None and stamp.generation == 2
        table = pa.concat_tables([pq.read_table(p) for p in paths])
        check_j12_output({n: table.column(n).to_pylist() for n in table.column_names}, ROWS)
        assert not [p for p in out.rglob(".*.tmp")]
