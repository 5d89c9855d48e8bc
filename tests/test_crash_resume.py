"""Kill -9 at random moments, resume from the last checkpoint, and lose or repeat nothing.

``crash_worker.py`` runs the W10 driver of ``workloads.md`` at 20,000 rows in a subprocess and
saves a checkpoint every few ticks; it logs every completed task durably, tagged with its
attempt and the checkpoint the work follows.  Each attempt is SIGKILLed from outside after a
random delay or during a (stretched) save, or kills itself at an exact moment: inside a save
between the temporary file and the rename, mid-tick, or right after a tick's log is durable.
A fresh worker then resumes from the newest checkpoint, until one finishes.  From the log and
the checkpoint names the test rebuilds what every checkpoint contains and checks that

* every checkpoint loads and holds exactly the work logged before it (per-column progress);
* no task completed before a checkpoint is completed again by an attempt resumed from it;
* the work in the final attempt's starting checkpoint plus the final attempt's own work is the
  fixed W10 count, 139,260 tasks, each exactly once.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from cellfrontier import CompletionTracker
from cellfrontier.workloads import W10, build_graph, expected_task_count

ROWS = 20_000
EXPECTED = 139_260
EVERY = 3  # ticks between checkpoints (about 63 ticks in a whole run)
WORKER = Path(__file__).with_name("crash_worker.py")
CKPT = re.compile(r"ckpt-(\d+)-(\d+)-(\d+)\.cf$")
MODES = ("external", "in_save", "during_slow_save", "mid_tick", "after_log")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def test_the_expected_count_is_the_workload_count() -> None:
    assert expected_task_count(W10, ROWS) == EXPECTED == 20 * 6_963


def newest(directory: Path) -> int:
    ids = [int(m.group(1)) for p in directory.iterdir() if (m := CKPT.match(p.name))]
    return max(ids, default=0)


def run_attempt(directory: Path, attempt: int, mode: str | None, rng: random.Random) -> tuple[int, str]:
    """Start one worker, kill it as *mode* says, return its exit code and stdout."""
    args = [sys.executable, str(WORKER), str(directory), str(attempt), str(ROWS), str(EVERY)]
    if mode == "in_save":
        args += ["--die-in-save", str(rng.randint(1, 5))]
    elif mode == "mid_tick":
        args += ["--die-at-task", str(rng.randint(1, 30_000))]
    elif mode == "after_log":
        args += ["--die-after-log", str(rng.randint(1, 12))]
    elif mode == "during_slow_save":
        args += ["--sleep-in-save", "0.2"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out = ""
    if mode == "external":
        try:
            proc.wait(timeout=rng.uniform(0.05, 0.5))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    elif mode == "during_slow_save":
        wanted = rng.randint(1, 4)
        assert proc.stdout is not None
        for line in proc.stdout:  # each "saving" line is printed right before the slow rename
            out += line
            if line.startswith("saving"):
                wanted -= 1
                if wanted == 0:
                    time.sleep(rng.uniform(0.0, 0.15))  # inside the 0.2 s sleep before the rename
                    proc.send_signal(signal.SIGKILL)
                    break
    more, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGKILL), err
    return proc.returncode, out + more


def read_log(path: Path) -> dict[tuple[int, int], list[tuple]]:
    """Log lines grouped by (attempt, base checkpoint); a torn last line is ignored."""
    text = path.read_text() if path.exists() else ""
    lines = text.split("\n")
    by_origin: dict[tuple[int, int], list[tuple]] = defaultdict(list)
    for line in lines[:-1]:  # the piece after the last newline is empty or torn
        attempt, base, column, rg, row, action = line.split()
        by_origin[int(attempt), int(base)].append((column, int(rg), None if row == "-" else int(row), action))
    return by_origin


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kill_and_resume_until_done_loses_and_repeats_nothing(seed, tmp_path) -> None:
    rng = random.Random(seed)
    modes = list(MODES)
    rng.shuffle(modes)
    plan = [*modes[: 3 + seed % 2], None]  # three or four kills, then a run left to finish
    started_from: dict[int, int] = {}
    kills = killed_in_save = 0
    summary = None
    attempt = 0
    while summary is None:
        attempt += 1
        assert attempt < 20, "the run never finished"
        mode = plan[min(attempt - 1, len(plan) - 1)]
        started_from[attempt] = newest(tmp_path)
        code, out = run_attempt(tmp_path, attempt, mode, rng)
        if code == 0:
            summary = json.loads(out.strip().splitlines()[-1])
        else:
            kills += 1
            if mode in ("in_save", "during_slow_save"):
                # Killed between writing the temporary file and the rename: the temporary file
                # is there, and the checkpoints present all load (the next worker removes it).
                assert list(tmp_path.glob(".ckpt-*.tmp")), mode
                killed_in_save += 1
    assert kills >= 2, "the kills all came too late to test anything"

    log = read_log(tmp_path / "log")
    checkpoints = {
        int(m.group(1)): (int(m.group(2)), int(m.group(3)))
        for p in tmp_path.iterdir()
        if (m := CKPT.match(p.name))
    }
    assert not list(tmp_path.glob(".ckpt-*.tmp")), "a finished run leaves no temporary file"

    content: dict[int, list[tuple]] = {0: []}
    for k in sorted(checkpoints):  # a parent always has a smaller id
        writer, parent = checkpoints[k]
        content[k] = content[parent] + log[writer, parent]
        assert len(set(content[k])) == len(content[k]), f"checkpoint {k} holds a task twice"

    graph = build_graph(W10)
    for k, tasks in content.items():
        if k == 0:
            continue
        path = next(tmp_path.glob(f"ckpt-{k}-*.cf"))
        progress = CompletionTracker.load(path, graph).progress()
        completed = Counter()
        for column, _rg, row, action in tasks:
            completed[column] += W10.buffer_size if row is None else action == "c"
        assert {c: p.completed for c, p in progress.items()} == {c: completed[c] for c in progress}, k
        assert progress["q"].dropped == sum(action == "d" for *_, action in tasks), k

    for attempt, start in started_from.items():
        before = set(content[start])
        after = [task for (a, _base), tasks in log.items() if a == attempt for task in tasks]
        assert len(set(after)) == len(after), f"attempt {attempt} completed a task twice"
        assert not before & set(after), f"attempt {attempt} redid work from checkpoint {start}"

    final = attempt
    start = started_from[final]
    own = [task for (a, _base), tasks in log.items() if a == final for task in tasks]
    assert summary["tasks"] == len(own)
    assert len(content[start]) + len(own) == EXPECTED
    assert len(set(content[start]) | set(own)) == EXPECTED
    assert all(completed + dropped == total for completed, dropped, total in summary["progress"].values())
    print(
        f"seed {seed}: {attempt} attempts, {kills} kills ({plan[:kills]}; {killed_in_save} inside a save), "
        f"{len(checkpoints)} checkpoints, "
        f"final attempt resumed from checkpoint {start} with {len(content[start])} tasks done"
    )
