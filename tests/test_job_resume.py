"""Checkpoint and resume: SIGKILL, Ctrl-C and SIGTERM at chosen calls, then resume until done.

``job_worker.py`` runs J12 with an ``output_dir`` in a subprocess; its generators log every
call (``job_support.CallLog``) and stop the process at a call number drawn from a seeded plan.
Checkpoints come every few hundred completed tasks, never by time, so where they land depends
on the code alone.  Before each run the test reads what the directory holds as done (written
row-group files plus the checkpoint's completed cells), and afterwards checks that

* the run called no generator for a task the directory held as done at its start;
* the final output is exactly J12's formulas, every row once;
* every task ran at least once, and (Ctrl-C / SIGTERM with plain generators, where the job
  finishes the batch in hand before checkpointing) exactly once over all runs.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from job_support import CallLog, LoggedCell, all_tasks, held_cells, logged_j12, read_calls

from cellfrontier import ErrorRateExceededError, Job, OutputDirError, StaleShardError
from cellfrontier.job import OutputLayout, latest_checkpoint
from cellfrontier.job.store.fencing import ShardClaim, claim_epoch
from cellfrontier.job.store.shard_checkpoint import save_checkpoint
from cellfrontier.testing.j12 import build_j12_graph, check_j12_output, j12_generators

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytestmark = [pytest.mark.process, pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")]

WORKER = Path(__file__).with_name("job_worker.py")
ROWS = 4500  # five row groups, the last one short
CHECKPOINT_EVERY = 700
TOTAL_CALLS = sum(all_tasks(ROWS).values())


def run_worker(
    out: Path, log: Path, act_at: int | None = None, action: str = "kill", *, async_cells: bool = False
):
    command = [sys.executable, str(WORKER), str(out), str(log), str(ROWS), str(CHECKPOINT_EVERY)]
    if act_at is not None:
        command += ["--act-at", str(act_at), "--action", action]
    if async_cells:
        command.append("--async")
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def output_data(out: Path) -> dict[str, list[Any]]:
    layout = OutputLayout(out)
    written = layout.written_groups(0, 10)
    table = pa.concat_tables([pq.read_table(written[rg]) for rg in sorted(written)])
    return {name: table.column(name).to_pylist() for name in table.column_names}


def check_runs(log: Path, held_at_start: list[set[tuple[str, int]]]) -> Counter[tuple[str, int]]:
    """No run recomputed what its start held; every task ran; returns calls per task."""
    runs = read_calls(log)
    assert len(runs) == len(held_at_start)
    for number, (calls, held) in enumerate(zip(runs, held_at_start, strict=True)):
        again = held.intersection(calls)
        assert not again, (
            f"run {number} recomputed {len(again)} tasks the directory held, e.g. {sorted(again)[:3]}"
        )
    counts = Counter(call for calls in runs for call in calls)
    assert set(counts) == set(all_tasks(ROWS))
    return counts


@pytest.mark.parametrize(
    ("seed", "async_cells"), [(11, False), (12, False), (13, True)], ids=["plain-11", "plain-12", "async-13"]
)
def test_sigkill_at_planned_calls_then_resume(tmp_path: Path, seed: int, async_cells: bool) -> None:
    out, log = tmp_path / "out", tmp_path / "calls"
    plan = random.Random(seed)
    held_at_start: list[set[tuple[str, int]]] = []
    kills = 0
    for _ in range(3):
        held_at_start.append(held_cells(out, ROWS) if out.exists() else set())
        proc = run_worker(out, log, plan.randrange(1, TOTAL_CALLS // 3), "kill", async_cells=async_cells)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        kills += 1
    held_at_start.append(held_cells(out, ROWS))
    final = run_worker(out, log, async_cells=async_cells)
    assert final.returncode == 0, final.stderr
    assert kills >= 2
    counts = check_runs(log, held_at_start)
    assert max(counts.values()) <= kills + 1
    check_j12_output(output_data(out), ROWS)
    assert not list((out / "data").glob(".*.tmp"))


@pytest.mark.parametrize("action", ["sigint", "sigterm"])
def test_ctrl_c_and_sigterm_checkpoint_everything_done(tmp_path: Path, action: str) -> None:
    out, log = tmp_path / "out", tmp_path / "calls"
    stopped = run_worker(out, log, 9_001, action)
    if action == "sigint":
        assert stopped.returncode == 130 and "interrupted" in stopped.stdout, stopped.stderr
    else:
        assert stopped.returncode == -signal.SIGTERM, stopped.stderr
    held = held_cells(out, ROWS)
    assert len(held) >= 9_001  # everything computed before the stop was checkpointed
    resumed = run_worker(out, log)
    assert resumed.returncode == 0, resumed.stderr
    counts = check_runs(log, [set(), held])
    assert set(counts.values()) == {1}  # plain generators: nothing ran twice
    check_j12_output(output_data(out), ROWS)


def test_ctrl_c_with_async_generators_reruns_only_what_was_in_flight(tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "calls"
    stopped = run_worker(out, log, 5_000, "sigint", async_cells=True)
    assert stopped.returncode == 130, stopped.stderr
    held = held_cells(out, ROWS)
    resumed = run_worker(out, log, async_cells=True)
    assert resumed.returncode == 0, resumed.stderr
    counts = check_runs(log, [set(), held])
    assert sum(n - 1 for n in counts.values()) <= 7 * 7  # at most the calls in flight (caps of 7)
    check_j12_output(output_data(out), ROWS)


class StopAt(LoggedCell):
    """A logged cell generator that raises once, at its first call from the log's call *call* on."""

    def __init__(self, name: str, fn: Any, log: CallLog, call: int) -> None:
        super().__init__(name, fn, log)
        self.call = call
        self.fired = False

    def __call__(self, row: dict[str, Any]) -> Any:
        if not self.fired and self.log.calls + 1 >= self.call:
            self.fired = True
            raise ConnectionError("stop here")
        return super().__call__(row)


