"""``job.run(client=...)`` on a real ``distributed.LocalCluster``: two process workers on 127.0.0.1.

One cluster serves the module (started once, closed even on failure); each test waits until
both workers are up, uses its own output directory and leaves the cluster as it found it (a
killed worker is restarted by its nanny).  Kills are chosen by step: the first shard attempt
to make its N-th generator call kills its own worker, or the client; never by clock.  Calls
are counted per cell in a log file shared by every process (``dask_support``).
"""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from dask_support import count_calls, read_snapshot
from job_support import CallLog, all_tasks, logged_j12

from cellfrontier import Job, OutputDirError
from cellfrontier.job import OutputLayout, ShardLostError
from cellfrontier.testing.j12 import build_j12_graph, check_j12_output, j12_generators

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pytest.importorskip("pyarrow")
pytestmark = [pytest.mark.process, pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")]

CLIENT = Path(__file__).with_name("dask_client.py")
BOUND = 180.0
"""Seconds any one cluster run may take before the test fails (it takes a few)."""
T = TypeVar("T")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    settings = {
        "distributed.scheduler.allowed-failures": 2,  # one worker death per shard is expected here
        "distributed.worker.daemon": False,
    }
    with dask.config.set(settings):
        local = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # loopback, a free port: never clashes with another cluster
            silence_logs=logging.CRITICAL,
        )
    try:
        yield local
    finally:
        local.close(timeout=60)


@pytest.fixture
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster, timeout=60) as connected:
        connected.wait_for_workers(2, timeout=120)
        yield connected


