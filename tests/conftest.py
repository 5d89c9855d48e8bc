"""Shared fixtures and the Hypothesis profiles (``HYPOTHESIS_PROFILE=ci|dev|long``, default ``ci``)."""

from __future__ import annotations

import multiprocessing.process
import os
import subprocess
import sys
from typing import Any

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


# -- the ``process`` marker is kept true ---------------------------------------------------
#
# CI repeats the tests that start processes or run threads against each other
# (``pytest -m process``), since a test whose outcome depends on scheduling shows it there.
# So that no such test escapes the marker, a test without it that starts a Python process
# (a subprocess running this interpreter, a multiprocessing process: Dask's workers, the fake
# model endpoint, a crash worker) fails at that call.  Other programs a library may run for
# itself (``uname``, a compiler) are not counted.

_current_item: list[pytest.Item] = []


def _refuse_unmarked(what: str) -> None:
    if _current_item and _current_item[-1].get_closest_marker("process") is None:
        raise RuntimeError(
            f"{_current_item[-1].nodeid} starts {what} but is not marked `process`; "
            "add `pytestmark = pytest.mark.process` (or the decorator) so CI repeats it"
        )


def _starts_python(args: object) -> bool:
    program = args if isinstance(args, (str, bytes, os.PathLike)) else next(iter(args), "")  # type: ignore[call-overload]
    name = os.path.basename(os.fsdecode(program)).split()[0] if program else ""
    return name.startswith("python") or os.fsdecode(program) == sys.executable


_original_popen_init = subprocess.Popen.__init__
_original_process_start = multiprocessing.process.BaseProcess.start


def _guarded_popen_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
    if _starts_python(args):
        _refuse_unmarked(f"a Python subprocess ({args!r})")
    _original_popen_init(self, args, *rest, **kwargs)


def _guarded_process_start(self: multiprocessing.process.BaseProcess) -> None:
    _refuse_unmarked("a multiprocessing process")
    _original_process_start(self)


subprocess.Popen.__init__ = _guarded_popen_init  # type: ignore[method-assign]
multiprocessing.process.BaseProcess.start = _guarded_process_start  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    _current_item.append(item)
    try:
        yield
    finally:
        _current_item.pop()
