"""Fixtures for the benchmark suite: ``python -m pytest benchmarks --benchmark-only``.

Set ``CELLFRONTIER_BENCH_FULL=1`` to add the 1,000,000-row sizes (and the 100k sizes of the
slow comparison backends on W64 and MEM).
"""

from __future__ import annotations

import pytest
from harness import NEEDS_DATA_DESIGNER, Floors, data_designer_skip_reason, measure_floors


@pytest.fixture(scope="session")
def floors() -> Floors:
    """Both single-operation floors, measured once in this process."""
    return measure_floors()


@pytest.fixture(scope="session")
def dd_skip_reason() -> str | None:
    """Why DataDesigner's tracker cannot run, or None."""
    return data_designer_skip_reason()


def skip_unavailable(backend: str, reason: str | None) -> None:
    """Skip a DataDesigner case with the install hint when the package is missing."""
    if backend in NEEDS_DATA_DESIGNER and reason is not None:
        pytest.skip(reason)
