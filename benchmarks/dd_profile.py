"""Where DataDesigner's engine spends a J12 job's time: a sampling profile of every thread.

    pip install py-spy
    python benchmarks/dd_profile.py 20000 --buffer 1000                 # DataDesigner's tracker
    python benchmarks/dd_profile.py 20000 --buffer 1000 --cellfrontier  # cellfrontier's installed

DataDesigner runs a job on its own event-loop thread plus worker threads (plain generators are
handed to ``asyncio.to_thread``), so a profiler that follows one thread (``cProfile``,
``pyinstrument``) misses most of the work.  This runs
``python -m cellfrontier.simulate.datadesigner_jobs`` under ``py-spy record --gil``: py-spy
samples, from outside, the thread that holds the GIL, so the samples add up to the Python CPU
time of the whole process at no cost to it.  Only the job is
counted: the engine's threads, and the main thread while it is inside ``DatasetBuilder``.

Two readings are printed:

* **inclusive**: the share of samples whose stack passes through each piece of the engine
  (the tracker, task admission and the fair queue, the thread hand-off, Parquet output, ...);
  pieces nest, so these shares overlap;
* **self**: each sample charged once, to the kind of code at the top of its stack
  (frozen-dataclass machinery, ``uuid4``, asyncio's loop, the scheduler's own lines, ...).

``--raw FILE`` keeps (or, if it exists with ``--reuse``, reads) py-spy's raw stacks.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Inclusive pieces: a sample counts for a piece when any frame of its stack matches.
# (label, file suffix or None, function-name pattern or None)
INCLUSIVE: tuple[tuple[str, str | None, str | None], ...] = (
    ("tracker (DataDesigner's CompletionTracker)", "/dataset_builders/scheduling/completion.py", None),
    ("tracker (cellfrontier's backend)", "/cellfrontier/integrations/data_designer.py", None),
    (
        "scheduler: dispatch (admission, fair queue, hand-out)",
        "/dataset_builders/async_scheduler.py",
        r"_dispatch_queued_tasks$",
    ),
    (
        "scheduler: task admission controller and policies",
        None,
        r"^(TaskAdmissionController|BoundedBorrow|StrictFair)",
    ),
    (
        "scheduler: fair queue and queue views",
        "/dataset_builders/scheduling/queue.py",
        r"^(FairTaskQueue|QueueView)",
    ),
    (
        "scheduler: observed-state and health snapshots",
        "/dataset_builders/async_scheduler.py",
        r"_record_observed_task_state|_emit_scheduler",
    ),
    (
        "scheduler: running a task (_execute_task, generators included)",
        "/dataset_builders/async_scheduler.py",
        r"_execute_task$",
    ),
    (
        "thread hand-off (asyncio.to_thread and the worker threads)",
        None,
        r"(^|\.)(to_thread|_worker|run_in_executor)$",
    ),
    ("custom generators (J12's own functions)", "/simulate/datadesigner_jobs.py", r"^j12_|generate"),
    ("row-group buffer", "/row_group_buffer.py", None),
    ("Parquet output (checkpoint of a finished row group)", None, r"checkpoint_row_group"),
    ("pandas", "/pandas/", None),
    ("stable task ids (SHA-1)", None, r"stable_task_id"),
    ("uuid4", "/uuid.py", None),
    (
        "frozen-dataclass generated methods (__init__, __hash__, __eq__)",
        "<string>",
        None,
    ),
)

# Self categories, tried in order on the frame at the top of the stack.
SELF: tuple[tuple[str, str | None, str | None], ...] = (
    ("tracker (DataDesigner's)", "/dataset_builders/scheduling/completion.py", None),
    ("tracker (cellfrontier's backend)", "/cellfrontier/integrations/data_designer.py", None),
    ("frozen-dataclass machinery", "<string>", None),
    ("frozen-dataclass machinery", "/dataclasses.py", None),
    ("uuid4", "/uuid.py", None),
    ("stable task ids (SHA-1)", "/dataset_builders/scheduling/resources.py", None),
    ("task admission and policies", "/scheduling/task_admission.py", None),
    ("task admission and policies", "/scheduling/task_policies.py", None),
    ("fair queue", "/dataset_builders/scheduling/queue.py", r"^(FairTaskQueue|QueueView)"),
    ("scheduler's own lines", "/dataset_builders/async_scheduler.py", None),
    ("row-group buffer", "/row_group_buffer.py", None),
    ("custom-column wrapper and generators", "/column_generators/", None),
    ("custom-column wrapper and generators", "/simulate/datadesigner_jobs.py", None),
    ("custom-column wrapper and generators", "/simulate/job_workloads.py", None),
    ("custom-column wrapper and generators", "/config/custom_column.py", None),
    ("thread hand-off (threads, futures, locks)", "/concurrent/futures/", None),
    ("thread hand-off (threads, futures, locks)", "/threading.py", None),
    ("thread hand-off (threads, futures, locks)", "/asyncio/threads.py", None),
    ("asyncio event loop and callbacks", "/asyncio/", None),
    ("contextvars, typing, enum, functools, copy", "/typing.py", None),
    ("contextvars, typing, enum, functools, copy", "/enum.py", None),
    ("contextvars, typing, enum, functools, copy", "/functools.py", None),
    ("contextvars, typing, enum, functools, copy", "/copy.py", None),
    ("pandas, pyarrow, numpy", "/pandas/", None),
    ("pandas, pyarrow, numpy", "/pyarrow/", None),
    ("pandas, pyarrow, numpy", "/numpy/", None),
    ("logging and progress", "/logging/", None),
    ("logging and progress", "/progress/", None),
    ("request-admission snapshots", "/models/request_admission/", None),
    ("signature inspection on every call (inspect)", "/inspect.py", None),
    ("DataDesigner, other", "/data_designer/", None),
)


@dataclass(frozen=True)
class Frame:
    """One frame of a py-spy stack: function name and (shortened) file."""

    func: str
    file: str


def parse_raw(lines: Iterable[str]) -> list[tuple[str, list[Frame], int]]:
    """py-spy's raw format: ``thread (tid): name;frame;...;frame COUNT`` per line, root first."""
    samples = []
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        parts = stack.split(";")
        thread = parts[0].split(":", 1)[-1].strip()
        frames = []
        for part in parts[1:]:
            found = FRAME.match(part)
            frames.append(Frame(found["func"], found["file"]) if found else Frame(part, ""))
        samples.append((thread, frames, int(count)))
    return samples


