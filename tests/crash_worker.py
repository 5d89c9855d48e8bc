"""Worker process for ``test_crash_resume.py``: the W10 driver with one checkpoint file, killable anywhere.

    python crash_worker.py DIR ATTEMPT ROWS SEED [--die-in-save K:CALL[:mid]] [--die-mid-tick K]
    python crash_worker.py --probe DIR ROWS

Resumes from ``DIR/job.ckpt`` (the one path every save replaces, as a real job would use it)
or starts afresh.  Each tick hands out the whole frontier with ``pop_ready`` and completes it
as the W10 driver does.  At a seeded point inside every tick it saves while the rest of the
tick's tasks are handed out and not completed, and every second tick it saves again at the
tick boundary.

Everything the test checks goes to ``DIR/journal``, each batch of records in one ``write``
(no ``fsync``: what a ``write`` handed to the kernel survives a SIGKILL of the process, and the
test kills processes, not the machine):

* ``T attempt column row_group row action``: a completed task (``c`` cell, ``b`` batch,
  ``d`` the cell that dropped its row), written before any save that contains it;
* ``I attempt seq n sha256 size pending``: a save is about to start; it holds the attempt's
  first ``n`` tasks, its bytes have this digest and size, and ``pending`` (JSON) lists the
  tasks handed out but not completed;
* ``C attempt seq``: that save returned.

Kill points are chosen by step, never by clock, so where a worker dies depends only on its
arguments and the state it resumes from:

* ``--die-in-save K:CALL[:mid]`` SIGKILLs the process inside the first save that starts once
  the attempt has completed ``K`` tasks (the last save of a run qualifies unless ``:mid`` asks
  for a save taken mid tick, with tasks handed out), right before the save's OS call number
  ``CALL`` (0-based: temporary file, ``fchmod``, a write that stops after a seeded number of
  bytes, ``fsync``, rename, directory ``fsync`` ...) or, when ``CALL`` is the number of calls,
  right after the save returns, before the ``C`` record;
* ``--die-mid-tick K`` SIGKILLs it after the first completed task, from the ``K``-th on, that
  leaves tasks of its tick handed out and not completed.

A worker that ends without reaching its kill point (or whose save has no call ``CALL``) exits
with status 3.  ``--probe`` prints the OS calls of one save (``steps ...``) and exits.
Otherwise the worker prints ``ready`` once the state is loaded, the OS calls of a save it is
about to kill (``steps ...``), ``kill ...`` right before killing itself, and a JSON summary
when it finishes.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import random
import signal
import sys
from pathlib import Path

from cellfrontier import CompletionTracker
from cellfrontier.testing.workloads import W10, build_graph, row_groups

CHECKPOINT = "job.ckpt"
JOURNAL = "journal"
# OS calls intercepted during a save: every one is a point where a kill can land.
OS_CALLS = ("open", "fdopen", "fchmod", "write", "fsync", "replace", "rename", "close", "unlink")


def die(why: str) -> None:
    print("kill", why, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


class Saboteur:
    """Counts the OS calls of a save and SIGKILLs the process before a chosen one.

    Patching the ``os`` functions (and ``open``/``fdopen`` results) instead of the checkpoint
    module keeps the kill points independent of how ``save`` is written; the calls are only
    intercepted while a save runs, so the journal's own writes are never counted.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng  # how much of a write lands before the kill
        self.active = False
        self.calls: list[str] = []
        self.kill_at: int | None = None
        self.seq = 0
        for name in OS_CALLS:
            if hasattr(os, name):
                setattr(os, name, self._wrap(name, getattr(os, name)))
        real_open = builtins.open

        def patched_open(*args, **kwargs):
            handle = real_open(*args, **kwargs)
            return _File(self, handle) if self.active else handle

        builtins.open = patched_open

    def _wrap(self, name, real):
        def call(*args, **kwargs):
            if self.step(name):
                if name == "write" and len(args) == 2 and len(args[1]):
                    cut = self.rng.randrange(len(args[1]))
                    real(args[0], bytes(args[1])[:cut])
                    self.die(f"os.write after {cut} of {len(args[1])} bytes")
                self.die(f"before os.{name}")
            result = real(*args, **kwargs)
            return _File(self, result) if name == "fdopen" and self.active else result

        return call

    def step(self, name: str) -> bool:
        """Record one call of the running save; whether the process must die before it."""
        if not self.active:
            return False
        self.calls.append(name)
        return len(self.calls) - 1 == self.kill_at

    def die(self, what: str) -> None:
        die(f"in save {self.seq} call {len(self.calls) - 1} {what}")

    def save(self, tracker: CompletionTracker, path: Path, seq: int, kill_at: int | None) -> None:
        """``tracker.save(path)``, killed before its OS call *kill_at* (or right after it)."""
        self.seq = seq
        if kill_at is not None:
            steps = self.count_steps(tracker, path.with_name(".steps-probe"))
            print("steps", ",".join(steps), flush=True)
            if kill_at > len(steps):
                print(f"save {seq} makes {len(steps)} OS calls, no call {kill_at}", file=sys.stderr)
                raise SystemExit(3)
        self.calls, self.kill_at, self.active = [], kill_at, True
        try:
            tracker.save(path)
        finally:
            self.active = False
        if kill_at is not None:
            die(f"in save {seq} call {len(self.calls)} after the save returned")

    def count_steps(self, tracker: CompletionTracker, probe: Path) -> list[str]:
        self.calls, self.kill_at, self.active = [], None, True
        try:
            tracker.save(probe)
        finally:
            self.active = False
        os.unlink(probe)
        return self.calls


