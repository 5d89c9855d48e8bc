"""Worker process for ``test_crash_resume.py``: the W10 driver with checkpoints, killable anywhere.

    python crash_worker.py DIR ATTEMPT ROWS EVERY [--die-in-save N | --die-after-log N |
                                                   --die-at-task N | --sleep-in-save S]

Resumes from the newest checkpoint in DIR (``ckpt-<id>-<attempt>-<parent>.cf``; the name
records which attempt wrote it and which checkpoint that attempt had resumed from or saved
before), or starts afresh.  Every tick it completes the whole frontier as the W10 driver does,
then appends one line per task to ``DIR/log`` (``attempt base column row_group row action``,
``base`` being the checkpoint the tick's work follows) with a single ``write`` and ``fsync``,
then compacts and admits, and every EVERY ticks saves checkpoint ``<id>`` with
``CompletionTracker.save``.  On success it prints a JSON summary and exits 0.

The ``--die-*`` options make it SIGKILL itself at an exact moment (inside the N-th save between
writing the temporary file and the rename; after the N-th tick's log is durable but before the
save; after completing task N of the run, in the middle of a tick), and ``--sleep-in-save``
stretches every save so that a kill from outside lands inside it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

from cellfrontier import CompletionTracker
from cellfrontier.workloads import W10, build_graph, row_groups

CKPT = re.compile(r"ckpt-(\d+)-(\d+)-(\d+)\.cf$")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def newest_checkpoint(directory: Path) -> tuple[int, Path | None]:
    best: tuple[int, Path | None] = (0, None)
    for path in directory.iterdir():
        match = CKPT.match(path.name)
        if match and int(match.group(1)) > best[0]:
            best = (int(match.group(1)), path)
    return best


def main(argv: list[str]) -> int:
    directory, attempt, rows, every = Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])
    options = dict(zip(argv[4::2], argv[5::2], strict=True))
    die_in_save = int(options.get("--die-in-save", 0))
    die_after_log = int(options.get("--die-after-log", 0))
    die_at_task = int(options.get("--die-at-task", 0))
    sleep_in_save = float(options.get("--sleep-in-save", 0))

    for stale in directory.glob(".ckpt-*.tmp"):  # left behind by a save that was killed
        stale.unlink()
    graph = build_graph(W10)
    groups = row_groups(rows, W10.buffer_size)
    sizes = dict(groups)
    columns = list(W10.column_names)
    base, path = newest_checkpoint(directory)
    if path is None:
        tracker = CompletionTracker.with_graph(graph, groups)
    else:
        tracker = CompletionTracker.load(path, graph)
    # The window is a function of the state: compacted groups are finished, active ones are in
    # the window, and pending ones follow in order (admission is in order).
    active = tracker.active_row_groups()
    pending = [
        (rg, n) for rg, n in groups if rg not in active and not tracker.is_row_group_complete(rg, n, columns)
    ]

    def admit() -> None:
        while len(active) < W10.window and pending:
            rg, n = pending.pop(0)
            tracker.add_root_tasks(rg, n)
            active.append(rg)

    saves = 0
    real_replace = os.replace

    def replace(src, dst):  # the rename at the heart of an atomic save
        if saves == die_in_save:
            die()
        if sleep_in_save:
            print("saving", flush=True)
            time.sleep(sleep_in_save)
        real_replace(src, dst)

    os.replace = replace
    admit()
    log = os.open(directory / "log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    ticks = done = 0
    drop_column, drop_every, buffer = W10.drop_column, W10.drop_every, W10.buffer_size
    while active:
        tasks = tracker.pop_ready()
        if not tasks:
            raise RuntimeError(f"empty frontier while row groups {active} are active")
        lines = []
        for task in tasks:
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
            lines.append(f"{attempt} {base} {task.column} {rg} {'-' if row is None else row} {action}\n")
            done += 1
            if done == die_at_task:
                die()
        os.write(log, "".join(lines).encode())
        os.fsync(log)
        ticks += 1
        if ticks == die_after_log:
            die()
        finished = [rg for rg in active if tracker.is_row_group_complete(rg, sizes[rg], columns)]
        for rg in finished:
            tracker.compact_row_group(rg)
            active.remove(rg)
        admit()
        if ticks % every == 0:
            saves += 1
            new = newest_checkpoint(directory)[0] + 1
            tracker.save(directory / f"ckpt-{new}-{attempt}-{base}.cf")
            base = new
    os.close(log)
    progress = {c: list(p) for c, p in tracker.progress().items()}
    print(json.dumps({"attempt": attempt, "tasks": done, "ticks": ticks, "progress": progress}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