def in_job(thread: str, frames: Sequence[Frame]) -> bool:
    """The engine's threads, and the main thread while it builds (not imports or checks)."""
    if thread == "MainThread":
        return any(f.func.startswith("DatasetBuilder.") for f in frames)
    return thread == "AsyncEngine-EventLoop" or thread.startswith("asyncio_")


def _in_file(file: str, where: str) -> bool:
    """Whether *where* (a piece of a full path, e.g. ``/asyncio/``) is in *file*."""
    return where in file


def _matches(frame: Frame, where: str | None, pattern: str | None) -> bool:
    if where is not None and not _in_file(frame.file, where):
        return False
    return pattern is None or re.search(pattern, frame.func) is not None


def short_path(file: str) -> str:
    """A path from its package on (``data_designer/...``, ``asyncio/...``), not from the disk root."""
    for marker in ("/site-packages/", "/lib/python3.", "/src/", "/benchmarks/"):
        if marker in file:
            rest = file.split(marker, 1)[1]
            return rest.split("/", 1)[1] if marker == "/lib/python3." else rest
    return file


def classify(samples: list[tuple[str, list[Frame], int]]) -> dict[str, object]:
    """Inclusive and self shares of the job's samples."""
    job = [(t, f, n) for t, f, n in samples if in_job(t, f)]
    total = sum(n for _, _, n in job)
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    leaf_functions: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    others: collections.Counter[str] = collections.Counter()
    for thread, frames, n in job:
        threads[
            "event loop"
            if thread == "AsyncEngine-EventLoop"
            else "workers"
            if thread != "MainThread"
            else "main"
        ] += n
        for label, suffix, pattern in INCLUSIVE:
            if any(_matches(f, suffix, pattern) for f in frames):
                inclusive[label] += n
        top = frames[-1] if frames else Frame("?", "")
        label = next((lb for lb, suffix, pattern in SELF if _matches(top, suffix, pattern)), "other")
        own[label] += n
        name = f"{top.func} ({short_path(top.file)})"
        leaf_functions[name] += n
        if label == "other":
            others[name] += n
    return {
        "samples": total,
        "threads": dict(threads),
        "inclusive": dict(inclusive),
        "self": dict(own),
        "top_functions": leaf_functions.most_common(20),
        "top_other": others.most_common(8),
    }


