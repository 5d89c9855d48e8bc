"""Building a test's column graph in one call (the one helper every test file uses).

``make_graph`` builds cellfrontier's :class:`~cellfrontier.ExecutionGraph`, or any class with
the same builder methods (``graph_type=``: DataDesigner's, for the adapter's tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cellfrontier import ExecutionGraph


def make_graph(
    columns: Iterable[tuple[str, Any]],
    edges: Iterable[tuple[str, str]] = (),
    side_effects: Iterable[tuple[str, str]] = (),
    *,
    graph_type: Any = ExecutionGraph,
) -> Any:
    """A graph from ``[(name, strategy), ...]``, ``[(up, down), ...]`` and ``[(alias, producer), ...]``."""
    graph = graph_type()
    for name, strategy in columns:
        graph.add_column(name, strategy)
    for up, down in edges:
        graph.add_edge(up, down)
    for alias, producer in side_effects:
        graph.set_side_effect(alias, producer)
    return graph
