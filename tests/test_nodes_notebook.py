"""The exploratory notebook's walkthrough, run as written against ``cellfrontier.nodes``.

The notebook is a project seed document; its code cells and the output it recorded are
reproduced in ``CELLS`` verbatim, so the test needs nothing beside the repository.  The
cells run in order in one namespace with one change -- the node API is imported from
``cellfrontier.nodes`` -- and each cell must print what the notebook recorded, except that
the elements of a printed set may come in any order (set order follows the string hash
seed, which differs from run to run) and blank lines before or after an output do not count
(the notebook's text does not keep them apart from the blank lines around each cell).

Cells 26-28 build a graph from DataDesigner's config API and generator registry; they are
skipped when DataDesigner is not installed.  Cell 6 imports DataDesigner's generator base
class only to use it as an opaque ``generator_cls``; without DataDesigner that import is
replaced by a stand-in class (nothing the cells print depends on it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import pytest

NOTEBOOK_API = "data_designer.engine.execution_graph"
GENERATOR_BASE_IMPORT = "from data_designer.engine.column_generators.generators.base import ColumnGenerator"
NEEDS_DATA_DESIGNER = frozenset({26, 27, 28})
SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "002_7518a17c2933c134.txt"


def _installed(*modules: str) -> bool:
    """Whether *modules* can be imported, without importing them (the cells do that)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in modules)
    except (ImportError, ValueError):
        return False


HAVE_DATA_DESIGNER = _installed("data_designer.config", "data_designer.engine")

