"""Shared fixtures and the Hypothesis profiles (``HYPOTHESIS_PROFILE=ci|dev|long``, default ``ci``)."""

from __future__ import annotations

import os

import pytest
from graph_support import make_graph
from hypothesis import HealthCheck, settings

from cellfrontier import CompletionTracker, ExecutionGraph

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=40, stateful_step_count=30, **_COMMON)
settings.register_profile("dev", max_examples=300, stateful_step_count=60, **_COMMON)
settings.register_profile("long", max_examples=5000, stateful_step_count=120, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def diamond() -> ExecutionGraph:
    """``seed`` (full) -> ``a``, ``b`` (cell) -> ``judge`` (full) -> ``final`` (cell)."""
    return make_graph(
        [
            ("seed", "full_column"),
            ("a", "cell_by_cell"),
            ("b", "cell_by_cell"),
            ("judge", "full_column"),
            ("final", "cell_by_cell"),
        ],
        [("seed", "a"), ("seed", "b"), ("a", "judge"), ("b", "judge"), ("judge", "final")],
    )


@pytest.fixture
def chain() -> ExecutionGraph:
    """``topic`` (cell root) -> ``question`` (cell) -> ``score`` (full)."""
    return make_graph(
        [("topic", "cell_by_cell"), ("question", "cell_by_cell"), ("score", "full_column")],
        [("topic", "question"), ("question", "score")],
    )


@pytest.fixture
def chain_tracker(chain) -> CompletionTracker:
    return CompletionTracker.with_graph(chain, [(0, 4), (7, 70), (9, 0)])