def _stop_at(out: Path, call: int, tmp_path: Path) -> dict[str, Any]:
    """Run J12 in this process until call *call* fails and stops the job; returns its generators.

    The failure stops the job at once (``max_error_rate=0``), which checkpoints first.  The
    generators keep their identities (``job_support:LoggedCell``), so a resume may reuse them.
    """
    log = CallLog(tmp_path / "calls-inproc")
    generators = logged_j12(log)
    generators["code"] = StopAt("code", j12_generators()["code"], log, call)
    job = Job(
        build_j12_graph(), generators, ROWS, output_dir=out, retries=1, max_error_rate=0.0, min_error_sample=1
    )
    with pytest.raises(ErrorRateExceededError, match="generator calls failed"):
        job.run()
    return generators


def test_a_changed_graph_or_generator_set_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    generators = _stop_at(out, 3_000, tmp_path)
    graph = build_j12_graph()
    graph.add_column("extra", "cell_by_cell")
    with pytest.raises(OutputDirError, match="differs in the graph"):
        Job(graph, {**generators, "extra": generators["h"]}, ROWS, output_dir=out).run()
    swapped = {**generators, "label": j12_generators()["label"]}
    with pytest.raises(
        OutputDirError, match=r"the generators \('label': 'job_support:LoggedCell' -> '.*gen_label'\)"
    ):
        Job(build_j12_graph(), swapped, ROWS, output_dir=out).run()
    with pytest.raises(OutputDirError, match=r"num_records \(4500 -> 5000\)"):
        Job(build_j12_graph(), generators, 5000, output_dir=out).run()
    result = Job(build_j12_graph(), generators, ROWS, output_dir=out).run()
    assert result.resumed and result.dropped == 0
    check_j12_output(result.to_pydict(row_index=True), ROWS)


def test_a_foreign_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match="not empty and holds no cellfrontier job manifest"):
        Job(build_j12_graph(), j12_generators(), 10, output_dir=tmp_path).run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_overlapping_shard_checkpoints_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    Job(build_j12_graph(), j12_generators(), ROWS, output_dir=out).run(row_groups=range(0, 2))
    with pytest.raises(OutputDirError, match=r"shard of row groups \[0, 2\), which overlaps.*\[1, 5\)"):
        Job(build_j12_graph(), j12_generators(), ROWS, output_dir=out).run(row_groups=range(1, 5))


