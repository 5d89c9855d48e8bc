"""Caps that hold for the whole job on a cluster: each running shard's part, and ``run(workers=N)``.

The arithmetic (parts add up to the job's numbers, slots are distinct whatever order the
scheduler picks) is checked directly; a run on two worker processes is checked at the fake
endpoint, which records the peak in flight in total and per model.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cellfrontier import InvalidArgumentError, Job
from cellfrontier.job import JobSpec
from cellfrontier.job.columns import ColumnKind
from cellfrontier.job.run.caps import SlotPlan, local_slot
from cellfrontier.job.shard.caps import process_share, shared_cap, shared_columns
from cellfrontier.job.spec import CapShare
from cellfrontier.testing.j12 import CELL_COLUMNS, build_j12_graph, j12_lat_generators


@pytest.mark.parametrize("cap", [1, 2, 7, 10, 1024])
@pytest.mark.parametrize("slots", [1, 2, 3, 8])
def test_the_parts_of_the_running_shards_add_up_to_the_cap(cap: int, slots: int) -> None:
    parts = [CapShare(slot, slots).of(cap) for slot in range(slots)]
    assert min(parts) >= 1 and max(parts) - min(parts) <= 1
    assert sum(parts) == max(cap, slots)  # exact; at least 1 each when the cap is below the slots


def workers_info(*threads: int) -> dict[str, Any]:
    return {f"tcp://127.0.0.1:{4000 + i}": {"name": i, "nthreads": n} for i, n in enumerate(threads)}


def test_with_more_shards_than_threads_a_slot_is_the_workers_plus_its_local_one() -> None:
    plan = SlotPlan.for_cluster(workers_info(2, 1, 3), to_run=20)
    assert (plan.slots, plan.by_position) == (6, False)
    shares = {plan.share(0, str(w), local) for w, n in enumerate((2, 1, 3)) for local in range(n)}
    assert shares == {CapShare(slot, 6) for slot in range(6)}  # every thread its own slot
    # The position does not matter: any shard on worker 2's second thread gets slot 4.
    assert {plan.share(p, "2", 1) for p in range(20)} == {CapShare(4, 6)}


def test_with_no_more_shards_than_threads_a_slot_is_the_shards_position() -> None:
    plan = SlotPlan.for_cluster(workers_info(4, 4), to_run=3)
    assert (plan.slots, plan.by_position) == (3, True)
    assert [plan.share(p, "1", 2) for p in range(3)] == [CapShare(p, 3) for p in range(3)]


def test_a_worker_that_joined_later_takes_the_smallest_part_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = SlotPlan.for_cluster(workers_info(1, 1), to_run=8)
    assert plan.share(0, "new-worker", 0) == CapShare(1, 2)
    assert "joined after the job started" in caplog.text


def test_local_slots_are_the_lowest_free_ones() -> None:
    with local_slot() as first, local_slot() as second:
        assert (first, second) == (0, 1)
        with local_slot() as third:
            assert third == 2
    with local_slot() as again:
        assert again == 0


def spec_of(job: Job, share: CapShare | None) -> JobSpec:
    return dataclasses.replace(job.spec(), cap_share=share)


def test_a_shard_with_a_part_divides_every_off_loop_cap() -> None:
    job = Job(build_j12_graph(), j12_lat_generators(0.001), 100, concurrency={"h": 5}, max_concurrency=11)
    spec = spec_of(job, CapShare(1, 2))
    columns = shared_columns(spec.columns, spec.cap_share)
    caps = {c.name: c.cap for c in columns if c.kind is ColumnKind.ASYNC}
    assert caps == {"h": 2} | dict.fromkeys(set(CELL_COLUMNS) - {"h"}, 32)  # 5 -> 3 + 2; 64 -> 32 + 32
    assert all(c.cap == 1 for c in columns if c.kind is ColumnKind.INLINE)
    assert shared_cap(11, CapShare(1, 2)) == 5 and shared_cap(None, CapShare(0, 2)) is None
    assert shared_columns(spec.columns, None) == spec.columns


class Capped:
    """A generator with a per-process cap of its own: records what the job told it."""

    def __init__(self) -> None:
        self.told: list[Callable[[int], int] | None] = []

    async def __call__(self, row: Any) -> int:
        return 0

    def share_caps(self, share: Callable[[int], int] | None) -> None:
        self.told.append(share)


def test_generators_are_told_the_part_of_the_shards_running_in_their_process() -> None:
    capped = Capped()
    job = Job(build_j12_graph(), {**j12_lat_generators(0.001), "h": capped}, 100)
    columns = job.spec().columns
    with process_share(columns, CapShare(0, 3)):  # 10 -> 4 + 3 + 3
        assert capped.told[-1] is not None and capped.told[-1](10) == 4
        with process_share(columns, CapShare(2, 3)):
            assert capped.told[-1] is not None and capped.told[-1](10) == 7  # two shards here
        assert capped.told[-1] is not None and capped.told[-1](10) == 4
    assert capped.told[-1] is None  # nothing with a part runs: the whole cap again
    with process_share(columns, None):
        pass
    assert len(capped.told) == 4  # a shard without a part tells nothing


def test_run_on_workers_needs_an_output_dir_and_no_client() -> None:
    job = Job(build_j12_graph(), j12_lat_generators(0.001), 100)
    with pytest.raises(InvalidArgumentError, match="needs output_dir"):
        job.run(workers=2)
    with pytest.raises(InvalidArgumentError, match="neither client= nor row_groups="):
        job.run(workers=2, row_groups=range(0, 1))
    with pytest.raises(InvalidArgumentError, match="workers"):
        Job(build_j12_graph(), j12_lat_generators(0.001), 100, output_dir="x").run(workers=0)


@pytest.mark.process
@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX processes")
def test_on_two_worker_processes_the_caps_hold_for_the_whole_job(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    pytest.importorskip("httptools")
    pytest.importorskip("pyarrow")
    from cellfrontier.testing.fake_endpoint import FakeEndpoint
    from cellfrontier.testing.j12_llm import check_j12_llm_output, j12_llm_generators, j12_llm_model_id

    rows = 800
    with FakeEndpoint(latency_scale=0.2) as endpoint:
        job = Job(
            build_j12_graph(),
            j12_llm_generators(endpoint.base_url, max_concurrency=5),  # per model: 3 + 2
            rows,
            buffer_size=100,
            concurrency=dict.fromkeys(CELL_COLUMNS, 8) | {"h": 3},  # h: 2 + 1
            max_concurrency=10,  # 5 + 5
            output_dir=tmp_path / "out",
            progress_bar=False,
        )
        result = job.run(workers=2)
        stats = endpoint.stats()
    check_j12_llm_output(result.to_pydict(row_index=True), rows)
    assert len(result.shards) == 8 and len({s.worker for s in result.shards}) == 2
    assert stats.peak_in_flight <= 10
    assert stats.peak_in_flight_by_model[j12_llm_model_id("h")] <= 3
    assert max(stats.peak_in_flight_by_model.values()) <= 5
    assert result.usage.calls == stats.answered == 7 * rows
    assert result.usage.total["prompt_tokens"] == stats.prompt_tokens


@pytest.mark.process
@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX processes")
def test_local_workers_take_no_fixed_port(tmp_path: Path) -> None:
    """With 8787 (the usual dashboard port) held, ``run(workers=N)`` still runs and warns of no port."""
    pytest.importorskip("distributed")
    pytest.importorskip("pyarrow")
    import socket
    import warnings

    from cellfrontier.testing.j12 import check_j12_output, j12_generators

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))  # already taken by something else: the same situation
        holder.listen()
    except OSError:
        pass
    try:
        job = Job(build_j12_graph(), j12_generators(), 300, buffer_size=100, output_dir=tmp_path / "out")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = job.run(workers=1)
    finally:
        holder.close()
    check_j12_output(result.to_pydict(row_index=True), 300)
    assert [str(w.message) for w in caught if "port" in str(w.message).lower()] == []
