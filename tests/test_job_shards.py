"""Shards on disk, without a cluster: cutting and registration, attempt epochs, stale attempts.

Every interleaving here is chosen by step: a generator acts at its N-th call (stops the job,
or runs a second attempt of the same shard to the end before answering), never by clock.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from job_support import needs_pyarrow

from cellfrontier import (
    CheckpointError,
    ErrorRateExceededError,
    InvalidArgumentError,
    Job,
    OutputDirError,
    StaleShardError,
)
from cellfrontier._durable import create_once
from cellfrontier.job import OutputLayout, latest_checkpoint, merged_job_state, shard_states
from cellfrontier.job.output import OutputLayout as Layout
from cellfrontier.job.progress import JobProgress
from cellfrontier.job.run.progress_board import ProgressBoard, ShardBaseline
from cellfrontier.job.run.shard_cut import cut_range, cut_shards
from cellfrontier.job.store import shard_store as shard_store_module
from cellfrontier.job.store.fencing import claim_epoch, claimed_epochs
from cellfrontier.testing.j12 import build_j12_graph, check_j12_output, j12_generators

ROWS = 4_500  # five row groups of 1,000, the last one short


class StopAt:
    """``code``'s generator, acting once at its *at*-th call (None: never).

    By default it raises there, to stop a run; with *action* it calls that instead.
    """

    def __init__(self, at: int | None, action: Callable[[], None] | None = None) -> None:
        self.at, self.calls, self.action = at, 0, action
        self.inner = j12_generators()["code"]

    def __call__(self, row: dict[str, Any]) -> Any:
        self.calls += 1
        if self.calls == self.at:
            if self.action is None:
                raise ConnectionError("stop here")
            self.action()
        return self.inner(row)


def generators(at: int | None = None) -> dict[str, Any]:
    return {**j12_generators(), "code": StopAt(at)}


def stopping_job(out: Path, at: int | None, **options: Any) -> Job:
    """J12 whose run stops at ``code``'s call *at* (after checkpointing: ``max_error_rate=0``)."""
    return Job(
        build_j12_graph(),
        generators(at),
        ROWS,
        output_dir=out,
        retries=1,  # the failing call waits for a retry when the job stops: its row is not dropped
        max_error_rate=0.0,
        min_error_sample=1,
        checkpoint_every=100,
        **options,
    )


def test_cut_range_makes_contiguous_near_equal_shards() -> None:
    assert cut_range(range(0, 21), 8) == [
        range(0, 2),
        range(2, 5),
        range(5, 7),
        range(7, 10),
        range(10, 13),
        range(13, 15),
        range(15, 18),
        range(18, 21),
    ]
    assert cut_range(range(3, 5), 8) == [range(3, 4), range(4, 5)]
    assert cut_range(range(7, 8), 1) == [range(7, 8)]


