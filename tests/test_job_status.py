"""Reading a job's output directory: checkpoint headers, liveness, rates and ETA, old formats.

The directories here are built file by file with the store's own functions (manifest, shard
directories, claims, checkpoints), with the checkpoints' clock and the processes' liveness
chosen by the test, so every figure :func:`read_job_status` reports is known in advance.
"""

from __future__ import annotations

import itertools
import json
import random
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from graph_support import make_graph

from cellfrontier import Job
from cellfrontier.commands.status import format_status
from cellfrontier.errors import InvalidArgumentError
from cellfrontier.job import GeneratorFailure, OutputDirError, OutputLayout
from cellfrontier.job.shard.group_ranges import GroupRanges
from cellfrontier.job.status import JobStatus
from cellfrontier.job.store import shard_checkpoint
from cellfrontier.job.store.fencing import claim_epoch, claim_path, epoch_checkpoint_path
from cellfrontier.job.store.manifest import prepare_output_dir
from cellfrontier.job.store.shard_checkpoint import (
    ShardCheckpoint,
    load_checkpoint,
    read_checkpoint_header,
    save_checkpoint,
)
from cellfrontier.job.store.shard_dirs import register_shards
from cellfrontier.job.store.status_reader import (
    ShardFiles,
    read_job_status,
    read_shard_files,
    summarize_shard,
)

ROWS, BUFFER = 5000, 1000  # five groups: two cell columns and one full column
VERSION_2_FIELDS = (
    *("first", "stop", "seq", "epoch", "attempt", "job", "records", "dropped", "final"),
    *("payload_bytes", "payload_sha256"),
)


def generate(row: dict[str, Any]) -> str:
    return "x"


def judge(batch: dict[str, Any]) -> list[int]:
    return [1] * len(batch["_row"])


def make_job(output_dir: Path) -> Job:
    graph = make_graph(
        [("topic", "cell_by_cell"), ("answer", "cell_by_cell"), ("judge", "full_column")],
        [("topic", "answer"), ("answer", "judge")],
    )
    return Job(graph, {"topic": generate, "answer": generate, "judge": judge}, ROWS, output_dir=output_dir)


def tasks_of(groups: range) -> int:
    return len(groups) * BUFFER * 2 + len(groups)


@pytest.fixture
def layout(tmp_path: Path) -> OutputLayout:
    """A job's directory with its manifest and two registered shards, ``[0, 2)`` and ``[2, 5)``."""
    layout = OutputLayout(tmp_path / "out")
    prepare_output_dir(layout, make_job(layout.root).fingerprint())
    register_shards(layout, [range(0, 2), range(2, 5)])
    return layout


def digest(layout: OutputLayout) -> str:
    from cellfrontier.job.store.manifest import job_digest

    return job_digest(json.loads(layout.manifest_path.read_text()))


def claim(layout: OutputLayout, shard: range, **record: Any) -> int:
    """Claim the next epoch of *shard*; *record* replaces fields of its claim file (host, pid, time)."""
    directory = layout.shard_dir(shard.start, shard.stop)
    epoch = claim_epoch(directory, "attempt").epoch
    if record:
        path = claim_path(directory, epoch)
        path.write_text(json.dumps({**json.loads(path.read_text()), **record}))
    return epoch


def save(
    layout: OutputLayout,
    monkeypatch: pytest.MonkeyPatch,
    shard: range,
    epoch: int,
    saved_at: float,
    *,
    job: str | None = None,
    groups: tuple[int, ...] = (),
    **stats: Any,
) -> None:
    """Save a checkpoint of *shard* at the wall-clock time *saved_at* (payload: an empty tracker)."""
    checkpoint = ShardCheckpoint(
        first=shard.start,
        stop=shard.stop,
        seq=1,
        attempt="attempt",
        tracker=b"",
        epoch=epoch,
        job=digest(layout) if job is None else job,
        groups={rg: {} for rg in groups},
        stats={"interval": 5.0, "tasks_total": tasks_of(shard), **stats},
    )
    with monkeypatch.context() as clock:
        clock.setattr(shard_checkpoint, "time", SimpleNamespace(time=lambda: saved_at))
        save_checkpoint(epoch_checkpoint_path(layout.shard_dir(shard.start, shard.stop), epoch), checkpoint)


def write_group(layout: OutputLayout, rg: int, rows: int = BUFFER) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    layout.data_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"_row": list(range(rg * BUFFER, rg * BUFFER + rows))}), layout.part_path(rg))


def always(answer: bool) -> Any:
    return lambda pid: answer


# ---------------------------------------------------------------------- rates, ETA, totals


