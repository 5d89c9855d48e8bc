"""The DataDesigner adapter inside DataDesigner's real async engine.

* A full offline ``DatasetBuilder.build()`` (samplers, expressions, custom columns, dropped rows,
  a column whose first attempts time out and are retried), one row group at a time and three
  at once, gives exactly the same dataset with DataDesigner's tracker and with ours installed.
* ``AsyncTaskScheduler`` driven directly, with our tracker passed in, completes the same rows
  with the same values and runs the same tasks as with DataDesigner's tracker; also with
  retried timeouts (the scheduler re-adds those tasks with ``add_ready_tasks``) and with a
  pre-batch step that drops rows once a group's seeds are done.
* ``installed()`` puts DataDesigner's own bindings back when the block ends.
"""

# ruff: noqa: E402 - DataDesigner is imported once the module knows it is installed

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from dd_e2e_support import CONCURRENT_ROW_GROUPS, require_data_designer

require_data_designer("data_designer.engine.dataset_builders.async_scheduler")

import data_designer.engine.dataset_builders.async_scheduler as dd_scheduler_module
import data_designer.engine.dataset_builders.dataset_builder as dd_builder_module
import data_designer.engine.dataset_builders.scheduling.completion as dd_completion
import data_designer.engine.dataset_builders.scheduling.resolver as dd_resolver
import data_designer.engine.dataset_builders.scheduling.resources as dd_resources
import pandas as pd
from data_designer.config.base import SingleColumnConfig
from data_designer.config.column_configs import GenerationStrategy
from data_designer.engine.column_generators.generators.base import (
    ColumnGeneratorCellByCell,
    ColumnGeneratorFullColumn,
    FromScratchColumnGenerator,
)
from data_designer.engine.dataset_builders.async_scheduler import AsyncTaskScheduler
from data_designer.engine.dataset_builders.row_group_plan import CompactRowGroupPlan
from data_designer.engine.dataset_builders.scheduling.completion import FrontierDelta
from data_designer.engine.dataset_builders.utils.execution_graph import ExecutionGraph
from data_designer.engine.dataset_builders.utils.row_group_buffer import RowGroupBufferManager
from data_designer.engine.errors import DataDesignerError
from data_designer.engine.models.errors import ModelTimeoutError
from data_designer.engine.resources.resource_provider import ResourceProvider
from data_designer.engine.storage.artifact_storage import ArtifactStorage

from cellfrontier.integrations import data_designer as adapter

pytestmark = pytest.mark.process

ReferenceTracker = dd_completion.CompletionTracker
reference_stable_task_id = dd_resources.stable_task_id

SUPPORT_SCRIPT = Path(__file__).with_name("dd_e2e_support.py")
# A safety net against a hung build only: both builds take about ten seconds on an idle machine.
BUILD_TIMEOUT = 900
MUTATIONS = ("mark_cell_complete", "mark_row_range_complete", "drop_row")


# -- 1. end to end: DatasetBuilder.build() in subprocesses ----------------------------------


class BuildResult:
    """What one subprocess build produced: the dataset and the tracker call counts."""

    def __init__(self, out_dir: Path, concurrent_row_groups: int, report: dict[str, Any]) -> None:
        self.df: pd.DataFrame = pd.read_pickle(out_dir / f"dataset-rgs{concurrent_row_groups}.pkl")
        self.calls: dict[str, collections.Counter[str]] = {
            name: collections.Counter(counts) for name, counts in report["calls"].items()
        }
        self.builder_tracker: str = report["builder_tracker"]
        self.timed_out: list[int] = report["timed_out"]


