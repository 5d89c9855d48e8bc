"""The node-view walkthrough: node ids, traits, descriptors, graphs, tracking, a full run.

It repeats the exploratory design's notebook cell by cell, with the import changed to
``cellfrontier.nodes`` and a heading printed before each section, and prints what the
notebook recorded (the elements of the printed set in section 1 come in hash order).

Section 10 builds a graph from DataDesigner's config API and generator registry when
DataDesigner is installed, and otherwise from small stand-in config and generator classes
that declare the same properties; both print the notebook's output.  Traits are read from
what each generator declares: the sampler generates from scratch, full-column, and says
nothing about streaming rows, so as a start column with no inputs it streams
(``START|ROW_STREAMABLE``) rather than waiting behind a barrier node.

Run: ``python examples/node_walkthrough.py``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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

try:
    from data_designer.engine.column_generators.generators.base import ColumnGenerator
except ImportError:

    class ColumnGenerator:  # type: ignore[no-redef]
        """Stands in for DataDesigner's generator base class (only its identity is used)."""


# -- stand-ins for section 10 when DataDesigner is not installed --------------------------


@dataclass
class SamplerColumn:
    name: str
    values: list[str]
    required_columns: list[str] = field(default_factory=list)
    side_effect_columns: list[str] = field(default_factory=list)


@dataclass
class TextColumn:
    name: str
    prompt: str
    required_columns: list[str] = field(default_factory=list)
    side_effect_columns: list[str] = field(default_factory=list)


@dataclass
class Config:
    columns: list[Any]


class SamplerGenerator:
    """Generates the whole column from nothing, declaring what DataDesigner's sampler does."""

    @property
    def can_generate_from_scratch(self) -> bool:
        return True

    @staticmethod
    def get_generation_strategy() -> str:
        return "full_column"


class TextGenerator:
    """One model call per cell."""

    @property
    def can_generate_from_scratch(self) -> bool:
        return False

    @staticmethod
    def get_generation_strategy() -> str:
        return "cell_by_cell"


def build_config() -> tuple[Any, Any]:
    """The notebook's two-column config and a generator registry."""
    try:
        import data_designer.config as dd
        from data_designer.engine.column_generators.registry import create_default_column_generator_registry
    except ImportError:
        config = Config(
            columns=[
                SamplerColumn("category", ["science", "history", "math"]),
                TextColumn("question", "Generate a trivia question about {{ category }}", ["category"]),
            ]
        )
        return config, {SamplerColumn: SamplerGenerator, TextColumn: TextGenerator}
    config_builder = dd.DataDesignerConfigBuilder()
    config_builder.add_column(
        dd.SamplerColumnConfig(
            name="category",
            sampler_type=dd.SamplerType.CATEGORY,
            params=dd.CategorySamplerParams(values=["science", "history", "math"]),
        )
    )
    config_builder.add_column(
        dd.LLMTextColumnConfig(
            name="question",
            prompt="Generate a trivia question about {{ category }}",
            model_alias="gpt-4o-mini",
        )
    )
    return config_builder.build(), create_default_column_generator_registry()