def test_rates_come_from_two_observations_and_the_eta_from_the_live_shards(
    layout: OutputLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = range(0, 2), range(2, 5)
    save(layout, monkeypatch, a, claim(layout, a), 1010.0, tasks=1000, started_tasks=200, started_at=1000.0)
    save(layout, monkeypatch, b, claim(layout, b), 1005.0, tasks=500, started_tasks=0, started_at=1000.0)
    status = read_job_status(layout.root, now=1012.0, running=always(True))
    rates = [shard.tasks_per_second for shard in status.shards]
    assert rates == [80.0, 100.0]  # (1000 - 200) / 10 s, 500 / 5 s
    assert status.tasks_per_second == 180.0
    assert status.eta_seconds == ((tasks_of(a) - 1000) + (tasks_of(b) - 500)) / 180.0
    assert [shard.checkpoint_age for shard in status.shards] == [2.0, 7.0]
    stalled = read_job_status(layout.root, now=1012.0, running=lambda pid: False)
    assert stalled.tasks_per_second is None and stalled.eta_seconds is None  # nothing runs: no ETA
    assert {shard.state for shard in stalled.shards} == {"stale"}


def test_a_single_observation_gives_no_rate(layout: OutputLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    a = range(0, 2)
    save(layout, monkeypatch, a, claim(layout, a), 1010.0, tasks=700, started_tasks=700, started_at=1000.0)
    status = read_job_status(layout.root, now=1011.0, running=always(True))
    assert status.shards[0].tasks_per_second is None and status.eta_seconds is None


def test_rows_add_the_groups_written_since_the_checkpoint_from_their_files(
    layout: OutputLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = range(2, 5)
    write_group(layout, 2, rows=990)
    write_group(layout, 3, rows=1000)  # written after the save below: not in its counts
    counts = {"records": 990, "dropped": 10, "counted_groups": [[2, 3]], "tasks": 2100}
    save(layout, monkeypatch, b, claim(layout, b), 50.0, groups=(3, 4), **counts)
    shard = read_job_status(layout.root, now=51.0, running=always(True)).shards[-1]
    assert (shard.rows_done, shard.rows_dropped) == (1990, 10)
    assert (shard.groups_written, shard.groups_active, shard.groups_pending) == (2, 1, 0)
    write_group(layout, 4, rows=1000)
    status = read_job_status(layout.root, now=51.0, running=always(True))
    assert (status.shards[-1].rows_done, status.shards[-1].groups_active) == (2990, 0)
    assert (status.rows_done, status.groups_written, status.groups_pending) == (2990, 3, 2)


def test_not_started_shards_and_the_ranges_no_shard_covers(tmp_path: Path) -> None:
    layout = OutputLayout(tmp_path / "out")
    prepare_output_dir(layout, make_job(layout.root).fingerprint())
    register_shards(layout, [range(1, 3)])
    status = read_job_status(layout.root)
    summary = [(s.row_groups, s.registered, s.state, s.detail) for s in status.shards]
    assert summary == [
        (range(0, 1), False, "not started", "in no shard yet"),
        (range(1, 3), True, "not started", "not claimed yet"),
        (range(3, 5), False, "not started", "in no shard yet"),
    ]
    assert (status.state, status.groups_pending, status.rows_done) == ("not started", 5, 0)
    assert [s.tasks_total for s in status.shards] == [tasks_of(range(n)) for n in (1, 2, 2)]


# ---------------------------------------------------------------------- liveness


@pytest.mark.parametrize(
    ("record", "running", "now", "state", "detail"),
    [
        ({}, True, 1001.0, "live", "last checkpoint 1 s ago; process"),
        ({}, False, 1001.0, "stale", "no checkpoint for 1 s; process"),
        ({"host": "elsewhere"}, False, 1014.0, "live", "last checkpoint 14 s ago"),
        ({"host": "elsewhere"}, True, 1016.0, "stale", "no checkpoint for 16 s; claimed on elsewhere"),
    ],
)
def test_a_shard_looks_live_by_its_process_here_and_by_time_elsewhere(
    layout: OutputLayout,
    monkeypatch: pytest.MonkeyPatch,
    record: dict[str, Any],
    running: bool,
    now: float,
    state: str,
    detail: str,
) -> None:
    a = range(0, 2)
    save(layout, monkeypatch, a, claim(layout, a, **record), 1000.0, tasks=10)  # interval 5 s: live < 15 s
    shard = read_job_status(layout.root, now=now, running=always(running)).shards[0]
    assert (shard.state, shard.detail[: len(detail)]) == (state, detail)


def test_a_claim_newer_than_the_checkpoint_is_an_attempt_starting(
    layout: OutputLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = range(0, 2)
    save(layout, monkeypatch, a, claim(layout, a, host="elsewhere"), 900.0, tasks=10)
    claim(layout, a, host="elsewhere", claimed_at=1000.0)
    fresh = read_job_status(layout.root, now=1004.0).shards[0]
    assert (fresh.state, fresh.detail, fresh.epoch, fresh.claimed_epoch) == (
        "live",
        "claimed 4 s ago, no checkpoint yet",
        1,
        2,
    )
    old = read_job_status(layout.root, now=1100.0).shards[0]
    assert (old.state, old.detail) == ("stale", "claimed 100 s ago, no checkpoint yet; claimed on elsewhere")


def test_finished_needs_a_final_checkpoint_every_file_and_this_job(
    layout: OutputLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = range(0, 2)
    save(layout, monkeypatch, a, claim(layout, a), 10.0, final=1, records=2000)
    write_group(layout, 0)
    assert read_job_status(layout.root, now=11.0, running=always(False)).shards[0].state == "stale"
    write_group(layout, 1)
    shard = read_job_status(layout.root, now=11.0, running=always(True)).shards[0]
    assert (shard.state, shard.detail, shard.rows_done) == ("finished", "all 2 row groups written", 2000)
    save(layout, monkeypatch, a, claim(layout, a), 12.0, final=1, records=2000, job="0123456789abcdef")
    foreign = read_job_status(layout.root, now=13.0, running=always(False)).shards[0]
    assert foreign.state == "stale"
    assert foreign.problem == "its checkpoint was written by another job (digest '0123456789abcdef')"


# ---------------------------------------------------------------------- formats


def test_a_version_2_header_is_still_read(layout: OutputLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    a = range(0, 2)
    epoch = claim(layout, a)
    save(layout, monkeypatch, a, epoch, 10.0, records=1000, dropped=3, tasks=5)
    path = epoch_checkpoint_path(layout.shard_dir(0, 2), epoch)
    raw = path.read_bytes()
    (length,) = struct.unpack(">I", raw[8:12])
    header = json.loads(raw[12 : 12 + length])
    old = {key: header[key] for key in VERSION_2_FIELDS} | {"version": 2}
    text = json.dumps(old).encode()
    path.write_bytes(raw[:8] + struct.pack(">I", len(text)) + text + raw[12 + length :])
    assert read_checkpoint_header(path) == old
    loaded = load_checkpoint(path)
    assert loaded is not None and loaded.stats["records"] == 1000
    shard = read_job_status(layout.root, running=always(False)).shards[0]
    assert (shard.rows_done, shard.rows_dropped, shard.tasks, shard.tasks_per_second) == (1000, 3, None, None)
    assert shard.checkpoint_age is not None  # from the file's modification time
    assert shard.tasks_total == tasks_of(a)


def test_the_header_summary_stays_small_whatever_the_shard_holds(
    layout: OutputLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = range(0, 2)
    samples = [
        GeneratorFailure("topic", 0, i, 1, "ValueError", "m" * 10_000, "trace", "pipeline.py:3 in topic")
        for i in range(50)
    ]
    epoch = claim(layout, a)
    save(layout, monkeypatch, a, epoch, 10.0, errors=50, error_samples=[s.to_record() for s in samples])
    path = epoch_checkpoint_path(layout.shard_dir(0, 2), epoch)
    header = read_checkpoint_header(path)
    assert header is not None and len(header["error_samples"]) == 5
    assert {len(s["message"]) for s in header["error_samples"]} == {300}
    assert struct.unpack(">I", path.read_bytes()[8:12])[0] < 4000
    status = read_job_status(layout.root, running=always(False))
    assert status.errors == 50 and len(status.error_samples) == 5
    assert status.error_samples[0].origin == "pipeline.py:3 in topic"
    assert status.error_samples[0].message.endswith("...")


def test_an_unreadable_checkpoint_is_reported_not_raised(layout: OutputLayout) -> None:
    a = range(0, 2)
    epoch = claim(layout, a)
    epoch_checkpoint_path(layout.shard_dir(0, 2), epoch).write_bytes(b"CFJOBCK\n\x00\x00\x00\x05{bad}")
    shard = read_job_status(layout.root, running=always(False)).shards[0]
    assert shard.state == "stale" and shard.problem is not None and "corrupted header" in shard.problem


def test_usage_counters_are_summed_per_column() -> None:
    job = read_description()
    header = {"epoch": 1, "job": job.fingerprint, "records": 0, "dropped": 0}
    usage_a = {"answer": {"calls": 10, "prompt_tokens": 100}, "judge": {"calls": 1}}
    usage_b = {"answer": {"calls": 5, "prompt_tokens": 40}}
    shards = tuple(
        summarize_shard(
            job,
            ShardFiles(groups, True, header={**header, "usage": usage}),
            {},
            now=0.0,
            host="here",
            running=always(False),
        )
        for groups, usage in ((range(0, 2), usage_a), (range(2, 5), usage_b))
    )
    status = JobStatus(Path("out"), job, shards, 0.0)
    assert status.usage == {"answer": {"calls": 15, "prompt_tokens": 140}, "judge": {"calls": 1}}
    assert json.loads(json.dumps(status.to_json()))["usage"] == status.usage
    assert "    answer: calls 15, prompt_tokens 140\n    judge: calls 1\n" in format_status(status)


def read_description() -> Any:
    from cellfrontier.job.store.status_reader import describe_manifest

    return describe_manifest(make_job(Path("out")).fingerprint())


def test_a_manifest_that_is_not_a_jobs_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cellfrontier-job.json").write_text('{"format": "something else"}')
    with pytest.raises(OutputDirError, match="not a cellfrontier job manifest"):
        read_job_status(tmp_path)
    (tmp_path / "cellfrontier-job.json").write_text('{"format": "cellfrontier-job", "graph": {}}')
    with pytest.raises(OutputDirError, match="the job manifest cannot be read: KeyError"):
        read_job_status(tmp_path)


def test_reading_a_shard_without_files_changes_nothing(layout: OutputLayout) -> None:
    before = sorted(p.name for p in layout.root.rglob("*"))
    files = read_shard_files(layout, range(0, 2), True)
    assert (files.claim, files.header, files.problem) == (None, None, None)
    read_job_status(layout.root)
    assert sorted(p.name for p in layout.root.rglob("*")) == before


# ---------------------------------------------------------------------- the values behind them


def test_failures_keep_where_they_were_raised_and_survive_their_record() -> None:
    def generator() -> None:
        raise ValueError("no answer")

    try:
        generator()
    except ValueError as exc:
        failure = GeneratorFailure.from_exception("answer", 2, 2017, 1, exc)
    assert failure.origin.endswith(
        f"{Path(__file__).name}:{generator.__code__.co_firstlineno + 1} in generator"
    )
    again = GeneratorFailure.from_record(json.loads(json.dumps(failure.to_record())))
    assert str(again) == str(failure) == "'answer' at row 2017 (attempt 1): ValueError: no answer"
    assert (again.origin, again.traceback) == (failure.origin, "")


def test_group_ranges_hold_the_same_groups_as_a_set() -> None:
    rng = random.Random(7)
    for _ in range(200):
        ranges, oracle = GroupRanges(), set()
        for rg in (rng.randrange(40) for _ in range(rng.randrange(60))):
            ranges.add(rg)
            oracle.add(rg)
        pairs = ranges.pairs()
        assert {rg for a, b in pairs for rg in range(a, b)} == oracle
        assert all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(pairs))  # disjoint, apart
        assert len(ranges) == len(pairs)


def test_replace_keeps_every_option_and_checks_the_changes(tmp_path: Path) -> None:
    job = make_job(tmp_path / "a")
    job2 = Job(
        job.graph,
        job.generators,
        7,
        buffer_size=3,
        max_active_row_groups=2,
        concurrency={"answer": 3},
        max_concurrency=9,
        retries=4,
        retry_backoff=0.25,
        max_retry_backoff=2.0,
        max_error_rate=0.5,
        min_error_sample=11,
        keep_errors=2,
        output_dir=tmp_path / "b",
        checkpoint_interval=1.5,
        checkpoint_every=13,
        memory_budget=1 << 20,
        progress=print,
        progress_bar=False,
        progress_interval=0.1,
        log_interval=3.0,
        tune_gc=False,
    )
    same = job2.replace()
    assert vars(same).keys() == vars(job2).keys()
    for name, value in vars(job2).items():
        if not name.startswith("_"):
            assert getattr(same, name) == value, name
    changed = job2.replace(num_records=70, output_dir=tmp_path / "c")
    assert (changed.num_records, changed.output_dir, changed.retries) == (70, tmp_path / "c", 4)
    with pytest.raises(InvalidArgumentError, match=r"Job.replace\(\) got unknown option\(s\) \['rows'\]"):
        job2.replace(rows=3)
    with pytest.raises(InvalidArgumentError, match="num_records"):
        job2.replace(num_records=-1)