def bounded(fn: Callable[[], T], seconds: float = BOUND) -> T:
    """``fn()`` in a thread, failing the test if it has not returned within *seconds*."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the cluster run did not finish within {seconds:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def table_dict(result: Any) -> dict[str, list[Any]]:
    table = result.table(row_index=True)
    return {name: table.column(name).to_pylist() for name in table.column_names}


def test_j12_on_two_workers_equals_the_formulas_and_a_local_run(client: Any, tmp_path: Path) -> None:
    rows = 20_500  # 21 row groups, the last one short
    seen: list[Any] = []
    job = Job(
        build_j12_graph(),
        j12_generators(),
        rows,
        output_dir=tmp_path / "cluster",
        max_active_row_groups=3,
        progress=seen.append,
    )
    result = bounded(lambda: job.run(client=client))
    assert (result.records, result.dropped) == (rows, 0)
    assert result.tasks == sum(all_tasks(rows).values())
    shards = [s.row_groups for s in result.shards]
    assert shards[0].start == 0 and shards[-1].stop == 21
    assert all(a.stop == b.start for a, b in itertools.pairwise(shards))
    assert len(shards) == 8  # four per worker thread by default
    assert len({s.worker for s in result.shards}) == 2  # both workers ran shards
    data = table_dict(result)
    check_j12_output(data, rows)
    local = Job(build_j12_graph(), j12_generators(), rows, output_dir=tmp_path / "local").run()
    assert local.table(row_index=True).equals(result.table(row_index=True))
    layout = OutputLayout(tmp_path / "cluster")
    assert sorted(layout.written_groups(0, 21)) == list(range(21))
    assert seen and seen[-1].rows_done == rows and seen[-1].tasks == result.tasks  # one view of the job


def test_a_worker_killed_at_a_chosen_call_loses_nothing(client: Any, tmp_path: Path) -> None:
    # 80 groups, 8 shards of 10 groups (7,050 calls each).  Async cells keep groups computing
    # across rounds, so the runner checks for a due checkpoint every round: with at most 448
    # calls in flight (7 columns x 64), the first save comes long before the 2,500th call.
    rows, buffer = 8_000, 100
    out, calls = tmp_path / "out", tmp_path / "calls"
    marker, snapshot = tmp_path / "killed", tmp_path / "held-at-kill.json"
    log = CallLog(
        calls, act_at=2_500, marker=marker, snapshot=snapshot, output_dir=out, rows=rows, buffer=buffer
    )
    job = Job(
        build_j12_graph(),
        logged_j12(log, async_cells=True, buffer=buffer),
        rows,
        buffer_size=buffer,
        max_active_row_groups=2,
        output_dir=out,
        checkpoint_every=300,
        checkpoint_interval=1e9,
    )
    result = bounded(lambda: job.run(client=client))
    assert marker.exists()  # a worker was killed mid-run
    check_j12_output(table_dict(result), rows)
    counts = count_calls(calls)
    assert set(counts) == set(all_tasks(rows, buffer))
    held = read_snapshot(snapshot)
    assert held  # checkpoints had been saved before the kill
    again = {task for task in held if counts[task] > 1}
    assert not again, f"{len(again)} tasks a checkpoint held were computed again, e.g. {sorted(again)[:3]}"
    recomputed = sum(counts.values()) - len(counts)
    assert 0 < recomputed <= 2_500  # only what the killed attempt had not checkpointed
    assert max(s.epoch for s in result.shards) == 2  # the killed shard resumed as a second attempt


@pytest.mark.parametrize("finish", ["cluster", "local"])
def test_a_client_killed_mid_run_is_resumed(cluster: Any, client: Any, tmp_path: Path, finish: str) -> None:
    rows, buffer = 6_000, 100
    out, calls, marker = tmp_path / "out", tmp_path / "calls", tmp_path / "client-killed"
    command = [
        sys.executable,
        str(CLIENT),
        cluster.scheduler_address,
        str(out),
        str(calls),
        str(rows),
        str(buffer),
    ]
    first = subprocess.run(
        [*command, "--kill-client-at", "2000", "--marker", str(marker)],
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert first.returncode == -9, first.stderr[-2000:]
    assert marker.exists()
    if finish == "cluster":
        second = subprocess.run(command, capture_output=True, text=True, timeout=BOUND)
        assert second.returncode == 0, second.stderr[-2000:]
        summary = json.loads(second.stdout.strip().splitlines()[-1])
        assert summary["records"] == rows and summary["resumed"]
    else:
        log = CallLog(calls)
        generators = logged_j12(log, async_cells=True, buffer=buffer)
        job = Job(build_j12_graph(), generators, rows, buffer_size=buffer, output_dir=out)
        result = job.run()  # the shards the cluster left, one after another in this process
        assert result.records == rows and result.resumed
        assert [s.row_groups for s in result.shards] == OutputLayout(out).shard_ranges()
    layout = OutputLayout(out)
    check_j12_output(table_dict(_whole(out, rows, buffer)), rows)
    assert set(count_calls(calls)) == set(all_tasks(rows, buffer))
    assert len(layout.shard_ranges()) == 8


def _whole(out: Path, rows: int, buffer: int) -> Any:
    """The finished job's result, read back by a local run that finds every shard finished."""
    log = CallLog(out.parent / "calls-readback")
    generators = logged_j12(log, async_cells=True, buffer=buffer)
    again = Job(build_j12_graph(), generators, rows, buffer_size=buffer, output_dir=out).run()
    assert again.tasks == 0 and all(s.skipped for s in again.shards)
    return again


def test_overlapping_or_foreign_shard_state_is_refused_before_any_work(client: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    Job(build_j12_graph(), j12_generators(), 4_500, output_dir=out).run(row_groups=range(0, 3))
    (out / "checkpoints" / "shard-00000002-00000005").mkdir()
    job = Job(build_j12_graph(), j12_generators(), 4_500, output_dir=out)
    with pytest.raises(OutputDirError, match=r"overlapping row groups \[0, 3\) and \[2, 5\)"):
        job.run(client=client)
    (out / "checkpoints" / "shard-00000002-00000005").rmdir()
    (out / "checkpoints" / "shard-00000005-00000009").mkdir()
    with pytest.raises(OutputDirError, match=r"\[5, 9\), outside this job's range\(0, 5\)"):
        job.run(client=client)
    assert sorted(OutputLayout(out).written_groups(0, 5)) == [0, 1, 2]  # nothing ran


def test_a_shard_lost_too_often_says_how_to_resume() -> None:
    from cellfrontier.job.run.cluster import _outcome

    class LostFuture:
        def result(self) -> Any:
            raise distributed.KilledWorker("cellfrontier-shard-x", None, 2)

    with pytest.raises(
        ShardLostError, match=r"\[3, 6\) lost 3 workers.*allowed-failures=2.*run the job again"
    ):
        _outcome(LostFuture(), range(3, 6))