def main() -> None:
    print("## 1. Node Identification")
    cell = CellNodeId(row=5, column="question")
    print(f"Cell node: {cell}")
    print(f"  Row: {cell.row}, Column: {cell.column}")
    barrier = BarrierNodeId(column="validation")
    print(f"\nBarrier node: {barrier}")
    print(f"  Column: {barrier.column}")

    completed_nodes: set[NodeId] = {
        CellNodeId(0, "category"),
        CellNodeId(1, "category"),
        BarrierNodeId("validation"),
    }
    print(f"Completed nodes: {completed_nodes}")
    print(f"\nCellNodeId(0, 'category') in set: {CellNodeId(0, 'category') in completed_nodes}")
    print(f"CellNodeId(2, 'category') in set: {CellNodeId(2, 'category') in completed_nodes}")

    print("\n## 2. Execution Traits")
    print("Available traits:")
    for trait in ExecutionTraits:
        if trait != ExecutionTraits.NONE:
            print(f"  - {trait.name}: {trait.value}")
    sampler_traits = ExecutionTraits.START | ExecutionTraits.CELL_BY_CELL | ExecutionTraits.ROW_STREAMABLE
    print(f"Sampler traits: {sampler_traits}")
    print(f"  Has START: {bool(sampler_traits & ExecutionTraits.START)}")
    print(f"  Has BARRIER: {bool(sampler_traits & ExecutionTraits.BARRIER)}")
    barrier_traits = ExecutionTraits.BARRIER
    print(f"\nBarrier traits: {barrier_traits}")
    print(f"  Has BARRIER: {bool(barrier_traits & ExecutionTraits.BARRIER)}")

    print("\n## 3. Column Descriptors")
    category_desc = ColumnDescriptor(
        name="category",
        config=None,
        generator_cls=ColumnGenerator,
        traits=ExecutionTraits.START | ExecutionTraits.CELL_BY_CELL | ExecutionTraits.ROW_STREAMABLE,
        dependencies=[],
        side_effects=[],
    )
    print("Category column:")
    print(f"  is_start_column: {category_desc.is_start_column}")
    print(f"  is_cell_by_cell: {category_desc.is_cell_by_cell}")
    print(f"  is_row_streamable: {category_desc.is_row_streamable}")
    print(f"  is_barrier: {category_desc.is_barrier}")
    question_desc = ColumnDescriptor(
        name="question",
        config=None,
        generator_cls=ColumnGenerator,
        traits=ExecutionTraits.CELL_BY_CELL | ExecutionTraits.ROW_STREAMABLE,
        dependencies=["category"],
        side_effects=[],
    )
    print("Question column:")
    print(f"  is_start_column: {question_desc.is_start_column}")
    print(f"  has_dependencies: {question_desc.has_dependencies}")
    print(f"  dependencies: {question_desc.dependencies}")
    validation_desc = ColumnDescriptor(
        name="validation",
        config=None,
        generator_cls=ColumnGenerator,
        traits=ExecutionTraits.BARRIER,
        dependencies=["question"],
        side_effects=[],
    )
    print("Validation column:")
    print(f"  is_barrier: {validation_desc.is_barrier}")
    print(f"  is_row_streamable: {validation_desc.is_row_streamable}")

    print("\n## 4. Execution Graph")
    graph = ExecutionGraph(
        num_records=5,
        column_descriptors=[category_desc, question_desc, validation_desc],
    )
    print("Graph properties:")
    print(f"  num_records: {graph.num_records}")
    print(f"  num_columns: {graph.num_columns}")
    print(f"  num_nodes: {graph.num_nodes}")
    print(f"  start_columns: {graph.start_columns}")
    print(f"  column_names: {graph.column_names}")
    large_graph = ExecutionGraph(
        num_records=1_000_000,
        column_descriptors=[category_desc, question_desc, validation_desc],
    )
    print("Large graph with 1M records:")
    print(f"  num_nodes: {large_graph.num_nodes:,}")
    print(f"  Memory: O({large_graph.num_columns}) columns, not O({large_graph.num_nodes:,}) nodes")

    print("\n## 5. Node Iteration")
    print("Start nodes (first 10):")
    for i, node in enumerate(graph.iter_start_nodes()):
        if i >= 10:
            print("  ...")
            break
        print(f"  {node}")
    print("All nodes:")
    for node in graph.iter_nodes():
        print(f"  {node}")

    print("\n## 6. Dependency Resolution")
    cell = CellNodeId(row=2, column="category")
    deps = graph.get_dependencies(cell)
    print(f"Dependencies for {cell}: {deps}")
    cell = CellNodeId(row=2, column="question")
    deps = graph.get_dependencies(cell)
    print(f"Dependencies for {cell}: {deps}")
    print("  -> Same row in dependency column (category)")
    barrier = BarrierNodeId(column="validation")
    deps = graph.get_dependencies(barrier)
    print(f"Dependencies for {barrier}:")
    for dep in deps:
        print(f"  {dep}")
    print("  -> ALL cells of dependency column (question)")
    cell = CellNodeId(row=2, column="validation")
    deps = graph.get_dependencies(cell)
    print(f"Dependencies for {cell}: {deps}")
    print("  -> Depends on the barrier being complete")

    print("\n## 7. Completion Tracking")
    tracker = CompletionTracker(num_records=graph.num_records)
    print("Initial state:")
    print(f"  Completed nodes: {len(tracker)}")
    print(f"  category complete: {tracker.is_column_complete('category')}")
    tracker.mark_complete(CellNodeId(0, "category"))
    tracker.mark_complete(CellNodeId(1, "category"))
    print("After marking 2 cells complete:")
    print(f"  Completed nodes: {len(tracker)}")
    print(f"  category completion count: {tracker.column_completion_count('category')}")
    print(f"  category complete: {tracker.is_column_complete('category')}")
    print(f"CellNodeId(0, 'category') in tracker: {CellNodeId(0, 'category') in tracker}")
    print(f"CellNodeId(2, 'category') in tracker: {CellNodeId(2, 'category') in tracker}")
    for row in range(2, graph.num_records):
        tracker.mark_complete(CellNodeId(row, "category"))
    print("After completing category column:")
    print(f"  Completed nodes: {len(tracker)}")
    print(f"  category complete: {tracker.is_column_complete('category')}")

    print("\n## 8. Ready Node Iteration")
    ready_nodes = list(graph.iter_ready_nodes(tracker))
    print("Ready nodes after category completion:")
    for node in ready_nodes:
        print(f"  {node}")
    for row in range(graph.num_records):
        tracker.mark_complete(CellNodeId(row, "question"))
    ready_nodes = list(graph.iter_ready_nodes(tracker))
    print("Ready nodes after question completion:")
    for node in ready_nodes:
        print(f"  {node}")
    tracker.mark_complete(BarrierNodeId("validation"))
    ready_nodes = list(graph.iter_ready_nodes(tracker))
    print("Ready nodes after barrier completion:")
    for node in ready_nodes:
        print(f"  {node}")
    for row in range(graph.num_records):
        tracker.mark_complete(CellNodeId(row, "validation"))
    print(f"Graph complete: {graph.is_complete(tracker)}")
    print(f"Total completed nodes: {len(tracker)}")

    print("\n## 9. Simulation: Full Execution Loop")
    graph = ExecutionGraph(
        num_records=3,
        column_descriptors=[category_desc, question_desc, validation_desc],
    )
    tracker = CompletionTracker(num_records=graph.num_records)
    print("=== Starting Execution Simulation ===")
    print(f"Graph: {graph.num_records} records, {graph.num_columns} columns\n")
    iteration = 0
    while not graph.is_complete(tracker):
        iteration += 1
        ready = list(graph.iter_ready_nodes(tracker))
        if not ready:
            print("ERROR: No ready nodes but graph not complete!")
            break
        print(f"Iteration {iteration}: {len(ready)} ready nodes")
        for node in ready:
            print(f"  Executing: {node}")
            tracker.mark_complete(node)
        print()
    print("=== Execution Complete ===")
    print(f"Total iterations: {iteration}")
    print(f"Total nodes processed: {len(tracker)}")

    print("\n## 10. Using GraphBuilder with Real Configs")
    config, registry = build_config()
    print(f"Config columns: {[c.name for c in config.columns]}")
    builder = GraphBuilder(registry)
    graph = builder.build(config, num_records=100)
    print("Built graph:")
    print(f"  num_records: {graph.num_records}")
    print(f"  num_columns: {graph.num_columns}")
    print(f"  num_nodes: {graph.num_nodes}")
    print(f"  start_columns: {graph.start_columns}")
    print(f"  column_names: {graph.column_names}")
    for col_name in graph.column_names:
        desc = graph.get_column_descriptor(col_name)
        print(f"\n{col_name}:")
        print(f"  traits: {desc.traits}")
        print(f"  is_start_column: {desc.is_start_column}")
        print(f"  is_barrier: {desc.is_barrier}")
        print(f"  dependencies: {desc.dependencies}")


if __name__ == "__main__":
    main()