def test_a_cut_keeps_the_registered_shards_and_cuts_the_gaps(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.shard_dir(10, 20).mkdir(parents=True)
    layout.shard_dir(30, 35).mkdir(parents=True)
    shards = cut_shards(layout, 100, new_shards=10)
    assert shards[:4] == [range(0, 10), range(10, 20), range(20, 30), range(30, 35)]
    assert shards[-1].stop == 100 and len(shards) == 10  # gaps cut in proportion: about 10 groups each
    assert all(a.stop == b.start for a, b in itertools.pairwise(shards))
    assert cut_shards(layout, 100, requested=range(10, 20)) == [range(10, 20)]
    assert cut_shards(layout, 100, requested=range(40, 50)) == [range(40, 50)]
    with pytest.raises(OutputDirError, match=r"\[10, 20\), which overlaps this run's \[15, 25\)"):
        cut_shards(layout, 100, requested=range(15, 25))


@needs_pyarrow
def test_a_local_run_finishes_every_shard_a_directory_holds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for shard, at in ((range(0, 2), 700), (range(2, 5), 1_500)):
        with pytest.raises(ErrorRateExceededError):
            stopping_job(out, at).run(row_groups=shard)
    result = stopping_job(out, None).run()
    assert result.records == ROWS and result.resumed
    assert [(s.row_groups, s.epoch, s.resumed) for s in result.shards] == [
        (range(0, 2), 2, True),
        (range(2, 5), 2, True),
    ]
    check_j12_output(result.to_pydict(row_index=True), ROWS)
    assert result.tasks < 7 * ROWS  # what the stopped runs checkpointed did not run again


@needs_pyarrow
def test_a_checkpoint_of_another_job_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    with pytest.raises(ErrorRateExceededError):
        Job(
            build_j12_graph(),
            generators(700),
            5_000,
            output_dir=other,
            retries=1,
            max_error_rate=0.0,
            min_error_sample=1,
        ).run()
    foreign = latest_checkpoint(Layout(other), range(0, 5))
    assert foreign is not None
    out = tmp_path / "out"
    with pytest.raises(ErrorRateExceededError):
        stopping_job(out, 700).run()
    directory = Layout(out).shard_dir(0, 5)
    (directory / "epoch-000005.ckpt").write_bytes(
        (Layout(other).shard_dir(0, 5) / "epoch-000001.ckpt").read_bytes()
    )
    with pytest.raises(CheckpointError, match="written by another job"):
        stopping_job(out, None).run()


@needs_pyarrow
def test_a_stale_attempt_cannot_overwrite_what_a_newer_one_wrote(tmp_path: Path) -> None:
    """Attempt 1 runs; at its 1,500th ``code`` call attempt 2 runs the same shard to the end.

    Attempt 1 then carries on until its next checkpoint, which it refuses to write: every file
    attempt 2 left (row groups, its final checkpoint) is untouched and the dataset is exact.
    """
    out = tmp_path / "out"
    layout = OutputLayout(out)
    after_second: dict[str, tuple[int, int, int]] = {}

    def files() -> dict[str, tuple[int, int, int]]:
        found = {}
        for path in [*layout.data_dir.glob("*"), *layout.shard_dir(0, 5).glob("*")]:
            if path.name.startswith("."):  # a temporary file of a write under way
                continue
            stat = path.stat()
            found[path.name] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        return found

    def run_a_second_attempt() -> None:
        second = threading.Thread(target=lambda: stopping_job(out, None).run())
        second.start()
        second.join(120)
        after_second.update(files())

    first = Job(
        build_j12_graph(),
        {**j12_generators(), "code": StopAt(1_500, run_a_second_attempt)},
        ROWS,
        output_dir=out,
        checkpoint_every=100,
    )
    with pytest.raises(StaleShardError, match=r"newer attempt \(epoch 2\).*\(epoch 1\)"):
        first.run()
    assert after_second and files() == after_second
    assert claimed_epochs(layout.shard_dir(0, 5)) == [1, 2]
    final = latest_checkpoint(layout, range(0, 5))
    assert final is not None and final.epoch == 2 and final.stats["final"]
    again = stopping_job(out, None).run()
    assert again.tasks == 0 and again.records == ROWS
    check_j12_output(again.to_pydict(row_index=True), ROWS)


@needs_pyarrow
def test_an_attempt_refuses_to_start_when_a_newer_one_claimed_the_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def claimed_twice(directory: Path, attempt: str) -> Any:
        mine = claim_epoch(directory, attempt)
        claim_epoch(directory, "a-newer-attempt")  # another attempt claims right after this one
        return mine

    monkeypatch.setattr(shard_store_module, "claim_epoch", claimed_twice)
    out = tmp_path / "out"
    with pytest.raises(StaleShardError, match="stops before starting"):
        Job(build_j12_graph(), j12_generators(), ROWS, output_dir=out).run()
    assert not list(OutputLayout(out).data_dir.glob("*.parquet"))


@needs_pyarrow
def test_shard_states_merge_into_the_whole_jobs_state(tmp_path: Path) -> None:
    out = tmp_path / "out"
    stopping_job(out, None).run(row_groups=range(0, 2))
    with pytest.raises(ErrorRateExceededError):
        stopping_job(out, 700).run(row_groups=range(2, 5))
    graph = build_j12_graph()
    states = shard_states(out, graph)
    assert sorted(states, key=lambda r: r.start) == [range(0, 2), range(2, 5)]
    columns = list(graph.get_topological_order())
    assert all(states[range(0, 2)].is_row_group_complete(rg, 1000, columns) for rg in (0, 1))
    under_way = states[range(2, 5)].active_row_groups()
    assert under_way  # stopped with a group under way

    merged = merged_job_state(out, graph)
    assert all(merged.is_row_group_complete(rg, 1000, columns) for rg in (0, 1))
    assert merged.active_row_groups() == under_way
    by_shard = [states[r].progress() for r in (range(0, 2), range(2, 5))]
    assert merged.progress() == {
        name: type(done)(done.completed + other.completed, done.dropped + other.dropped, done.total)
        for (name, done), other in zip(by_shard[0].items(), by_shard[1].values(), strict=True)
    }


def test_a_row_group_file_is_written_once(tmp_path: Path) -> None:
    path = tmp_path / "part-00000001.parquet"
    assert create_once(path, lambda handle: handle.write(b"first"))
    assert not create_once(path, lambda handle: handle.write(b"second"))
    assert path.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-00000001.parquet"]


def test_the_progress_board_sums_shards_and_ignores_older_attempts() -> None:
    board = ProgressBoard([ShardBaseline(1000, 7005, 1000, 0, 7005), ShardBaseline(500, 3505)])
    view = board.progress()
    assert (view.rows_total, view.rows_done, view.tasks, view.tasks_total_estimate) == (
        1500,
        1000,
        7005,
        10510,
    )
    snapshot = {"epoch": 3, "rows_done": 200, "rows_dropped": 5, "tasks": 1500, "tasks_run": 900}
    board.update(1, {**snapshot, "tasks_total_estimate": 3505, "active": 2, "errors": 1})
    board.update(1, {**snapshot, "epoch": 2, "rows_done": 0, "tasks": 0, "tasks_total_estimate": 3505})
    view = board.progress()
    assert isinstance(view, JobProgress)
    assert (view.rows_done, view.rows_dropped, view.tasks, view.active_row_groups, view.errors) == (
        1200,
        5,
        8505,
        2,
        1,
    )
    assert view.tasks_per_second > 0 and view.eta_seconds is not None


def test_an_attempt_removes_only_older_attempts_temporary_files(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.create()
    names = [
        ".part-00000001.parquet.e000001.x1.tmp",  # a killed older attempt's
        ".part-00000001.parquet.x2.tmp",  # untagged: whoever wrote it, it is no one's now
        ".part-00000002.parquet.e000003.x3.tmp",  # a newer attempt's write under way
        ".part-00000009.parquet.e000001.x4.tmp",  # another shard's
    ]
    for name in names:
        (layout.data_dir / name).write_bytes(b"")
    layout.remove_temporaries(0, 5, below_epoch=2)
    assert sorted(p.name for p in layout.data_dir.iterdir()) == sorted(names[2:])


@pytest.mark.process
def test_a_cluster_run_without_dask_installed_says_what_to_install(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from cellfrontier import Job, MissingDependencyError\n"
        "from cellfrontier.testing.j12 import build_j12_graph, j12_generators\n"
        f"job = Job(build_j12_graph(), j12_generators(), 1500, output_dir={str(tmp_path / 'out')!r})\n"
        "try:\n    job.run(client=object())\nexcept MissingDependencyError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "pip install 'cellfrontier[dask]'" in out.stdout
    assert not (tmp_path / "out").exists()  # refused before touching the directory


def test_cluster_runs_need_an_output_dir_and_sane_options() -> None:
    pytest.importorskip("distributed")
    job = Job(build_j12_graph(), j12_generators(), 1500)
    with pytest.raises(InvalidArgumentError, match="needs output_dir"):
        job.run(client=object())
    with pytest.raises(InvalidArgumentError, match="row_groups= is for local runs"):
        job.run(client=object(), row_groups=range(0, 1))
    with pytest.raises(InvalidArgumentError, match="needs client="):
        job.run(shards=4)
