"""What the ``simulate`` command and the job runs show and measure: progress and memory.

A progress bar of tasks (drawn by the job's renderer), the process's resident set measured two
ways (sampled by the caller's loop, or the kernel's high-water mark over a block), and bytes
written for people.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from cellfrontier.job.progress import render_bar

__all__ = [
    "PeakRss",
    "ProgressBar",
    "RssGrowth",
    "Throughput",
    "current_rss_bytes",
    "format_bytes",
    "format_ratio",
    "peak_rss_bytes",
    "release_free_heap",
    "write_ratio_matrix",
]


class Throughput:
    """Per-task rates of a run that counts ``tasks`` over ``seconds`` (a mixin for result types)."""

    tasks: int
    seconds: float

    @property
    def us_per_task(self) -> float:
        """Microseconds per processed task, the figure that compares across sizes."""
        return self.seconds * 1e6 / self.tasks if self.tasks else 0.0

    @property
    def tasks_per_second(self) -> float:
        """Processed tasks per second of wall time."""
        return self.tasks / self.seconds if self.seconds > 0 else 0.0


class ProgressBar:
    """A progress bar of tasks done on stderr (the job's own renderer; plain lines when not a terminal)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_decile = -1

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        fraction = min(done / self.total, 1.0)
        if self.tty:
            if now - self._last_draw < 0.1 and done < self.total:
                return
            self._last_draw = now
            rate = done / max(now - self.start, 1e-9)
            bar = render_bar(fraction, 30)
            self.stream.write(f"\r{self.label} {bar} {fraction:6.1%} {done:>12,} tasks {rate:>14,.0f}/s")
            self.stream.flush()
        else:
            decile = int(fraction * 10)
            if decile > self._last_decile:
                self._last_decile = decile
                self.stream.write(f"{self.label}: {fraction:.0%} ({done:,} tasks)\n")
                self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def peak_rss_bytes() -> int:
    """The process's peak resident set so far (``ru_maxrss``, in KiB on Linux)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def current_rss_bytes() -> int | None:
    """Resident set size now (Linux ``/proc``), or None where it cannot be read cheaply."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None


def release_free_heap() -> None:
    """Give memory that earlier runs freed back to the OS (glibc), so it cannot hide growth."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class RssGrowth:
    """Peak growth of the resident set over a run, sampled once per tick of the driver.

    Comparable across backends that hold Python objects (where the tracker's own ``nbytes``
    does not exist); a sample per tick misses peaks inside a tick, and memory another run
    freed but the allocator kept can hide part of a later run's growth.
    """

    def __init__(self, progress: Callable[[int], None]) -> None:
        self.progress = progress
        release_free_heap()
        self.baseline = current_rss_bytes()
        self.peak = self.baseline

    def __call__(self, done: int) -> None:
        self.progress(done)
        if self.peak is not None:
            now = current_rss_bytes()
            if now is not None and now > self.peak:
                self.peak = now

    @property
    def growth(self) -> int | None:
        if self.baseline is None or self.peak is None:
            return None
        return self.peak - self.baseline


class PeakRss:
    """Peak resident memory of the process over a block, as growth over the block's start.

    On Linux the kernel's high-water mark (``VmHWM``) is reset through ``/proc/self/clear_refs``
    at the start, so the peak is exact and costs nothing during the block; where that is not
    allowed, a thread samples ``VmRSS`` every 5 ms.  Memory freed by earlier work is handed
    back to the OS first (glibc), so that the allocator's reuse of it cannot hide growth.
    """

    def __init__(self) -> None:
        self.baseline = 0
        self.peak = 0
        self._reset_works = False
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    @staticmethod
    def _status_kib(field_name: str) -> int | None:
        try:
            text = Path("/proc/self/status").read_text()
        except OSError:
            return None
        found = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.MULTILINE)
        return int(found.group(1)) if found else None

    def __enter__(self) -> PeakRss:
        release_free_heap()
        rss = self._status_kib("VmRSS")
        self.baseline = self.peak = (rss or 0) * 1024
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self._reset_works = True
        except OSError:
            self._sampler = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            rss = self._status_kib("VmRSS")
            if rss is not None:
                self.peak = max(self.peak, rss * 1024)

    def __exit__(self, *exc: object) -> None:
        if self._reset_works:
            hwm = self._status_kib("VmHWM")
            self.peak = max(self.peak, (hwm or 0) * 1024)
        else:
            self._stop.set()
            if self._sampler is not None:
                self._sampler.join()

    @property
    def growth(self) -> int:
        """Bytes the peak rose above the baseline."""
        return max(0, self.peak - self.baseline)


def format_bytes(value: int | None) -> str:
    """Human-readable bytes (KiB below one MiB, so small states do not print as 0.0 MiB)."""
    if value is None:
        return "n/a"
    if value < 2**20:
        return f"{value / 2**10:,.1f} KiB"
    return f"{value / 2**20:,.1f} MiB"


def format_ratio(ratio: float) -> str:
    """A ratio with one decimal, or three significant digits below 1 (0.0027 is not "0.0")."""
    return f"{ratio:,.1f}" if ratio >= 1 else f"{ratio:.3g}"


def write_ratio_matrix(
    out: TextIO, rows: list[tuple[str, str, float]], *, label_width: int = 34, cell_width: int = 11
) -> None:
    """A matrix of cost ratios: each cell is its column's cost divided by its row's.

    *rows* are ``(label, short name, cost)``, cost being time per unit (lower is faster), so a
    cell reads "how many times faster the row's backend is than the column's".
    """
    out.write(f"{'':<{label_width}}" + "".join(f" {short:>{cell_width}}" for _, short, _ in rows) + "\n")
    for i, (label, _, cost) in enumerate(rows):
        cells = []
        for j, (_, _, other) in enumerate(rows):
            if i == j:
                cells.append(f" {'':>{cell_width}}")
            else:
                cells.append(f" {format_ratio(other / max(cost, 1e-12)):>{cell_width - 1}}x")
        out.write(f"{label:<{label_width}}" + "".join(cells) + "\n")