def render(result: dict[str, object], title: str) -> str:
    """Markdown tables of one profile."""
    total = int(result["samples"])  # type: ignore[call-overload]
    lines = [f"**{title}** ({total:,} samples)\n"]
    threads = result["threads"]
    assert isinstance(threads, dict)
    lines.append(
        "Threads: "
        + ", ".join(f"{name} {count / total:.0%}" for name, count in sorted(threads.items()))
        + "\n"
    )
    for key, heading in (("inclusive", "inclusive (stack passes through)"), ("self", "self (top of stack)")):
        table = result[key]
        assert isinstance(table, dict)
        lines += [f"| {heading} | share |", "| --- | ---: |"]
        for label, count in sorted(table.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {label} | {count / total:.1%} |")
        lines.append("")
    lines += ["| top of stack (function) | share |", "| --- | ---: |"]
    top = result["top_functions"]
    assert isinstance(top, list)
    for name, count in top:
        lines.append(f"| `{name}` | {count / total:.1%} |")
    other = result.get("top_other") or []
    assert isinstance(other, list)
    if other:
        lines += ["", "| in 'other' (top of stack) | share |", "| --- | ---: |"]
        lines += [f"| `{name}` | {count / total:.1%} |" for name, count in other]
    return "\n".join(lines) + "\n"


def record(rows: int, buffer_size: int, cellfrontier_backend: bool, rate: int, raw: Path) -> None:
    """Run the job under ``py-spy record --gil`` and write its raw stacks to *raw*."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    command = [
        py_spy, "record", "--gil", "--threads", "--full-filenames", "--format", "raw",
        "--rate", str(rate), "--output", str(raw),
        "--", sys.executable, "-m", "cellfrontier.simulate.datadesigner_jobs",
        str(rows), "--buffer", str(buffer_size),
    ]  # fmt: skip
    if cellfrontier_backend:
        command.append("--cellfrontier")
    subprocess.run(command, check=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Profile one J12 run on DataDesigner and print the readings."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rows", type=int, nargs="?", default=20_000)
    parser.add_argument("--buffer", type=int, default=1_000)
    parser.add_argument("--cellfrontier", action="store_true", help="with cellfrontier's tracker installed")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--raw", type=Path, default=None, help="keep py-spy's raw stacks here")
    parser.add_argument("--reuse", action="store_true", help="read --raw instead of recording")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        raw = args.raw or Path(tmp) / "stacks.txt"
        if not (args.reuse and raw.exists()):
            record(args.rows, args.buffer, args.cellfrontier, args.rate, raw)
        result = classify(parse_raw(raw.read_text().splitlines()))
    tracker = "cellfrontier's tracker" if args.cellfrontier else "DataDesigner's tracker"
    print(render(result, f"J12 on DataDesigner, {args.rows:,} rows, buffer {args.buffer:,}, {tracker}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