# (cell number, code, recorded output), as in the notebook.
CELLS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        r"""
from data_designer.engine.execution_graph import (
    BarrierNodeId,
    CellNodeId,
    ColumnDescriptor,
    CompletionTracker,
    ExecutionGraph,
    ExecutionTraits,
    GraphBuilder,
    NodeId,
)
""",
        r"""

""",
    ),
    (
        2,
        r"""
# CellNodeId identifies a single cell (row, column)
cell = CellNodeId(row=5, column="question")
print(f"Cell node: {cell}")
print(f"  Row: {cell.row}, Column: {cell.column}")

# BarrierNodeId identifies a synchronization point for a column
barrier = BarrierNodeId(column="validation")
print(f"\nBarrier node: {barrier}")
print(f"  Column: {barrier.column}")
""",
        r"""
Cell node: Cell(5, 'question')
  Row: 5, Column: question

Barrier node: Barrier('validation')
  Column: validation
""",
    ),
    (
        3,
        r"""
# Nodes are hashable and can be used in sets/dicts
completed_nodes: set[NodeId] = {
    CellNodeId(0, "category"),
    CellNodeId(1, "category"),
    BarrierNodeId("validation"),
}

print(f"Completed nodes: {completed_nodes}")
print(f"\nCellNodeId(0, 'category') in set: {CellNodeId(0, 'category') in completed_nodes}")
print(f"CellNodeId(2, 'category') in set: {CellNodeId(2, 'category') in completed_nodes}")
""",
        r"""
Completed nodes: {Barrier('validation'), Cell(0, 'category'), Cell(1, 'category')}

CellNodeId(0, 'category') in set: True
CellNodeId(2, 'category') in set: False
""",
    ),
    (
        4,
        r"""
# ExecutionTraits is a Flag enum - traits can be combined
print("Available traits:")
for trait in ExecutionTraits:
    if trait != ExecutionTraits.NONE:
        print(f"  - {trait.name}: {trait.value}")
""",
        r"""
Available traits:
  - START: 1
  - CELL_BY_CELL: 2
  - ROW_STREAMABLE: 4
  - BARRIER: 8
""",
    ),
    (
        5,
        r"""
# Traits can be combined using bitwise OR
sampler_traits = ExecutionTraits.START | ExecutionTraits.CELL_BY_CELL | ExecutionTraits.ROW_STREAMABLE
print(f"Sampler traits: {sampler_traits}")
print(f"  Has START: {bool(sampler_traits & ExecutionTraits.START)}")
print(f"  Has BARRIER: {bool(sampler_traits & ExecutionTraits.BARRIER)}")

# Validator/barrier column traits
barrier_traits = ExecutionTraits.BARRIER
print(f"\nBarrier traits: {barrier_traits}")
print(f"  Has BARRIER: {bool(barrier_traits & ExecutionTraits.BARRIER)}")
""",
        r"""
Sampler traits: ExecutionTraits.START|CELL_BY_CELL|ROW_STREAMABLE
  Has START: True
  Has BARRIER: False

Barrier traits: ExecutionTraits.BARRIER
  Has BARRIER: True
""",
    ),
    (
        6,
        r"""
# Import a mock config and generator for demonstration
from data_designer.engine.column_generators.generators.base import ColumnGenerator

# For demonstration, we'll create descriptors manually
# In practice, GraphBuilder creates these from DataDesignerConfig

# A start column (sampler) - can generate data from scratch
category_desc = ColumnDescriptor(
    name="category",
    config=None,  # Would be a real config in practice
    generator_cls=ColumnGenerator,  # Would be a real generator
    traits=ExecutionTraits.START | ExecutionTraits.CELL_BY_CELL | ExecutionTraits.ROW_STREAMABLE,
    dependencies=[],
    side_effects=[],
)

print("Category column:")
print(f"  is_start_column: {category_desc.is_start_column}")
print(f"  is_cell_by_cell: {category_desc.is_cell_by_cell}")
print(f"  is_row_streamable: {category_desc.is_row_streamable}")
print(f"  is_barrier: {category_desc.is_barrier}")
""",
        r"""
Category column:
  is_start_column: True
  is_cell_by_cell: True
  is_row_streamable: True
  is_barrier: False
""",
    ),
    (
        7,
        r"""
# A dependent column (LLM text) - processes cells independently
question_desc = ColumnDescriptor(
    name="question",
    config=None,
    generator_cls=ColumnGenerator,
    traits=ExecutionTraits.CELL_BY_CELL | ExecutionTraits.ROW_STREAMABLE,
    dependencies=["category"],  # Depends on category column
    side_effects=[],
)

print("Question column:")
print(f"  is_start_column: {question_desc.is_start_column}")
print(f"  has_dependencies: {question_desc.has_dependencies}")
print(f"  dependencies: {question_desc.dependencies}")
""",
        r"""
Question column:
  is_start_column: False
  has_dependencies: True
  dependencies: ['category']
""",
    ),
    (
        8,
        r"""
# A barrier column (validator) - needs all inputs before producing any output
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
""",
        r"""
Validation column:
  is_barrier: True
  is_row_streamable: False
""",
    ),
    (
        9,
        r"""
# Create an execution graph with our descriptors
# Descriptors must be in topological order (dependencies before dependents)
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
""",
        r"""
Graph properties:
  num_records: 5
  num_columns: 3
  num_nodes: 16
  start_columns: ['category']
  column_names: ['category', 'question', 'validation']
""",
    ),
    (
        10,
        r"""
# Memory efficiency demonstration
# With 1M records and 10 columns, we'd have ~10M virtual nodes
# But we only store O(C) column metadata, not O(C x R) nodes

large_graph = ExecutionGraph(
    num_records=1_000_000,
    column_descriptors=[category_desc, question_desc, validation_desc],
)

print("Large graph with 1M records:")
print(f"  num_nodes: {large_graph.num_nodes:,}")
print(f"  Memory: O({large_graph.num_columns}) columns, not O({large_graph.num_nodes:,}) nodes")
""",
        r"""
Large graph with 1M records:
  num_nodes: 3,000,001
  Memory: O(3) columns, not O(3,000,001) nodes
""",
    ),
    (
        11,
        r"""
# iter_start_nodes() - nodes that can begin immediately (no dependencies)
print("Start nodes (first 10):")
for i, node in enumerate(graph.iter_start_nodes()):
    if i >= 10:
        print("  ...")
        break
    print(f"  {node}")
""",
        r"""
Start nodes (first 10):
  Cell(0, 'category')
  Cell(1, 'category')
  Cell(2, 'category')
  Cell(3, 'category')
  Cell(4, 'category')
""",
    ),
    (
        12,
        r"""
# iter_nodes() - all virtual nodes in topological order
print("All nodes:")
for node in graph.iter_nodes():
    print(f"  {node}")
""",
        r"""
All nodes:
  Cell(0, 'category')
  Cell(1, 'category')
  Cell(2, 'category')
  Cell(3, 'category')
  Cell(4, 'category')
  Cell(0, 'question')
  Cell(1, 'question')
  Cell(2, 'question')
  Cell(3, 'question')
  Cell(4, 'question')
  Barrier('validation')
  Cell(0, 'validation')
  Cell(1, 'validation')
  Cell(2, 'validation')
  Cell(3, 'validation')
  Cell(4, 'validation')
""",
    ),
    (
        13,
        r"""
# Dependencies for a start column (none)
cell = CellNodeId(row=2, column="category")
deps = graph.get_dependencies(cell)
print(f"Dependencies for {cell}: {deps}")
""",
        r"""
Dependencies for Cell(2, 'category'): []
""",
    ),
    (
        14,
        r"""
# Dependencies for a cell-by-cell column (row-local)
cell = CellNodeId(row=2, column="question")
deps = graph.get_dependencies(cell)
print(f"Dependencies for {cell}: {deps}")
print("  -> Same row in dependency column (category)")
""",
        r"""
Dependencies for Cell(2, 'question'): [Cell(2, 'category')]
  -> Same row in dependency column (category)
""",
    ),
    (
        15,
        r"""
# Dependencies for a barrier node (ALL cells of dependency columns)
barrier = BarrierNodeId(column="validation")
deps = graph.get_dependencies(barrier)
print(f"Dependencies for {barrier}:")
for dep in deps:
    print(f"  {dep}")
print("  -> ALL cells of dependency column (question)")
""",
        r"""
Dependencies for Barrier('validation'):
  Cell(0, 'question')
  Cell(1, 'question')
  Cell(2, 'question')
  Cell(3, 'question')
  Cell(4, 'question')
  -> ALL cells of dependency column (question)
""",
    ),
    (
        16,
        r"""
# Dependencies for output cells of a barrier column
# They depend on the barrier node, not directly on input cells
cell = CellNodeId(row=2, column="validation")
deps = graph.get_dependencies(cell)
print(f"Dependencies for {cell}: {deps}")
print("  -> Depends on the barrier being complete")
""",
        r"""
Dependencies for Cell(2, 'validation'): [Barrier('validation')]
  -> Depends on the barrier being complete
""",
    ),
    (
        17,
        r"""
# Create a completion tracker
tracker = CompletionTracker(num_records=graph.num_records)

print("Initial state:")
print(f"  Completed nodes: {len(tracker)}")
print(f"  category complete: {tracker.is_column_complete('category')}")
""",
        r"""
Initial state:
  Completed nodes: 0
  category complete: False
""",
    ),
    (
        18,
        r"""
# Mark individual cells complete
tracker.mark_complete(CellNodeId(0, "category"))
tracker.mark_complete(CellNodeId(1, "category"))

print("After marking 2 cells complete:")
print(f"  Completed nodes: {len(tracker)}")
print(f"  category completion count: {tracker.column_completion_count('category')}")
print(f"  category complete: {tracker.is_column_complete('category')}")
""",
        r"""
After marking 2 cells complete:
  Completed nodes: 2
  category completion count: 2
  category complete: False
""",
    ),
    (
        19,
        r"""
# Check node completion using 'in' syntax
print(f"CellNodeId(0, 'category') in tracker: {CellNodeId(0, 'category') in tracker}")
print(f"CellNodeId(2, 'category') in tracker: {CellNodeId(2, 'category') in tracker}")
""",
        r"""
CellNodeId(0, 'category') in tracker: True
CellNodeId(2, 'category') in tracker: False
""",
    ),
    (
        20,
        r"""
# Complete the rest of the category column
for row in range(2, graph.num_records):
    tracker.mark_complete(CellNodeId(row, "category"))

print("After completing category column:")
print(f"  Completed nodes: {len(tracker)}")
print(f"  category complete: {tracker.is_column_complete('category')}")
""",
        r"""
After completing category column:
  Completed nodes: 5
  category complete: True
""",
    ),
    (
        21,
        r"""
# Now that category is complete, question cells should be ready
ready_nodes = list(graph.iter_ready_nodes(tracker))

print("Ready nodes after category completion:")
for node in ready_nodes:
    print(f"  {node}")
""",
        r"""
Ready nodes after category completion:
  Cell(0, 'question')
  Cell(1, 'question')
  Cell(2, 'question')
  Cell(3, 'question')
  Cell(4, 'question')
""",
    ),
    (
        22,
        r"""
# Complete some question cells
for row in range(graph.num_records):
    tracker.mark_complete(CellNodeId(row, "question"))

# Now the validation barrier should be ready
ready_nodes = list(graph.iter_ready_nodes(tracker))

print("Ready nodes after question completion:")
for node in ready_nodes:
    print(f"  {node}")
""",
        r"""
Ready nodes after question completion:
  Barrier('validation')
""",
    ),
    (
        23,
        r"""
# Complete the barrier
tracker.mark_complete(BarrierNodeId("validation"))

# Now validation output cells should be ready
ready_nodes = list(graph.iter_ready_nodes(tracker))

print("Ready nodes after barrier completion:")
for node in ready_nodes:
    print(f"  {node}")
""",
        r"""
Ready nodes after barrier completion:
  Cell(0, 'validation')
  Cell(1, 'validation')
  Cell(2, 'validation')
  Cell(3, 'validation')
  Cell(4, 'validation')
""",
    ),
    (
        24,
        r"""
# Complete validation cells
for row in range(graph.num_records):
    tracker.mark_complete(CellNodeId(row, "validation"))

# Check if graph is complete
print(f"Graph complete: {graph.is_complete(tracker)}")
print(f"Total completed nodes: {len(tracker)}")
""",
        r"""
Graph complete: True
Total completed nodes: 16
""",
    ),
    (
        25,
        r"""
# Create a fresh graph and tracker
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
        # Simulate execution
        print(f"  Executing: {node}")
        tracker.mark_complete(node)
    print()

print("=== Execution Complete ===")
print(f"Total iterations: {iteration}")
print(f"Total nodes processed: {len(tracker)}")
""",
        r"""
=== Starting Execution Simulation ===
Graph: 3 records, 3 columns

Iteration 1: 3 ready nodes
  Executing: Cell(0, 'category')
  Executing: Cell(1, 'category')
  Executing: Cell(2, 'category')

Iteration 2: 3 ready nodes
  Executing: Cell(0, 'question')
  Executing: Cell(1, 'question')
  Executing: Cell(2, 'question')

Iteration 3: 1 ready nodes
  Executing: Barrier('validation')

Iteration 4: 3 ready nodes
  Executing: Cell(0, 'validation')
  Executing: Cell(1, 'validation')
  Executing: Cell(2, 'validation')

=== Execution Complete ===
Total iterations: 4
Total nodes processed: 10
""",
    ),
    (
        26,
        r"""
# Import the config API and registry
import data_designer.config as dd
from data_designer.engine.column_generators.registry import create_default_column_generator_registry

# Create a simple config
config_builder = dd.DataDesignerConfigBuilder()

# Add a sampler column (START trait)
config_builder.add_column(
    dd.SamplerColumnConfig(
        name="category",
        sampler_type=dd.SamplerType.CATEGORY,
        params=dd.CategorySamplerParams(values=["science", "history", "math"]),
    )
)

# Add an LLM text column (depends on category)
config_builder.add_column(
    dd.LLMTextColumnConfig(
        name="question",
        prompt="Generate a trivia question about {{ category }}",
        model_alias="gpt-4o-mini",
    )
)

config = config_builder.build()
print(f"Config columns: {[c.name for c in config.columns]}")
""",
        r"""
Config columns: ['category', 'question']
""",
    ),
    (
        27,
        r"""
# Build the graph using GraphBuilder
builder = GraphBuilder(create_default_column_generator_registry())

graph = builder.build(config, num_records=100)

print("Built graph:")
print(f"  num_records: {graph.num_records}")
print(f"  num_columns: {graph.num_columns}")
print(f"  num_nodes: {graph.num_nodes}")
print(f"  start_columns: {graph.start_columns}")
print(f"  column_names: {graph.column_names}")
""",
        r"""
Built graph:
  num_records: 100
  num_columns: 2
  num_nodes: 200
  start_columns: ['category']
  column_names: ['category', 'question']
""",
    ),
    (
        28,
        r"""
# Inspect inferred traits
for col_name in graph.column_names:
    desc = graph.get_column_descriptor(col_name)
    print(f"\n{col_name}:")
    print(f"  traits: {desc.traits}")
    print(f"  is_start_column: {desc.is_start_column}")
    print(f"  is_barrier: {desc.is_barrier}")
    print(f"  dependencies: {desc.dependencies}")
""",
        r"""
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
""",
    ),
)