def _read_builds(out_dir: Path) -> dict[int, BuildResult]:
    report = json.loads((out_dir / "calls.json").read_text())
    return {n: BuildResult(out_dir, n, report[str(n)]) for n in CONCURRENT_ROW_GROUPS}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[int, BuildResult]]:
    """Build the datasets once per backend (both backends at once), with ``PYTHONHASHSEED=0``.

    Maps backend -> ``max_concurrent_row_groups`` -> build.
    """
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for backend in ("reference", "cellfrontier"):
        out_dir = tmp_path_factory.mktemp(f"e2e-{backend}")
        proc = subprocess.Popen(
            [sys.executable, str(SUPPORT_SCRIPT), backend, str(out_dir)],
            env=env,
            cwd=out_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        procs[backend] = (proc, out_dir)
    results: dict[str, dict[int, BuildResult]] = {}
    failures: list[str] = []
    for backend, (proc, out_dir) in procs.items():
        try:
            output, _ = proc.communicate(timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            output += f"\n(killed: still running after {BUILD_TIMEOUT} s)".encode()
        if proc.returncode != 0:
            failures.append(f"{backend} build failed ({proc.returncode}):\n{output.decode(errors='replace')}")
        else:
            results[backend] = _read_builds(out_dir)
    if failures:
        pytest.fail("\n\n".join(failures))
    return results


@pytest.mark.parametrize("concurrent", CONCURRENT_ROW_GROUPS, ids=lambda n: f"rgs{n}")
def test_e2e_datasets_are_identical(builds: dict[str, dict[int, BuildResult]], concurrent: int) -> None:
    reference, ours = builds["reference"][concurrent].df, builds["cellfrontier"][concurrent].df
    pd.testing.assert_frame_equal(ours, reference, check_exact=True)
    assert ours.equals(reference)
    # The run is meaningful: rows were dropped, the others kept, every column filled.
    assert 0 < len(reference) < 120
    assert not (reference["row_key"] % 17 == 5).any()
    assert not reference.isna().any().any()
    assert (reference["checked"] == reference["label"].str.len()).all()


@pytest.mark.parametrize("concurrent", CONCURRENT_ROW_GROUPS, ids=lambda n: f"rgs{n}")
def test_e2e_each_run_used_only_its_own_tracker(
    builds: dict[str, dict[int, BuildResult]], concurrent: int
) -> None:
    reference, ours = builds["reference"][concurrent], builds["cellfrontier"][concurrent]
    assert reference.builder_tracker == ReferenceTracker.__module__
    assert ours.builder_tracker == adapter.CompletionTracker.__module__
    assert not reference.calls["cellfrontier"], "the reference run touched the adapter"
    assert not ours.calls["reference"], "the installed run still called DataDesigner's tracker"


@pytest.mark.parametrize("concurrent", CONCURRENT_ROW_GROUPS, ids=lambda n: f"rgs{n}")
def test_e2e_adapter_saw_the_same_events(builds: dict[str, dict[int, BuildResult]], concurrent: int) -> None:
    reference, ours = builds["reference"][concurrent], builds["cellfrontier"][concurrent]
    expected, got = reference.calls["reference"], ours.calls["cellfrontier"]
    assert got["with_graph"] == expected["with_graph"] == 1
    for name in (*MUTATIONS, "add_root_tasks", "compact_row_group", "add_ready_tasks", "mark_enqueued"):
        assert got[name] > 0, name
        assert got[name] == expected[name], name
    # Timed-out cells were retried (put back with add_ready_tasks), the same ones in both runs.
    assert ours.timed_out == reference.timed_out
    assert got["add_ready_tasks"] >= len(ours.timed_out) > 0


# -- 2. AsyncTaskScheduler driven directly ---------------------------------------------------


class _DemoConfig(SingleColumnConfig):
    column_type: Literal["cellfrontier-e2e"] = "cellfrontier-e2e"

    @property
    def required_columns(self) -> list[str]:
        return []

    @property
    def side_effect_columns(self) -> list[str]:
        return []


class SeedGenerator(FromScratchColumnGenerator[_DemoConfig]):
    """Root full column: the local row index."""

    @staticmethod
    def get_generation_strategy() -> GenerationStrategy:
        return GenerationStrategy.FULL_COLUMN

    def generate(self, data: pd.DataFrame) -> pd.DataFrame:
        return data

    def generate_from_scratch(self, num_records: int) -> pd.DataFrame:
        return pd.DataFrame({"seed": list(range(num_records))})


class SquareGenerator(ColumnGeneratorCellByCell[_DemoConfig]):
    """Cell column that fails (so the row is dropped) on every fifth row, row 0 included."""

    def generate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["seed"] % 5 == 0:
            raise DataDesignerError(f"row with seed={data['seed']} is dropped on purpose")
        data["sq"] = data["seed"] ** 2
        return data


class LabelGenerator(ColumnGeneratorCellByCell[_DemoConfig]):
    """Cell column derived from ``sq``."""

    def generate(self, data: dict[str, Any]) -> dict[str, Any]:
        data["label"] = f"n{data['sq']}"
        return data


class FlakyLabelGenerator(LabelGenerator):
    """``LabelGenerator`` whose first attempt times out on every third row.

    A timeout is retryable: the scheduler defers the task and, in a salvage round, puts it back
    into the tracker's frontier with ``add_ready_tasks`` and acknowledges it again by id.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timed_out: set[int] = set()

    def generate(self, data: dict[str, Any]) -> dict[str, Any]:
        seed = data["seed"]
        if seed % 3 == 1 and seed not in self.timed_out:
            self.timed_out.add(seed)
            raise ModelTimeoutError(f"row with seed={seed} times out once")
        return super().generate(data)


class TotalGenerator(ColumnGeneratorFullColumn[_DemoConfig]):
    """Full column over the surviving rows of the group."""

    def generate(self, data: pd.DataFrame) -> pd.DataFrame:
        data = data.copy()
        data["total"] = int(data["sq"].sum()) if len(data) else 0
        return data


class ShareGenerator(ColumnGeneratorCellByCell[_DemoConfig]):
    """Cell column that needs both a cell and a full-column upstream."""

    def generate(self, data: dict[str, Any]) -> dict[str, Any]:
        data["share"] = round(data["sq"] / data["total"], 6) if data["total"] else 0.0
        return data


# seed (full, root) -> sq (cell, drops) -> label (cell); sq -> total (full); total, label -> share (cell)
GRAPH_SPEC: list[tuple[str, type, list[str]]] = [
    ("seed", SeedGenerator, []),
    ("sq", SquareGenerator, ["seed"]),
    ("label", LabelGenerator, ["sq"]),
    ("total", TotalGenerator, ["sq"]),
    ("share", ShareGenerator, ["total", "label"]),
]


class SchedulerRun:
    """Finalized row groups, executed tasks and tracker call counts of one scheduler run."""

    def __init__(self) -> None:
        self.frames: dict[int, pd.DataFrame] = {}
        self.tasks: list[tuple[str, int, int, str, str]] = []
        self.calls: collections.Counter[tuple[str, int]] = collections.Counter()
        self.totals: collections.Counter[str] = collections.Counter()

    def tasks_of(self, row_groups: set[int]) -> list[tuple[str, int, int, str, str]]:
        return [task for task in self.tasks if task[1] in row_groups]

    def calls_of(self, row_groups: set[int]) -> dict[tuple[str, int], int]:
        return {key: n for key, n in self.calls.items() if key[1] in row_groups}

    def total_calls(self, name: str) -> int:
        return sum(n for (method, _), n in self.calls.items() if method == name)


def _count_calls(tracker: Any, run: SchedulerRun) -> None:
    """Shadow the tracker's methods on the instance with call counters.

    Mutations are counted per row group too (``run.calls``), everything in ``run.totals``.
    """

    def counted(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        position = 0 if name == "drop_row" else 1  # where the row group is in the arguments

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run.totals[name] += 1
            if name in MUTATIONS:
                run.calls[name, args[position]] += 1
            return method(*args, **kwargs)

        return wrapper

    for name in (*MUTATIONS, "add_ready_tasks", "mark_enqueued", "add_root_tasks"):
        setattr(tracker, name, counted(name, getattr(tracker, name)))


def _pre_batch_drop(tracker: Any, buffers: RowGroupBufferManager) -> Callable[[int, int], FrontierDelta]:
    """A pre-batch step that drops every seventh row once a group's seeds are done.

    The scheduler's contract, as DataDesigner's builder uses it: the callback may drop rows
    (in the buffers and in the tracker) and returns the frontier changes of those drops.
    """

    def on_seeds_complete(row_group: int, row_group_size: int) -> FrontierDelta:
        deltas = []
        for row in range(3, row_group_size, 7):
            if not tracker.is_dropped(row_group, row):
                buffers.drop_row(row_group, row)
                deltas.append(tracker.drop_row(row_group, row))
        return FrontierDelta(
            added=tuple(t for d in deltas for t in d.added),
            removed=tuple(t for d in deltas for t in d.removed),
        )

    return on_seeds_complete


def run_scheduler(
    tracker_class: type,
    num_records: int,
    buffer_size: int,
    concurrent_row_groups: int,
    *,
    flaky: bool = False,
    pre_batch_drops: bool = False,
) -> SchedulerRun:
    """Run the demo graph through ``AsyncTaskScheduler`` with a tracker of *tracker_class*.

    With *flaky*, ``label`` times out once on every third row (retried in salvage rounds);
    with *pre_batch_drops*, a pre-batch step drops every seventh row of each group.
    """
    result = SchedulerRun()
    with tempfile.TemporaryDirectory(prefix="cf-dd-sched-") as tmp:
        storage = ArtifactStorage(artifact_path=tmp)
        resources = ResourceProvider(artifact_storage=storage)
        classes = {name: cls for name, cls, _ in GRAPH_SPEC}
        if flaky:
            classes["label"] = FlakyLabelGenerator
        generators = {name: cls(_DemoConfig(name=name), resources) for name, cls in classes.items()}
        graph = ExecutionGraph()
        for name, _, _ in GRAPH_SPEC:
            graph.add_column(name, generators[name].get_generation_strategy())
        for name, _, upstream in GRAPH_SPEC:
            for up in upstream:
                graph.add_edge(up, name)
        plan = CompactRowGroupPlan.fresh(num_records=num_records, buffer_size=buffer_size)
        tracker = tracker_class.with_graph(graph, plan)
        assert type(tracker) is tracker_class
        _count_calls(tracker, result)
        buffers = RowGroupBufferManager(storage)

        def on_finalize(row_group: int) -> None:
            result.frames[row_group] = buffers.get_dataframe(row_group)
            buffers.free_row_group(row_group)

        async def main() -> AsyncTaskScheduler:
            scheduler = AsyncTaskScheduler(
                generators=generators,
                graph=graph,
                tracker=tracker,
                row_groups=plan,
                buffer_manager=buffers,
                max_concurrent_row_groups=concurrent_row_groups,
                on_finalize_row_group=on_finalize,
                on_seeds_complete=_pre_batch_drop(tracker, buffers) if pre_batch_drops else None,
                disable_early_shutdown=True,
                trace=True,
                num_records=num_records,
                buffer_size=buffer_size,
            )
            await scheduler.run()
            return scheduler

        logger = logging.getLogger("data_designer")
        level = logger.level
        logger.setLevel(logging.ERROR)  # every dropped row logs a warning
        try:
            scheduler = asyncio.run(main())
        finally:
            logger.setLevel(level)
    result.tasks = sorted(
        (t.column, t.row_group, -1 if t.row_index is None else t.row_index, t.task_type, t.status)
        for t in scheduler.traces
    )
    return result


# (records, buffer, concurrent row groups): the last plan ends with a one-row group whose
# only row is dropped, so that group is never finalized and its full column sees no rows.
SCHEDULER_CASES = [(23, 10, 2), (40, 8, 3), (25, 12, 1), (25, 12, 3)]


@pytest.fixture(scope="module")
def reference_runs() -> dict[tuple[int, int, int], SchedulerRun]:
    return {case: run_scheduler(ReferenceTracker, *case) for case in SCHEDULER_CASES}


@pytest.mark.parametrize("installed", [False, True], ids=["injected", "injected+installed"])
@pytest.mark.parametrize("case", SCHEDULER_CASES, ids=lambda c: "records{}-buffer{}-rgs{}".format(*c))
def test_scheduler_with_adapter_matches_reference(
    case: tuple[int, int, int],
    installed: bool,
    reference_runs: dict[tuple[int, int, int], SchedulerRun],
) -> None:
    """Same finalized rows and values, same executed tasks, same tracker events."""
    expected = reference_runs[case]
    context = adapter.installed() if installed else contextlib.nullcontext()
    with context:
        got = run_scheduler(adapter.CompletionTracker, *case)
    finalized = set(expected.frames)
    assert set(got.frames) == finalized
    for row_group, frame in expected.frames.items():
        # A group's column order is the order its tasks happened to finish in, which varies
        # from run to run even with DataDesigner's own tracker: compare columns by name.
        pd.testing.assert_frame_equal(got.frames[row_group], frame, check_exact=True, check_like=True)
    # Whether the full column of a group whose rows were all dropped still runs (on no rows)
    # is a race inside the scheduler, with either tracker: compare finalized groups only.
    assert got.tasks_of(finalized) == expected.tasks_of(finalized)
    assert got.calls_of(finalized) == expected.calls_of(finalized)
    assert got.total_calls("drop_row") == expected.total_calls("drop_row")
    assert all(got.total_calls(name) > 0 for name in MUTATIONS)


def test_scheduler_reference_runs_drop_rows(reference_runs: dict[tuple[int, int, int], SchedulerRun]) -> None:
    """The scenarios do exercise dropped rows and an entirely dropped row group."""
    for (num_records, buffer_size, _), run in reference_runs.items():
        kept = sum(len(frame) for frame in run.frames.values())
        plan = CompactRowGroupPlan.fresh(num_records=num_records, buffer_size=buffer_size)
        assert kept == sum(1 for _, size in plan for row in range(size) if row % 5 != 0)
        assert run.total_calls("drop_row") == num_records - kept
    records, buffer, _ = SCHEDULER_CASES[-1]
    last_group = -(-records // buffer) - 1
    assert last_group not in reference_runs[SCHEDULER_CASES[-1]].frames


def _kept_rows(num_records: int, buffer_size: int, pre_batch_drops: bool) -> int:
    plan = CompactRowGroupPlan.fresh(num_records=num_records, buffer_size=buffer_size)
    return sum(
        1
        for _, size in plan
        for row in range(size)
        if row % 5 != 0 and not (pre_batch_drops and row % 7 == 3)
    )


@pytest.mark.parametrize("pre_batch_drops", [False, True], ids=["retries", "retries+pre-batch-drops"])
@pytest.mark.parametrize(
    "case", [(40, 8, 3), (25, 12, 1)], ids=lambda c: "records{}-buffer{}-rgs{}".format(*c)
)
def test_scheduler_retries_and_pre_batch_drops_match_reference(
    case: tuple[int, int, int], pre_batch_drops: bool
) -> None:
    """Timed-out tasks come back through add_ready_tasks + mark_enqueued; drops before a batch."""
    options = {"flaky": True, "pre_batch_drops": pre_batch_drops}
    expected = run_scheduler(ReferenceTracker, *case, **options)
    with adapter.installed():
        got = run_scheduler(adapter.CompletionTracker, *case, **options)
    assert set(got.frames) == set(expected.frames)
    for row_group, frame in expected.frames.items():
        pd.testing.assert_frame_equal(got.frames[row_group], frame, check_exact=True, check_like=True)
    kept = _kept_rows(case[0], case[1], pre_batch_drops)
    assert sum(len(frame) for frame in got.frames.values()) == kept
    assert got.total_calls("drop_row") == expected.total_calls("drop_row") == case[0] - kept
    # The salvage path ran, on both trackers alike: every timed-out task was put back into the
    # frontier (then acknowledged by id; how many acknowledgements batch together depends on
    # thread timing, with either tracker).
    assert got.totals["add_ready_tasks"] == expected.totals["add_ready_tasks"] > 0
    assert got.totals["mark_enqueued"] > 0


# -- 3. installed() restores DataDesigner's bindings -----------------------------------------


def _bindings() -> dict[str, Any]:
    return {
        "completion.CompletionTracker": dd_completion.CompletionTracker,
        "dataset_builder.CompletionTracker": dd_builder_module.CompletionTracker,
        "async_scheduler.CompletionTracker": dd_scheduler_module.CompletionTracker,
        "resources.stable_task_id": dd_resources.stable_task_id,
        "async_scheduler.stable_task_id": dd_scheduler_module.stable_task_id,
        "resolver.stable_task_id": dd_resolver.stable_task_id,
    }


ORIGINAL_BINDINGS = {
    name: ReferenceTracker if name.endswith("CompletionTracker") else reference_stable_task_id
    for name in _bindings()
}


@pytest.fixture
def clean_install_state() -> Iterator[None]:
    assert not adapter.is_installed()
    assert _bindings() == ORIGINAL_BINDINGS
    yield
    adapter.uninstall()


def test_installed_swaps_then_restores_bindings(clean_install_state: None) -> None:
    with adapter.installed():
        assert adapter.is_installed()
        inside = _bindings()
        for name, value in inside.items():
            if name.endswith("CompletionTracker"):
                assert value is adapter.CompletionTracker, name
            else:
                assert value is adapter.memoized_stable_task_id, name
    assert not adapter.is_installed()
    assert _bindings() == ORIGINAL_BINDINGS
    assert list(adapter.iter_patched_modules()) == []


def test_installed_restores_bindings_after_an_exception(clean_install_state: None) -> None:
    with pytest.raises(RuntimeError, match="boom"), adapter.installed():
        assert dd_builder_module.CompletionTracker is adapter.CompletionTracker
        raise RuntimeError("boom")
    assert not adapter.is_installed()
    assert _bindings() == ORIGINAL_BINDINGS


def test_nested_installed_keeps_the_outer_installation(clean_install_state: None) -> None:
    with adapter.installed():
        with adapter.installed():
            assert dd_builder_module.CompletionTracker is adapter.CompletionTracker
        assert dd_builder_module.CompletionTracker is adapter.CompletionTracker
    assert _bindings() == ORIGINAL_BINDINGS


def test_scheduler_after_installed_block_uses_reference_tracker(clean_install_state: None) -> None:
    """A build started after the block gets DataDesigner's own tracker again."""
    with adapter.installed():
        pass
    tracker = dd_builder_module.CompletionTracker.with_graph(ExecutionGraph(), [(0, 1)])
    assert type(tracker) is ReferenceTracker
