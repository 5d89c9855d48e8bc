"""Bytes a call allocates, measured so that other threads cannot decide a test's outcome.

``tracemalloc`` counts every thread's allocations, and a test process may keep threads that
wake on their own (a Dask client's event loop, say, after the cluster tests).  So each
measurement runs with the garbage collector paused after a full collection, and the median
of several is kept: a stray allocation or free by another thread shifts one measurement, not
the median.
"""

from __future__ import annotations

import gc
import statistics
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def allocated_bytes(fn: Callable[[], T], repeats: int = 5) -> tuple[T, int, int]:
    """``(result of the last call, median bytes still allocated after a call, largest peak)``."""
    sizes: list[int] = []
    peaks: list[int] = []
    result: T | None = None
    for _ in range(repeats):
        result = None  # the previous result is freed before the next measurement
        gc.collect()
        was_enabled = gc.isenabled()
        gc.disable()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            result = fn()
            current, peak = tracemalloc.get_traced_memory()
            sizes.append(current - base)
            peaks.append(peak - base)
        finally:
            tracemalloc.stop()
            if was_enabled:
                gc.enable()
    return result, int(statistics.median(sizes)), int(statistics.median(peaks))  # type: ignore[return-value]