def as_run(number: int, code: str) -> str:
    """The cell as it runs here: the import swapped, and a stand-in base class if needed."""
    code = code.strip("\n")
    if number == 1:
        assert code.count(NOTEBOOK_API) == 1
        return code.replace(NOTEBOOK_API, "cellfrontier.nodes")
    if GENERATOR_BASE_IMPORT in code and not HAVE_DATA_DESIGNER:
        return code.replace(GENERATOR_BASE_IMPORT, "class ColumnGenerator:\n    pass")
    return code


def split_top_level(text: str) -> list[str]:
    """*text* split at the commas that are outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def canonical(output: str) -> list[str]:
    """The output's lines, with the elements of every printed set sorted."""

    def sort_set(match: re.Match[str]) -> str:
        return "{" + ", ".join(sorted(split_top_level(match.group(1)))) + "}"

    return [re.sub(r"\{([^{}]*)\}", sort_set, line) for line in output.strip("\n").split("\n")]


@pytest.fixture(scope="module")
def printed() -> dict[int, str | Exception]:
    """Every cell's printed output (or what it raised), running the cells in order."""
    namespace: dict[str, object] = {"__name__": "__notebook__"}
    results: dict[int, str | Exception] = {}
    for number, code, _ in CELLS:
        if number in NEEDS_DATA_DESIGNER and not HAVE_DATA_DESIGNER:
            continue
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(as_run(number, code), f"In [{number}]", "exec"), namespace)
        except Exception as exc:  # reported by the cell's own test
            results[number] = exc
        else:
            results[number] = out.getvalue()
    return results


