"""The exploratory design's walkthrough, section by section, against ``cellfrontier.nodes``.

Each test repeats one section of the notebook with the import changed and asserts what the
notebook printed; the last tests run ``examples/node_walkthrough.py`` and compare its output
(``tests/test_nodes_notebook.py`` runs the notebook's cells themselves).
"""

from __future__ import annotations

import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from memory_support import allocated_bytes

from cellfrontier.nodes import (
    BarrierNodeId,
    CellNodeId,
    ColumnDescriptor,
    CompletionTracker,
    ExecutionGraph,
    ExecutionTraits,
    GraphBuilder,
    NodeId,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "node_walkthrough.py"


class ColumnGenerator:
    """Stands in for the notebook's generator base class."""


def descriptors() -> list[ColumnDescriptor]:
    category = ColumnDescriptor(
        name="category",
        config=None,
        generator_cls=ColumnGenerator,
        traits=ExecutionTraits.START | ExecutionTraits.CELL_BY_CELL | ExecutionTraits.ROW_STREAMABLE,
        dependencies=[],
        side_effects=[],
    )
    question = ColumnDescriptor(
        name="question",
        config=None,
        generator_cls=ColumnGenerator,
        traits=ExecutionTraits.CELL_BY_CELL | ExecutionTraits.ROW_STREAMABLE,
        dependencies=["category"],
        side_effects=[],
    )
    validation = ColumnDescriptor(
        name="validation",
        config=None,
        generator_cls=ColumnGenerator,
        traits=ExecutionTraits.BARRIER,
        dependencies=["question"],
        side_effects=[],
    )
    return [category, question, validation]


def cells(column: str, n: int) -> list[NodeId]:
    return [CellNodeId(r, column) for r in range(n)]


# -- 1. node identification ------------------------------------------------------------------


def test_section_1_node_identity() -> None:
    cell = CellNodeId(row=5, column="question")
    assert f"{cell}" == "Cell(5, 'question')" and (cell.row, cell.column) == (5, "question")
    barrier = BarrierNodeId(column="validation")
    assert f"{barrier}" == "Barrier('validation')" and barrier.column == "validation"
    completed: set[NodeId] = {
        CellNodeId(0, "category"),
        CellNodeId(1, "category"),
        BarrierNodeId("validation"),
    }
    assert len(completed) == 3
    assert CellNodeId(0, "category") in completed and CellNodeId(2, "category") not in completed
    assert (
        repr(sorted(completed, key=repr))
        == "[Barrier('validation'), Cell(0, 'category'), Cell(1, 'category')]"
    )


# -- 2. traits -------------------------------------------------------------------------------


def test_section_2_traits() -> None:
    listed = [(t.name, t.value) for t in ExecutionTraits if t != ExecutionTraits.NONE]
    assert listed == [("START", 1), ("CELL_BY_CELL", 2), ("ROW_STREAMABLE", 4), ("BARRIER", 8)]
    sampler = ExecutionTraits.START | ExecutionTraits.CELL_BY_CELL | ExecutionTraits.ROW_STREAMABLE
    assert f"{sampler}" == "ExecutionTraits.START|CELL_BY_CELL|ROW_STREAMABLE"
    assert bool(sampler & ExecutionTraits.START) and not sampler & ExecutionTraits.BARRIER
    assert f"{ExecutionTraits.BARRIER}" == "ExecutionTraits.BARRIER"


# -- 3. descriptors --------------------------------------------------------------------------


def test_section_3_descriptors() -> None:
    category, question, validation = descriptors()
    assert (category.is_start_column, category.is_cell_by_cell, category.is_row_streamable) == (
        True,
        True,
        True,
    )
    assert not category.is_barrier
    assert (
        not question.is_start_column and question.has_dependencies and question.dependencies == ["category"]
    )
    assert validation.is_barrier and not validation.is_row_streamable


# -- 4. graph properties and memory ----------------------------------------------------------


def test_section_4_graph_properties() -> None:
    graph = ExecutionGraph(num_records=5, column_descriptors=descriptors())
    assert (graph.num_records, graph.num_columns, graph.num_nodes) == (5, 3, 16)
    assert graph.start_columns == ["category"]
    assert graph.column_names == ["category", "question", "validation"]


def test_section_4_million_records_cost_what_five_do() -> None:
    descs = descriptors()
    small, small_bytes, _ = allocated_bytes(lambda: ExecutionGraph(num_records=5, column_descriptors=descs))
    large, large_bytes, peak = allocated_bytes(
        lambda: ExecutionGraph(num_records=1_000_000, column_descriptors=descs)
    )
    assert f"{large.num_nodes:,}" == "3,000,001" and large.num_columns == 3
    _, count_bytes, _ = allocated_bytes(lambda: (large.num_nodes, large.num_columns))
    assert large_bytes < 32 * 1024 and abs(large_bytes - small_bytes) < 2 * 1024
    assert count_bytes < 1024 and peak < 1024 * 1024
    assert small.num_nodes == 16


# -- 5. iteration ----------------------------------------------------------------------------


def test_section_5_iteration() -> None:
    graph = ExecutionGraph(num_records=5, column_descriptors=descriptors())
    assert list(graph.iter_start_nodes()) == cells("category", 5)
    assert list(graph.iter_nodes()) == [
        *cells("category", 5),
        *cells("question", 5),
        BarrierNodeId("validation"),
        *cells("validation", 5),
    ]


# -- 6. dependency resolution ----------------------------------------------------------------


def test_section_6_dependencies() -> None:
    graph = ExecutionGraph(num_records=5, column_descriptors=descriptors())
    assert graph.get_dependencies(CellNodeId(row=2, column="category")) == []
    assert graph.get_dependencies(CellNodeId(row=2, column="question")) == [CellNodeId(2, "category")]
    assert graph.get_dependencies(BarrierNodeId(column="validation")) == cells("question", 5)
    assert graph.get_dependencies(CellNodeId(row=2, column="validation")) == [BarrierNodeId("validation")]
    assert graph.get_dependents(CellNodeId(2, "question")) == [BarrierNodeId("validation")]
    assert graph.get_dependents(BarrierNodeId("validation")) == cells("validation", 5)
    assert graph.get_generator_and_config(BarrierNodeId("validation")) == (ColumnGenerator, None)


# -- 7 and 8. completion tracking and ready nodes --------------------------------------------


def test_sections_7_and_8_tracking_and_ready_nodes() -> None:
    graph = ExecutionGraph(num_records=5, column_descriptors=descriptors())
    tracker = CompletionTracker(num_records=graph.num_records)
    assert len(tracker) == 0 and not tracker.is_column_complete("category")
    tracker.mark_complete(CellNodeId(0, "category"))
    tracker.mark_complete(CellNodeId(1, "category"))
    assert len(tracker) == 2 and tracker.column_completion_count("category") == 2
    assert not tracker.is_column_complete("category")
    assert CellNodeId(0, "category") in tracker and CellNodeId(2, "category") not in tracker
    for row in range(2, graph.num_records):
        tracker.mark_complete(CellNodeId(row, "category"))
    assert len(tracker) == 5 and tracker.is_column_complete("category")

    assert list(graph.iter_ready_nodes(tracker)) == cells("question", 5)
    for row in range(graph.num_records):
        tracker.mark_complete(CellNodeId(row, "question"))
    assert list(graph.iter_ready_nodes(tracker)) == [BarrierNodeId("validation")]
    tracker.mark_complete(BarrierNodeId("validation"))
    assert list(graph.iter_ready_nodes(tracker)) == cells("validation", 5)
    assert not graph.is_complete(tracker)
    for row in range(graph.num_records):
        tracker.mark_complete(CellNodeId(row, "validation"))
    assert graph.is_complete(tracker) and len(tracker) == 16
    assert list(graph.iter_ready_nodes(tracker)) == []


# -- 9. the simulation loop ------------------------------------------------------------------


def test_section_9_simulation() -> None:
    graph = ExecutionGraph(num_records=3, column_descriptors=descriptors())
    tracker = CompletionTracker(num_records=graph.num_records)
    rounds = []
    while not graph.is_complete(tracker):
        ready = list(graph.iter_ready_nodes(tracker))
        assert ready, "no ready nodes but graph not complete"
        rounds.append(ready)
        for node in ready:
            tracker.mark_complete(node)
    assert rounds == [
        cells("category", 3),
        cells("question", 3),
        [BarrierNodeId("validation")],
        cells("validation", 3),
    ]
    assert len(tracker) == 10


def test_section_9_simulation_at_scale() -> None:
    """The same loop over 100,000 records: four rounds, every node processed once."""
    graph = ExecutionGraph(num_records=100_000, column_descriptors=descriptors())
    tracker = CompletionTracker(num_records=graph.num_records)
    sizes = []
    while not graph.is_complete(tracker):
        ready = list(graph.iter_ready_nodes(tracker))
        sizes.append(len(ready))
        for node in ready:
            tracker.mark_complete(node)
    assert sizes == [100_000, 100_000, 1, 100_000] and len(tracker) == graph.num_nodes


# -- 10. building from configs ---------------------------------------------------------------


@dataclass
class SamplerColumnConfig:
    name: str
    values: list[str]
    required_columns: list[str] = field(default_factory=list)


@dataclass
class LLMTextColumnConfig:
    name: str
    prompt: str
    required_columns: list[str] = field(default_factory=list)
    side_effect_columns: list[str] = field(default_factory=list)


@dataclass
class Config:
    columns: list[Any]


class CategorySampler:
    """Full-column from scratch, silent on streaming rows: it streams as a start column."""

    can_generate_from_scratch = True

    @staticmethod
    def get_generation_strategy() -> str:
        return "full_column"


class TextModel:
    @property
    def can_generate_from_scratch(self) -> bool:
        return False

    @staticmethod
    def get_generation_strategy() -> str:
        return "cell_by_cell"


def test_section_10_graph_builder() -> None:
    config = Config(
        [
            SamplerColumnConfig("category", ["science", "history", "math"]),
            LLMTextColumnConfig("question", "Generate a trivia question about {{ category }}", ["category"]),
        ]
    )
    builder = GraphBuilder({SamplerColumnConfig: CategorySampler, LLMTextColumnConfig: TextModel})
    graph = builder.build(config, num_records=100)
    assert (graph.num_records, graph.num_columns, graph.num_nodes) == (100, 2, 200)
    assert graph.start_columns == ["category"] and graph.column_names == ["category", "question"]
    category = graph.get_column_descriptor("category")
    question = graph.get_column_descriptor("question")
    assert f"{category.traits}" == "ExecutionTraits.START|ROW_STREAMABLE"
    assert category.is_start_column and not category.is_barrier and category.dependencies == []
    assert f"{question.traits}" == "ExecutionTraits.CELL_BY_CELL|ROW_STREAMABLE"
    assert not question.is_start_column and not question.is_barrier and question.dependencies == ["category"]
    assert graph.get_generator_and_config(CellNodeId(0, "question")) == (TextModel, config.columns[1])


# -- the runnable example --------------------------------------------------------------------

EXPECTED_SECTIONS_4_TO_9 = """\
## 4. Execution Graph
Graph properties:
  num_records: 5
  num_columns: 3
  num_nodes: 16
  start_columns: ['category']
  column_names: ['category', 'question', 'validation']
Large graph with 1M records:
  num_nodes: 3,000,001
  Memory: O(3) columns, not O(3,000,001) nodes

## 5. Node Iteration
Start nodes (first 10):
{category}
All nodes:
{category}
{question}
  Barrier('validation')
{validation}

## 6. Dependency Resolution
Dependencies for Cell(2, 'category'): []
Dependencies for Cell(2, 'question'): [Cell(2, 'category')]
  -> Same row in dependency column (category)
Dependencies for Barrier('validation'):
{question}
  -> ALL cells of dependency column (question)
Dependencies for Cell(2, 'validation'): [Barrier('validation')]
  -> Depends on the barrier being complete

## 7. Completion Tracking
Initial state:
  Completed nodes: 0
  category complete: False
After marking 2 cells complete:
  Completed nodes: 2
  category completion count: 2
  category complete: False
CellNodeId(0, 'category') in tracker: True
CellNodeId(2, 'category') in tracker: False
After completing category column:
  Completed nodes: 5
  category complete: True

## 8. Ready Node Iteration
Ready nodes after category completion:
{question}
Ready nodes after question completion:
  Barrier('validation')
Ready nodes after barrier completion:
{validation}
Graph complete: True
Total completed nodes: 16

## 9. Simulation: Full Execution Loop
=== Starting Execution Simulation ===
Graph: 3 records, 3 columns

Iteration 1: 3 ready nodes
{run_category}

Iteration 2: 3 ready nodes
{run_question}

Iteration 3: 1 ready nodes
  Executing: Barrier('validation')

Iteration 4: 3 ready nodes
{run_validation}

=== Execution Complete ===
Total iterations: 4
Total nodes processed: 10
"""


EXPECTED_SECTION_10 = """\
## 10. Using GraphBuilder with Real Configs
Config columns: ['category', 'question']
Built graph:
  num_records: 100
  num_columns: 2
  num_nodes: 200
  start_columns: ['category']
  column_names: ['category', 'question']

category:
  traits: ExecutionTraits.START|ROW_STREAMABLE
  is_start_column: True
  is_barrier: False
  dependencies: []

question:
  traits: ExecutionTraits.CELL_BY_CELL|ROW_STREAMABLE
  is_start_column: False
  is_barrier: False
  dependencies: ['category']
"""


def _lines(column: str, n: int, prefix: str = "  ") -> str:
    return "\n".join(f"{prefix}Cell({r}, {column!r})" for r in range(n))


def test_example_prints_the_notebook_output(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    expected = EXPECTED_SECTIONS_4_TO_9.format(
        **{c: _lines(c, 5) for c in ("category", "question", "validation")},
        **{f"run_{c}": _lines(c, 3, "  Executing: ") for c in ("category", "question", "validation")},
    )
    assert out[out.index("## 4.") : out.index("\n## 10.")] == expected.rstrip("\n") + "\n"
    assert "Sampler traits: ExecutionTraits.START|CELL_BY_CELL|ROW_STREAMABLE" in out
    assert "Cell node: Cell(5, 'question')" in out and "Barrier node: Barrier('validation')" in out
    assert out[out.index("## 10.") :] == EXPECTED_SECTION_10


def test_example_section_10_without_data_designer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in config and generators print the same as DataDesigner's."""
    loaded = [name for name in sys.modules if name.split(".")[0] == "data_designer"]
    for name in {"data_designer", "data_designer.config", *loaded}:
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert out[out.index("## 10.") :] == EXPECTED_SECTION_10