def test_a_run_stops_when_a_newer_attempt_claimed_its_shard(tmp_path: Path) -> None:
    out = tmp_path / "out"
    generators = _stop_at(out, 2_000, tmp_path)  # epoch 1 stops early; the run below is epoch 2
    layout = OutputLayout(out)
    directory = layout.shard_dir(0, 5)
    inner = j12_generators()["final"]
    newer: list[ShardClaim] = []
    files_at_claim: dict[str, bytes] = {}

    def final(row: dict[str, Any]) -> Any:
        if not newer:  # on the first call, a newer attempt claims the shard and saves a checkpoint
            newer.append(claim_epoch(directory, "another-attempt"))
            checkpoint = latest_checkpoint(layout, range(0, 5))
            assert checkpoint is not None
            checkpoint.attempt, checkpoint.epoch = "another-attempt", newer[0].epoch
            save_checkpoint(newer[0].checkpoint_path, checkpoint)
            files_at_claim.update({p.name: p.read_bytes() for p in directory.glob("epoch-*.ckpt")})
        return inner(row)

    generators["final"] = LoggedCell("final", final, generators["final"].log)  # same identity
    job = Job(build_j12_graph(), generators, ROWS, output_dir=out, checkpoint_every=100)
    with pytest.raises(StaleShardError, match=r"a newer attempt \(epoch 3\) claimed row groups \[0, 5\)"):
        job.run()
    assert "epoch-000003.ckpt" in files_at_claim
    assert {p.name: p.read_bytes() for p in directory.glob("epoch-*.ckpt")} == files_at_claim
    after = latest_checkpoint(layout, range(0, 5))
    assert after is not None and (after.attempt, after.epoch) == ("another-attempt", 3)
    generators["final"] = LoggedCell("final", inner, generators["final"].log)
    resumed = Job(build_j12_graph(), generators, ROWS, output_dir=out).run()  # epoch 4 takes over
    assert resumed.resumed and resumed.shards[0].epoch == 4
    check_j12_output(resumed.to_pydict(row_index=True), ROWS)
    assert [p.name for p in directory.glob("epoch-*.ckpt")] == ["epoch-000004.ckpt"]


def test_a_finished_job_runs_nothing_again(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = Job(build_j12_graph(), j12_generators(), ROWS, output_dir=out).run()
    again = Job(build_j12_graph(), j12_generators(), ROWS, output_dir=out).run()
    assert (again.tasks, again.records, again.dropped) == (0, ROWS, 0)
    assert again.table().equals(first.table())


def test_a_manifest_write_killed_midway_does_not_block_the_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".cellfrontier-job.json.abc123.tmp").write_text("{")
    result = Job(build_j12_graph(), j12_generators(), 1500, output_dir=out).run()
    assert result.records == 1500
    assert not list(out.glob(".*.tmp"))


def test_inline_jobs_checkpoint_on_schedule(tmp_path: Path) -> None:
    """Plain generators admit a group on almost every round; each round still checks for a save.

    With ``checkpoint_every=1`` a save is due after every round that completed a task, so a
    job of ten groups admitted one at a time saves at least once per group.
    """
    out = tmp_path / "out"
    groups = 10
    job = Job(
        build_j12_graph(),
        j12_generators(),
        groups * 100,
        buffer_size=100,
        output_dir=out,
        max_active_row_groups=1,
        checkpoint_every=1,
    )
    result = job.run()
    check_j12_output(result.to_pydict(row_index=True), groups * 100)
    checkpoint = latest_checkpoint(OutputLayout(out), range(0, groups))
    assert checkpoint is not None
    assert checkpoint.seq >= groups


def test_run_async_lets_other_coroutines_run(tmp_path: Path) -> None:
    """Inline work hands the event loop over now and then: a ticker runs during the job."""
    import asyncio

    ticks: list[int] = []
    calls = 0
    inner = j12_generators()["h"]

    def h(row: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        if calls % 2000 == 0:  # make sure the job outlasts a few of the loop's hand-overs
            import time

            time.sleep(0.03)
        return inner(row)

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(calls)
            await asyncio.sleep(0)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        generators = j12_generators()
        generators["h"] = h
        result = await Job(build_j12_graph(), generators, 20_000).run_async()
        stop.set()
        await task
        check_j12_output(result.to_pydict(row_index=True), 20_000)

    asyncio.run(main())
    assert any(0 < t < 20_000 for t in ticks), "the ticker never ran while the job did"