@pytest.mark.parametrize(("number", "code", "recorded"), CELLS, ids=[f"In[{n}]" for n, _, _ in CELLS])
def test_cell_prints_what_the_notebook_recorded(
    printed: dict[int, str | Exception], number: int, code: str, recorded: str
) -> None:
    if number in NEEDS_DATA_DESIGNER and not HAVE_DATA_DESIGNER:
        pytest.skip("needs DataDesigner (data_designer.config and its generator registry)")
    result = printed[number]
    if isinstance(result, Exception):
        raise result
    assert canonical(result) == canonical(recorded)


def test_only_set_order_is_ignored() -> None:
    assert canonical("s: {Barrier('v'), Cell(0, 'a')}\n") == canonical("s: {Cell(0, 'a'), Barrier('v')}")
    assert canonical("s: {Cell(0, 'a'), Cell(1, 'a')}") != canonical("s: {Cell(0, 'a'), Cell(1, 'b')}")
    assert canonical("l: [Cell(1, 'a'), Cell(0, 'a')]") != canonical("l: [Cell(0, 'a'), Cell(1, 'a')]")
    assert canonical("a\nb") != canonical("b\na")


@pytest.mark.skipif(not SEED.is_file(), reason="the seed notebook is not beside the repository")
def test_cells_are_the_notebooks() -> None:
    """Each reproduced cell is the notebook's code followed by its recorded output."""
    text = SEED.read_text(encoding="utf-8")
    assert len(re.findall(r"^In \[\d+\]:$", text, flags=re.MULTILINE)) == len(CELLS)
    for number, code, recorded in CELLS:
        head = f"In [{number}]:\n{code.strip(chr(10))}\n"
        start = text.index(head) + len(head)
        end = text.index(recorded.strip("\n"), start)
        assert not text[start:end].strip(), f"In [{number}]: output does not follow the code"
