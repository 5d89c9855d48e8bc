"""Kill -9 at random moments, resume from the last checkpoint, and lose or repeat nothing.

``crash_worker.py`` runs the W10 driver of ``workloads.md`` at 20,000 rows in a subprocess,
saving to one fixed checkpoint path mid-tick (with tasks handed out and not completed) and at
tick boundaries, and journals every completed task and every save durably.  Each attempt is
SIGKILLed: inside a save at a random one of its OS calls (half-written temporary file, before
the fsync, before or after the rename ...) or just after it returns; mid-tick after a random
task; or from outside after a random delay, which with saves this frequent often lands inside
one.  A fresh worker then resumes from the checkpoint, until one finishes.  Before every
resume the test checks that

* the file at the checkpoint path is byte for byte a save that was started: the previous
  checkpoint, or the one being written when the kill came if its rename had happened;
* it loads and holds exactly the tasks journalled before it (per-column progress, and each
  task of an active group done or dropped);
* the tasks it recorded as handed out but not completed are ready again after ``load``, and
  nothing it holds as completed is ready;

and after the run that no attempt completed a task that its starting checkpoint held, and that
the starting checkpoint of the last attempt plus that attempt's own work is the fixed W10
count, 139,260 tasks, each exactly once.  The one exception is a handed-out task whose row was
dropped before the checkpoint (possible once a resume has merged two ticks): the tracker never
offers a dropped row's task, so such tasks are checked to be absent and subtracted.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cellfrontier import CompletionTracker, SliceRef
from cellfrontier.simulate.workloads import W10, build_graph, expected_task_count

ROWS = 20_000
EXPECTED = 139_260
WORKER = Path(__file__).with_name("crash_worker.py")
CHECKPOINT = "job.ckpt"
# Per seed: four kills inside a save, one mid-tick, three from outside at a random moment.
KILLS = ("in_save",) * 4 + ("mid_tick",) + ("external",) * 3

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def test_the_expected_count_is_the_workload_count() -> None:
    assert expected_task_count(W10, ROWS) == EXPECTED == 20 * 6_963


@dataclass
class Save:
    attempt: int
    seq: int
    own: int  # how many of the attempt's tasks it holds
    digest: str
    size: int
    pending: list[tuple]  # (column, row_group, row) handed out, not completed
    committed: bool = False


@dataclass
class Journal:
    tasks: dict[int, list[tuple]] = field(default_factory=dict)  # attempt -> (column, rg, row, action)
    saves: list[Save] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Journal:
        journal = cls()
        text = path.read_text() if path.exists() else ""
        by_key: dict[tuple[int, int], Save] = {}
        for line in text.split("\n")[:-1]:  # the piece after the last newline is empty or torn
            kind, attempt, *rest = line.split(" ", 6)
            attempt = int(attempt)
            if kind == "T":
                column, rg, row, action = rest
                task = (column, int(rg), None if row == "-" else int(row), action)
                journal.tasks.setdefault(attempt, []).append(task)
            elif kind == "I":
                seq, own, digest, size, pending = rest
                save = Save(
                    attempt, int(seq), int(own), digest, int(size), [tuple(t) for t in json.loads(pending)]
                )
                journal.saves.append(save)
                by_key[attempt, save.seq] = save
            else:
                by_key[attempt, int(rest[0])].committed = True
        return journal

    def of(self, attempt: int) -> list[Save]:
        return [s for s in self.saves if s.attempt == attempt]

    @staticmethod
    def cut_torn_tail(path: Path) -> bool:
        """Drop a record torn by a kill inside a large ``write``, so the next attempt's records
        start on a line of their own; whether there was one."""
        if not path.exists():
            return False
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep == len(data):
            return False
        with open(path, "r+b") as handle:
            handle.truncate(keep)
        return True


def run_attempt(directory: Path, attempt: int, seed: int, kill: str | None, rng: random.Random):
    """Start one worker and kill it as *kill* says; its exit code and stdout."""
    args = [sys.executable, str(WORKER), str(directory), str(attempt), str(ROWS), str(seed)]
    if kill == "in_save":
        args += ["--die-in-save", str(rng.randint(1, 8))]
    elif kill == "mid_tick":
        args += ["--die-at-task", str(rng.randint(1, 15_000))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    out = proc.stdout.readline()  # "ready": loaded, the clock of an outside kill starts now
    if kill == "external" and out == "ready\n":
        time.sleep(rng.uniform(0.0, 0.2))  # a whole run takes about 0.8 s
        proc.send_signal(signal.SIGKILL)
    more, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, -signal.SIGKILL), err
    return proc.returncode, out + more


def check_checkpoint(path: Path, content: set[tuple], pending: list[tuple], graph) -> set[tuple]:
    """The checkpoint holds exactly *content*, nothing of it is ready, and *pending* is ready again.

    A handed-out task whose row was dropped before the save (a ``meta`` cell handed out in the
    same tick as the ``q`` cell that dropped its row, which happens once a resume has merged two
    ticks) is not ready: a dropped row's tasks never are.  Those are returned.
    """
    tracker = CompletionTracker.load(path, graph)
    active = set(tracker.active_row_groups())
    completed = Counter()
    for column, rg, row, action in content:
        completed[column] += W10.buffer_size if row is None else action == "c"
        if rg in active:  # compacted groups only keep dropped rows; counted below
            if action == "d":
                assert tracker.is_dropped(rg, row), (column, rg, row)
            else:
                assert tracker.is_complete(SliceRef(column, rg, row)), (column, rg, row)
    progress = tracker.progress()
    assert {c: p.completed for c, p in progress.items()} == {c: completed[c] for c in progress}
    assert progress[W10.drop_column].dropped == sum(t[3] == "d" for t in content)
    ready = {(t.column, t.row_group, t.row_index) for t in tracker.ready_frontier()}
    assert not ready & {t[:3] for t in content}, "a completed task is offered again"
    abandoned = {t for t in pending if t[2] is not None and tracker.is_dropped(t[1], t[2])}
    assert not abandoned & ready, "a task of a dropped row is ready"
    missing = set(pending) - abandoned - ready
    assert not missing, f"{len(missing)} tasks handed out before the checkpoint are not ready again"
    return abandoned


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kill_and_resume_until_done_loses_and_repeats_nothing(seed, tmp_path) -> None:
    rng = random.Random(seed)
    plan = list(KILLS)
    rng.shuffle(plan)
    graph = build_graph(W10)
    path = tmp_path / CHECKPOINT
    started_from: dict[int, Save | None] = {}
    contents: dict[tuple[int, int] | None, list[tuple]] = {None: []}

    def content(save: Save | None) -> list[tuple]:
        if save is None:
            return []
        key = (save.attempt, save.seq)
        if key not in contents:
            contents[key] = (
                content(started_from[save.attempt]) + journal.tasks.get(save.attempt, [])[: save.own]
            )
        return contents[key]

    stats = Counter()
    steps: set[str] = set()
    abandoned: dict[tuple[int, int], set[tuple]] = {}
    journal = Journal()
    summary = None
    attempt = 0
    while summary is None:
        attempt += 1
        assert attempt <= len(plan) + 3, "the run never finished"
        kill = plan[attempt - 1] if attempt <= len(plan) else None
        # Which save is at the checkpoint path?  The previous checkpoint, or the save the last
        # attempt was killed in if its rename had happened; never anything else.
        if attempt == 1:
            assert not path.exists()
            start = None
        else:
            prev = attempt - 1
            saves = journal.of(prev)
            committed = [s for s in saves if s.committed]
            previous = committed[-1] if committed else started_from[prev]
            in_progress = saves[-1] if saves and not saves[-1].committed else None
            if not path.exists():
                assert previous is None, "the checkpoint vanished"
                start = None
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                candidates = [s for s in (previous, in_progress) if s is not None and s.digest == digest]
                assert candidates, "the checkpoint file is neither the previous checkpoint nor the new one"
                start = candidates[-1]
            if in_progress is not None:
                stats["killed inside a save"] += 1
                stats[f"killed inside a save ({plan[prev - 1]})"] += 1
                stats[
                    "new checkpoint in place" if start is in_progress else "previous checkpoint intact"
                ] += 1
                temps = [p.stat().st_size for p in tmp_path.glob(f".{CHECKPOINT}.*")]
                stats["half-written temporary file left"] += any(n < in_progress.size for n in temps)
        started_from[attempt] = start
        if start is not None:
            abandoned[start.attempt, start.seq] = check_checkpoint(
                path, set(content(start)), start.pending, graph
            )
            stats["resumed with tasks handed out"] += bool(start.pending)
            stats["handed-out tasks ready again"] += len(start.pending) - len(
                abandoned[start.attempt, start.seq]
            )
            stats["handed-out tasks of rows dropped since"] += len(abandoned[start.attempt, start.seq])
        code, out = run_attempt(tmp_path, attempt, seed, kill, rng)
        stats["torn journal writes"] += Journal.cut_torn_tail(tmp_path / "journal")
        journal = Journal.read(tmp_path / "journal")
        if code == 0:
            summary = json.loads(out.strip().splitlines()[-1])
        else:
            stats["kills"] += 1
            stats[f"kills ({kill})"] += 1
            for line in out.splitlines():
                if line.startswith("kill "):
                    where = line[5:].split(" after ")[0] if "write after" in line else line[5:]
                    stats[f"killed {re.sub(r'[0-9]+', 'N', where)}"] += 1
                elif line.startswith("steps "):
                    steps.add(line[6:])
    assert stats["kills"] >= 5, f"the kills came too late to test anything: {stats}"
    assert stats["killed inside a save"] >= 3, stats

    for a, start in started_from.items():
        before = {t[:3] for t in content(start)}
        own = [t[:3] for t in journal.tasks.get(a, [])]
        assert len(set(own)) == len(own), f"attempt {a} completed a task twice"
        assert not before & set(own), f"attempt {a} redid work its checkpoint held"
        if start is not None:
            assert not abandoned[start.attempt, start.seq] & set(own), f"attempt {a} ran a dropped row's task"

    final = journal.tasks.get(attempt, [])
    start = started_from[attempt]
    # Tasks of rows dropped while they were handed out, in the checkpoints the final state
    # descends from: the one thing that may keep the total below the fixed count.
    skipped: set[tuple] = set()
    link = start
    while link is not None:
        skipped |= abandoned[link.attempt, link.seq]
        link = started_from[link.attempt]
    assert summary["tasks"] == len(final)
    assert len(content(start)) + len(final) + len(skipped) == EXPECTED
    assert len({t[:3] for t in content(start)} | {t[:3] for t in final} | skipped) == EXPECTED
    assert all(done + dropped == total for done, dropped, total in summary["progress"].values())
    last = journal.of(attempt)[-1]
    assert last.committed and hashlib.sha256(path.read_bytes()).hexdigest() == last.digest
    check_checkpoint(path, set(content(start)) | set(final), [], graph)
    assert not list(tmp_path.glob(f".{CHECKPOINT}.*")), "a finished run leaves no temporary file"
    print(
        f"seed {seed}: {attempt} attempts, {sum(len(journal.of(a)) for a in started_from)} saves, "
        + ", ".join(f"{k}: {v}" for k, v in sorted(stats.items()))
        + f"; OS calls of a save: {' | '.join(sorted(steps))}"
    )
