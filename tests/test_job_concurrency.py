"""Concurrency caps are never exceeded (counted inside the generators) and admission stays bounded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import pytest
from job_support import needs_pyarrow

from cellfrontier import Job, blocking
from cellfrontier.job import AdmissionView, CapsAdmission, FixedAdmission, MemoryBoundAdmission
from cellfrontier.testing.j12 import CELL_COLUMNS, build_j12_graph, check_j12_output, j12_generators

pytestmark = pytest.mark.process


class InFlight:
    """Counts calls in flight per column and in all, keeping the maxima."""

    def __init__(self) -> None:
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.lock = threading.Lock()

    def enter(self, column: str) -> None:
        with self.lock:
            self.now[column] += 1
            self.now["*"] += 1
            for key in (column, "*"):
                self.peak[key] = max(self.peak[key], self.now[key])

    def leave(self, column: str) -> None:
        with self.lock:
            self.now[column] -= 1
            self.now["*"] -= 1


def _counted_async(name: str, fn: Any, inflight: InFlight, pauses: int) -> Any:
    async def call(row: dict[str, Any]) -> Any:
        inflight.enter(name)
        try:
            for _ in range(1 + row["_row"] % pauses):  # calls finish out of order
                await asyncio.sleep(0)
            return fn(row)
        finally:
            inflight.leave(name)

    return call


def test_async_caps_per_column_and_in_all_hold() -> None:
    inflight = InFlight()
    generators = j12_generators()
    for name in CELL_COLUMNS:
        generators[name] = _counted_async(name, generators[name], inflight, pauses=4)
    caps = {"h": 5, "bucket": 9, "code": 40, "label": 40, "total": 40, "sig": 40, "final": 40}
    result = Job(
        build_j12_graph(), generators, 3500, concurrency=caps, max_concurrency=60, progress_bar=False
    ).run()
    check_j12_output(result.to_pydict(row_index=True), 3500)
    for name, cap in caps.items():
        assert inflight.peak[name] <= cap, name
    assert inflight.peak["*"] <= 60
    assert inflight.peak["h"] == 5  # 1,000 rows are ready at once: the cap is what bounds them


def test_blocking_caps_hold() -> None:
    inflight = InFlight()
    generators = j12_generators()
    code, sig = generators["code"], generators["sig"]

    def make(name: str, fn: Any) -> Any:
        @blocking(batch_size=4)
        def call(row: dict[str, Any]) -> Any:
            inflight.enter(name)
            try:
                time.sleep(0.0002)
                return fn(row)
            finally:
                inflight.leave(name)

        return call

    generators["code"], generators["sig"] = make("code", code), make("sig", sig)
    result = Job(
        build_j12_graph(), generators, 1500, concurrency={"code": 3, "sig": 2}, progress_bar=False
    ).run()
    check_j12_output(result.to_pydict(row_index=True), 1500)
    assert inflight.peak["code"] <= 3 and inflight.peak["sig"] <= 2 and inflight.peak["*"] <= 5


@needs_pyarrow
def test_inline_jobs_compute_one_group_at_a_time_by_default(tmp_path) -> None:
    result = Job(build_j12_graph(), j12_generators(), 5500, output_dir=tmp_path / "o").run()
    assert result.peak_active_row_groups == 1
    assert result.peak_held_row_groups <= 1 + 4  # plus finished groups waiting for the writer


def test_fixed_admission_is_a_bound() -> None:
    generators = j12_generators()
    for name in CELL_COLUMNS:
        generators[name] = _counted_async(name, generators[name], InFlight(), pauses=2)
    job = Job(
        build_j12_graph(), generators, 2500, buffer_size=500, max_active_row_groups=2, progress_bar=False
    )
    result = job.run()
    assert result.peak_active_row_groups == 2
    check_j12_output(result.to_pydict(row_index=True), 2500)


def test_adaptive_admission_is_bounded_by_the_memory_budget() -> None:
    generators = j12_generators()
    for name in CELL_COLUMNS:
        generators[name] = _counted_async(name, generators[name], InFlight(), pauses=3)
    job = Job(build_j12_graph(), generators, 2500, buffer_size=500, memory_budget=1, progress_bar=False)
    result = job.run()
    assert result.peak_active_row_groups == 1
    check_j12_output(result.to_pydict(row_index=True), 2500)


def test_adaptive_admission_admits_more_than_one_group_when_slots_idle() -> None:
    generators = j12_generators()
    for name in CELL_COLUMNS:
        generators[name] = _counted_async(name, generators[name], InFlight(), pauses=3)
    result = Job(build_j12_graph(), generators, 2000, buffer_size=100, progress_bar=False).run()
    assert 1 < result.peak_active_row_groups < 20
    check_j12_output(result.to_pydict(row_index=True), 2000)


def _view(**changes: int) -> AdmissionView:
    base = {
        "active_groups": 2,
        "writing_groups": 0,
        "pending_groups": 10,
        "total_slots": 100,
        "free_slots": 0,
        "queued_tasks": 0,
        "bytes_per_group": 1000,
    }
    base.update(changes)
    return AdmissionView(**base)


def test_admission_policies() -> None:
    assert FixedAdmission(3).admit_count(_view()) == 1
    assert FixedAdmission(3).admit_count(_view(active_groups=3)) == 0
    assert FixedAdmission(30).admit_count(_view(pending_groups=4)) == 4
    caps = CapsAdmission()
    assert caps.admit_count(_view(active_groups=0)) == 1
    assert caps.admit_count(_view(free_slots=0)) == 0  # every slot busy
    assert caps.admit_count(_view(free_slots=5, queued_tasks=10)) == 1  # idle slots, little waiting
    assert caps.admit_count(_view(free_slots=5, queued_tasks=100)) == 0  # enough waiting already
    assert caps.admit_count(_view(total_slots=0, active_groups=1)) == 0  # all inline: one at a time
    assert caps.admit_count(_view(pending_groups=0, active_groups=0)) == 0
    bounded = MemoryBoundAdmission(FixedAdmission(100), budget_bytes=5000)
    assert bounded.admit_count(_view(active_groups=2, writing_groups=1)) == 2
    assert bounded.admit_count(_view(active_groups=4, writing_groups=1)) == 0
    assert MemoryBoundAdmission(FixedAdmission(100), 1).admit_count(_view(active_groups=0)) == 1


@pytest.mark.parametrize("cap", [1, 3])
def test_a_full_column_async_generator_counts_against_the_caps(cap: int) -> None:
    inflight = InFlight()
    generators = j12_generators()
    summary = generators["summary"]

    async def async_summary(batch: dict[str, list[Any]]) -> list[str]:
        inflight.enter("summary")
        try:
            await asyncio.sleep(0)
            return summary(batch)
        finally:
            inflight.leave("summary")

    generators["summary"] = async_summary
    result = Job(
        build_j12_graph(),
        generators,
        3000,
        buffer_size=250,
        concurrency={"summary": cap},
        max_active_row_groups=6,
        progress_bar=False,
    ).run()
    check_j12_output(result.to_pydict(row_index=True), 3000)
    assert inflight.peak["summary"] <= cap