class _File:
    """A file object of the save whose writes and flushes are kill points."""

    def __init__(self, saboteur: Saboteur, handle) -> None:
        self._saboteur = saboteur
        self._handle = handle

    def write(self, data):
        if self._saboteur.step("file.write"):
            cut = self._saboteur.rng.randrange(len(data)) if len(data) else 0
            self._handle.write(bytes(data)[:cut])
            self._handle.flush()
            self._saboteur.die(f"file.write after {cut} of {len(data)} bytes")
        return self._handle.write(data)

    def flush(self):
        if self._saboteur.step("file.flush"):
            self._saboteur.die("before file.flush")
        return self._handle.flush()

    def close(self):
        if self._saboteur.step("file.close"):
            self._saboteur.die("before file.close")
        return self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getattr__(self, name):
        return getattr(self._handle, name)


def probe(directory: Path, rows: int) -> int:
    """Print the OS calls that one save of a fresh W10 tracker makes, one kill point each."""
    tracker = CompletionTracker.with_graph(build_graph(W10), row_groups(rows, W10.buffer_size))
    tracker.seed_frontier()
    print("steps", ",".join(Saboteur(random.Random(0)).count_steps(tracker, directory / CHECKPOINT)))
    return 0


def main(argv: list[str]) -> int:
    if argv[0] == "--probe":
        return probe(Path(argv[1]), int(argv[2]))
    directory, attempt, rows, seed = Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])
    options = dict(zip(argv[4::2], argv[5::2], strict=True))
    # (tasks completed before the save, OS call of the save to die before, mid-tick saves only)
    in_save = None
    if "--die-in-save" in options:
        first, call, *mid = options["--die-in-save"].split(":")
        in_save = (int(first), int(call), mid == ["mid"])
    mid_tick = int(options["--die-mid-tick"]) if "--die-mid-tick" in options else None
    rng = random.Random(seed * 1_000 + attempt)

    for stale in directory.glob(f".{CHECKPOINT}.*"):  # left behind by a save that was killed
        stale.unlink()
    graph = build_graph(W10)
    groups = row_groups(rows, W10.buffer_size)
    sizes = dict(groups)
    columns = list(W10.column_names)
    path = directory / CHECKPOINT
    tracker = (
        CompletionTracker.load(path, graph) if path.exists() else CompletionTracker.with_graph(graph, groups)
    )
    # The window is a function of the state: compacted groups are finished, active ones are in
    # the window, and pending ones follow in order (admission is in order).
    active = tracker.active_row_groups()
    waiting = [
        (rg, n) for rg, n in groups if rg not in active and not tracker.is_row_group_complete(rg, n, columns)
    ]
    saboteur = Saboteur(rng)
    journal = os.open(directory / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    unlogged: list[str] = []
    own = saves = 0

    def record(*lines: str) -> None:
        unlogged.extend(lines)
        os.write(journal, "".join(unlogged).encode())
        unlogged.clear()

    def save(pending) -> None:
        nonlocal saves
        saves += 1
        data = tracker.to_bytes()  # the bytes save() writes (same format)
        digest = hashlib.sha256(data).hexdigest()
        handed_out = json.dumps(
            [[t.column, t.row_group, t.row_index] for t in pending], separators=(",", ":")
        )
        record(f"I {attempt} {saves} {own} {digest} {len(data)} {handed_out}\n")
        qualifies = in_save is not None and own >= in_save[0] and (bool(pending) or not in_save[2])
        kill_at = in_save[1] if qualifies else None
        saboteur.save(tracker, path, saves, kill_at)
        record(f"C {attempt} {saves}\n")

    print("ready", flush=True)
    ticks = 0
    drop_column, drop_every, buffer = W10.drop_column, W10.drop_every, W10.buffer_size
    while True:
        # A checkpoint may hold a group that is complete but not yet compacted.
        for rg in [rg for rg in active if tracker.is_row_group_complete(rg, sizes[rg], columns)]:
            tracker.compact_row_group(rg)
            active.remove(rg)
        while len(active) < W10.window and waiting:
            rg, n = waiting.pop(0)
            tracker.add_root_tasks(rg, n)
            active.append(rg)
        if not active:
            break
        if ticks and ticks % 2 == 0:
            save(())
        tasks = tracker.pop_ready()
        if not tasks:
            raise RuntimeError(f"empty frontier while row groups {active} are active")
        save_at = rng.randrange(len(tasks))
        for i, task in enumerate(tasks):
            if i == save_at:
                save(tasks[i:])
            rg, row = task.row_group, task.row_index
            if row is None:
                tracker.mark_row_range_complete(task.column, rg, sizes[rg])
                action = "b"
            elif task.column == drop_column and (rg * buffer + row) % drop_every == 0:
                tracker.drop_row(rg, row)
                action = "d"
            else:
                tracker.mark_cell_complete(task.column, rg, row)
                action = "c"
            unlogged.append(f"T {attempt} {task.column} {rg} {'-' if row is None else row} {action}\n")
            own += 1
            if mid_tick is not None and own >= mid_tick and i < len(tasks) - 1:
                die(f"mid tick after task {own} with {len(tasks) - 1 - i} tasks handed out")
        record()
        ticks += 1
    save(())
    os.close(journal)
    if in_save is not None or mid_tick is not None:
        print(f"the run ended after {own} tasks and {saves} saves, before its kill point", file=sys.stderr)
        return 3
    progress = {c: list(p) for c, p in tracker.progress().items()}
    print(
        json.dumps({"attempt": attempt, "tasks": own, "ticks": ticks, "saves": saves, "progress": progress})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
