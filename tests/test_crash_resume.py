"""Kill -9 at planned steps, resume from the last checkpoint, and lose or repeat nothing.

``crash_worker.py`` runs the W10 driver of ``workloads.md`` at 20,000 rows in a subprocess,
saving to one fixed checkpoint path mid-tick (with tasks handed out and not completed) and at
tick boundaries, and journals every completed task and every save durably.  Each seed has a
kill plan, drawn from the seed before anything runs, and every planned attempt is SIGKILLed at
a point chosen by step, never by a clock: inside a save, right before one of its OS calls
(temporary file, ``fchmod``, a write cut after a seeded number of bytes, ``fsync``, rename,
directory ``fsync``) or right after it returns; or mid-tick, after a given task.  The kill
points are task numbers spread over the first 85% of the job, in order, so every kill comes
while the job has work left, and what each attempt does depends only on the plan and the code,
never on the machine's speed.  Between them, the plans die before every OS call of a save and
right after it.  One attempt per seed is also killed from outside at a random moment, with a
planned kill as a backstop; nothing asserted depends on where it lands.  A fresh worker then
resumes from the checkpoint, until one finishes.  Before every resume the test checks that

* the file at the checkpoint path is byte for byte a save that was started: the previous
  checkpoint, or the one being written when the kill came if its rename had happened (for a
  planned kill, exactly the one the position of the kill says, and a half-written temporary
  file when the kill cut a write);
* it loads and holds exactly the tasks journalled before it (per-column progress, and each
  task of an active group done or dropped);
* the tasks it recorded as handed out but not completed are ready again after ``load``, and
  nothing it holds as completed is ready;

and after the run that every planned attempt died where its plan said, that no attempt
completed a task that its starting checkpoint held, and that the starting checkpoint of the
last attempt plus that attempt's own work is the fixed W10 count, 139,260 tasks, each exactly
once.  The one exception is a handed-out task whose row was dropped before the checkpoint
(possible once a resume has merged two ticks): the tracker never offers a dropped row's task,
so such tasks are checked to be absent and subtracted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cellfrontier import CompletionTracker, SliceRef
from cellfrontier.testing.workloads import W10, build_graph, expected_task_count

ROWS = 20_000
EXPECTED = 139_260
WORKER = Path(__file__).with_name("crash_worker.py")
CHECKPOINT = "job.ckpt"
SEEDS = (1, 2, 3, 4)
# The planned kills come at points spread over this share of the job, in order, so every one of
# them comes while the job still has thousands of tasks to do (an attempt that dies in a save
# may have gone on for up to two ticks past its point).
REACH = 0.85
MID_TICK_KILLS = 2
EXTERNAL_KILLS = 1
# A safety net against a hung worker only: a healthy attempt takes about a second.
ATTEMPT_TIMEOUT = 600

pytestmark = [pytest.mark.process, pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")]


def test_the_expected_count_is_the_workload_count() -> None:
    assert expected_task_count(W10, ROWS) == EXPECTED == 20 * 6_963


@dataclass(frozen=True)
class Kill:
    """Where one attempt dies: ``in_save``, ``mid_tick``, or ``external`` (outside, at a random
    moment, with the planned ``in_save`` kill as a backstop so the attempt dies either way)."""

    kind: str
    reach: float  # where the job is when the kill comes, as a share of all its tasks
    call: int = 0  # in a save: the OS call to die before; the number of calls is "right after"
    mid_tick_save: bool = False  # in a save: only a save taken with tasks handed out qualifies
    delay: float = 0.0  # external: seconds after the worker is ready

    def point(self, left: int) -> int:
        """The task number of the kill for an attempt with *left* of the job's tasks to do.

        An attempt that starts past its point dies in its first save, or after its first task
        that leaves others of its tick handed out.
        """
        return max(1 if self.kind == "mid_tick" else 0, int(self.reach * EXPECTED) - (EXPECTED - left))

    def worker_args(self, left: int) -> list[str]:
        if self.kind == "mid_tick":
            return ["--die-mid-tick", str(self.point(left))]
        spec = f"{self.point(left)}:{self.call}" + (":mid" if self.mid_tick_save else "")
        return ["--die-in-save", spec]


def rename_call(steps: list[str]) -> int:
    """The OS call of a save that puts the new checkpoint in place."""
    return next(i for i, name in enumerate(steps) if name in ("replace", "rename"))


def kill_plan(seed: int, steps: list[str]) -> list[Kill]:
    """The seed's kills, in order.

    Inside a save: this seed's share of all the save's kill points (so that the four seeds
    together die before every OS call and right after the save), one cut write (a
    half-written temporary file), and one kill after the rename of a save taken with tasks
    handed out (the next attempt resumes with tasks to hand out again).  Then two kills mid
    tick, and one from outside.  In a random order, at random points of the job in order.
    """
    rng = random.Random(seed)
    after_return = len(steps)
    writes = [i for i, name in enumerate(steps) if name.endswith("write")]
    calls = [call for call in range(after_return + 1) if call % len(SEEDS) == SEEDS.index(seed)]
    plan = [Kill("in_save", 0, call) for call in calls]
    plan.append(Kill("in_save", 0, rng.choice(writes)))
    plan.append(Kill("in_save", 0, rng.randint(rename_call(steps) + 1, after_return), mid_tick_save=True))
    plan += [Kill("mid_tick", 0) for _ in range(MID_TICK_KILLS)]
    plan += [
        Kill("external", 0, rng.randint(0, after_return), delay=rng.uniform(0, 0.15))
        for _ in range(EXTERNAL_KILLS)
    ]
    rng.shuffle(plan)
    reaches = sorted(rng.uniform(0, REACH) for _ in plan)
    return [dataclasses.replace(kill, reach=reach) for kill, reach in zip(plan, reaches, strict=True)]


@pytest.fixture(scope="module")
def save_steps(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The OS calls one save makes, as the worker counts them: the kill points of a save."""
    directory = tmp_path_factory.mktemp("probe")
    out = subprocess.run(
        [sys.executable, str(WORKER), "--probe", str(directory), str(ROWS)],
        capture_output=True,
        text=True,
        timeout=ATTEMPT_TIMEOUT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=True,
    ).stdout
    steps = out.strip().removeprefix("steps ").split(",")
    assert any(name.endswith("write") for name in steps) and rename_call(steps) >= 0, steps
    return steps


def test_the_kill_plans_die_at_every_os_call_of_a_save_and_on_both_sides_of_its_rename(save_steps) -> None:
    plans = {seed: kill_plan(seed, save_steps) for seed in SEEDS}
    rename = rename_call(save_steps)
    in_save = [kill for plan in plans.values() for kill in plan if kill.kind == "in_save"]
    assert {kill.call for kill in in_save} == set(range(len(save_steps) + 1))
    for seed, plan in plans.items():
        assert kill_plan(seed, save_steps) == plan, "a plan is drawn from its seed alone"
        calls = [kill.call for kill in plan if kill.kind == "in_save"]
        assert any(call < len(save_steps) and save_steps[call].endswith("write") for call in calls)
        assert any(call <= rename for call in calls) and any(call > rename for call in calls)
        assert any(kill.mid_tick_save and kill.call > rename for kill in plan)
        assert sum(kill.kind == "mid_tick" for kill in plan) == MID_TICK_KILLS
        assert sum(kill.kind == "external" for kill in plan) == EXTERNAL_KILLS
        reaches = [kill.reach for kill in plan]
        assert reaches == sorted(reaches) and reaches[0] >= 0 and reaches[-1] <= REACH


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
    read_up_to: int = 0  # bytes of the file parsed so far, always at the end of a record
    by_key: dict[tuple[int, int], Save] = field(default_factory=dict)

    def read_new_records(self, path: Path) -> None:
        """Parse the records appended since the last call (the journal only ever grows)."""
        if not path.exists():
            return
        with open(path, "rb") as handle:
            handle.seek(self.read_up_to)
            data = handle.read()
        whole = data.rfind(b"\n") + 1  # the piece after the last newline is empty or torn
        self.read_up_to += whole
        for line in data[:whole].decode().split("\n")[:-1]:
            kind, attempt, *rest = line.split(" ", 6)
            attempt = int(attempt)
            if kind == "T":
                column, rg, row, action = rest
                task = (column, int(rg), None if row == "-" else int(row), action)
                self.tasks.setdefault(attempt, []).append(task)
            elif kind == "I":
                seq, own, digest, size, pending = rest
                save = Save(
                    attempt, int(seq), int(own), digest, int(size), [tuple(t) for t in json.loads(pending)]
                )
                self.saves.append(save)
                self.by_key[attempt, save.seq] = save
            else:
                self.by_key[attempt, int(rest[0])].committed = True

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


def run_attempt(
    directory: Path, attempt: int, seed: int, kill: Kill | None, left: int
) -> tuple[int, str, str]:
    """Start one worker and let it die as *kill* says; its exit code, stdout and stderr."""
    args = [sys.executable, str(WORKER), str(directory), str(attempt), str(ROWS), str(seed)]
    if kill is not None:
        args += kill.worker_args(left)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # Unbuffered, so that reading the "ready" line cannot swallow the lines printed after it
    # (``communicate`` reads the pipe itself, past any buffer of ``proc.stdout``).
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env)
    hung = threading.Event()

    def give_up() -> None:  # a safety net only: a healthy attempt ends long before
        hung.set()
        proc.kill()

    timer = threading.Timer(ATTEMPT_TIMEOUT, give_up)
    timer.start()
    try:
        out = b""
        if kill is not None and kill.kind == "external":
            assert proc.stdout is not None
            out = proc.stdout.readline()  # "ready": loaded, the clock of the outside kill starts now
            if out == b"ready\n":
                time.sleep(kill.delay)  # an extra kill at a random moment: nothing asserted depends on it
                proc.send_signal(signal.SIGKILL)
        more, err = proc.communicate()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert not hung.is_set(), f"attempt {attempt} still ran after {ATTEMPT_TIMEOUT} s"
    return proc.returncode, (out + more).decode(), err.decode()


def check_checkpoint(
    path: Path, content: list[tuple], keys: set[tuple], pending: list[tuple], graph
) -> set[tuple]:
    """The checkpoint holds exactly *content* (whose tasks are *keys*), nothing of it is ready,
    and *pending* is ready again.

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
    assert not ready & keys, "a completed task is offered again"
    abandoned = {t for t in pending if t[2] is not None and tracker.is_dropped(t[1], t[2])}
    assert not abandoned & ready, "a task of a dropped row is ready"
    missing = set(pending) - abandoned - ready
    assert not missing, f"{len(missing)} tasks handed out before the checkpoint are not ready again"
    return abandoned


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_and_resume_until_done_loses_and_repeats_nothing(seed, tmp_path, save_steps) -> None:
    plan = kill_plan(seed, save_steps)
    rename = rename_call(save_steps)
    graph = build_graph(W10)
    path = tmp_path / CHECKPOINT
    started_from: dict[int, Save | None] = {}
    contents: dict[tuple[int, int] | None, list[tuple]] = {None: []}
    content_keys: dict[tuple[int, int] | None, set[tuple]] = {}

    def content(save: Save | None) -> list[tuple]:
        if save is None:
            return []
        key = (save.attempt, save.seq)
        if key not in contents:
            contents[key] = (
                content(started_from[save.attempt]) + journal.tasks.get(save.attempt, [])[: save.own]
            )
        return contents[key]

    def keys(save: Save | None) -> set[tuple]:
        """The tasks of ``content(save)`` as ``(column, row_group, row)``."""
        key = None if save is None else (save.attempt, save.seq)
        if key not in content_keys:
            content_keys[key] = {t[:3] for t in content(save)}
        return content_keys[key]

    def skipped_before(save: Save | None) -> set[tuple]:
        """Tasks of rows dropped while they were handed out, in the checkpoints *save* descends
        from: the one thing that may keep the total below the fixed count."""
        skipped: set[tuple] = set()
        while save is not None:
            skipped |= abandoned[save.attempt, save.seq]
            save = started_from[save.attempt]
        return skipped

    stats = Counter()
    abandoned: dict[tuple[int, int], set[tuple]] = {}
    journal = Journal()
    died_in_save: dict[int, int] = {}  # planned attempt -> the save it died in
    summary = None
    attempt = 0
    while summary is None:
        attempt += 1
        assert attempt <= len(plan) + 1, "the attempt after the last planned kill did not finish"
        kill = plan[attempt - 1] if attempt <= len(plan) else None
        # Which save is at the checkpoint path?  The previous checkpoint, or the save the last
        # attempt was killed in if its rename had happened; never anything else.
        if attempt == 1:
            assert not path.exists()
            start = None
        else:
            prev, prev_kill = attempt - 1, plan[attempt - 2]
            saves = journal.of(prev)
            committed = [s for s in saves if s.committed]
            previous = committed[-1] if committed else started_from[prev]
            in_progress = saves[-1] if saves and not saves[-1].committed else None
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
            if digest is None:
                assert previous is None, "the checkpoint vanished"
                start = None
            else:
                candidates = [s for s in (previous, in_progress) if s is not None and s.digest == digest]
                assert candidates, "the checkpoint file is neither the previous checkpoint nor the new one"
                start = candidates[-1]
            temps = [p.stat().st_size for p in tmp_path.glob(f".{CHECKPOINT}.*")]
            if prev_kill.kind == "in_save":
                # Died right before OS call `call` of save `died_in_save[prev]` (or right after it).
                assert in_progress is not None and in_progress.seq == died_in_save[prev]
                in_place = in_progress if prev_kill.call > rename else previous
                assert digest == (in_place.digest if in_place else None), (
                    f"killed at call {prev_kill.call} of a save, the checkpoint is not the "
                    + ("new" if prev_kill.call > rename else "previous")
                    + " one"
                )
                # The save's temporary file exists from its creation to the rename.
                created = save_steps.index("open")
                assert len(temps) == (1 if created < prev_kill.call <= rename else 0), temps
                if prev_kill.call < len(save_steps) and save_steps[prev_kill.call].endswith("write"):
                    assert temps[0] < in_progress.size, "a cut write left a whole temporary file"
            elif prev_kill.kind == "mid_tick":
                assert in_progress is None and digest == (previous.digest if previous else None)
                assert not temps
            if in_progress is not None:
                stats["killed inside a save"] += 1
                stats[f"killed inside a save ({prev_kill.kind})"] += 1
                stats[
                    "new checkpoint in place" if start is in_progress else "previous checkpoint intact"
                ] += 1
                stats["half-written temporary file left"] += any(n < in_progress.size for n in temps)
        started_from[attempt] = start
        if start is not None:
            abandoned[start.attempt, start.seq] = check_checkpoint(
                path, content(start), keys(start), start.pending, graph
            )
            stats["resumed with tasks handed out"] += bool(start.pending)
            stats["handed-out tasks ready again"] += len(start.pending) - len(
                abandoned[start.attempt, start.seq]
            )
            stats["handed-out tasks of rows dropped since"] += len(abandoned[start.attempt, start.seq])
        left = EXPECTED - len(content(start)) - len(skipped_before(start))
        if kill is not None:
            assert left > 1, f"the plan left attempt {attempt} nothing to be killed in"
            stats["fewest tasks left to a killed attempt"] = min(
                left, stats["fewest tasks left to a killed attempt"] or left
            )
        code, out, err = run_attempt(tmp_path, attempt, seed, kill, left)
        stats["torn journal writes"] += Journal.cut_torn_tail(tmp_path / "journal")
        journal.read_new_records(tmp_path / "journal")
        if kill is None:
            assert code == 0, err
            summary = json.loads(out.strip().splitlines()[-1])
            continue
        assert code == -signal.SIGKILL, f"attempt {attempt} ({kill}) was not killed: {code} {err}"
        stats["kills"] += 1
        stats[f"kills ({kill.kind})"] += 1
        said = [line[5:] for line in out.splitlines() if line.startswith("kill ")]
        for where in said:
            where = where.split(" after ")[0] if "write after" in where else where
            stats[f"killed {re.sub(r'[0-9]+', 'N', where)}"] += 1
        if kill.kind == "external":
            continue  # it died somewhere before its backstop: nothing more to expect
        # A planned kill lands where the plan says, whatever the machine's speed.
        point = kill.point(left)
        assert len(said) == 1, (attempt, kill, left, out, err)
        if kill.kind == "mid_tick":
            match = re.fullmatch(r"mid tick after task (\d+) with (\d+) tasks handed out", said[0])
            assert match and int(match[1]) >= point and int(match[2]) > 0, said
            continue
        match = re.fullmatch(r"in save (\d+) call (\d+) .*", said[0])
        assert match and int(match[2]) == kill.call, said
        assert f"steps {','.join(save_steps)}" in out.splitlines(), "a save made other calls than the probe's"
        died_in_save[attempt] = int(match[1])
        saves = journal.of(attempt)
        # The first save that qualified: once `point` tasks were done, taken mid tick if asked.
        assert saves[-1].seq == int(match[1]) and saves[-1].own >= point
        assert bool(saves[-1].pending) or not kill.mid_tick_save
        assert not [s for s in saves[:-1] if s.own >= point and (s.pending or not kill.mid_tick_save)]

    # Every planned kill came, where the plan says; the run after them finished.
    assert attempt == len(plan) + 1
    assert stats["kills"] == len(plan)
    for kind in ("in_save", "mid_tick", "external"):
        assert stats[f"kills ({kind})"] == sum(k.kind == kind for k in plan)
    assert stats["killed inside a save (in_save)"] == sum(k.kind == "in_save" for k in plan)
    assert stats["resumed with tasks handed out"] >= 1, "the plan's mid-tick save never came back"

    for a, start in started_from.items():
        before = keys(start)
        own = [t[:3] for t in journal.tasks.get(a, [])]
        assert len(set(own)) == len(own), f"attempt {a} completed a task twice"
        assert not before & set(own), f"attempt {a} redid work its checkpoint held"
        if start is not None:
            assert not abandoned[start.attempt, start.seq] & set(own), f"attempt {a} ran a dropped row's task"

    final = journal.tasks.get(attempt, [])
    start = started_from[attempt]
    skipped = skipped_before(start)
    assert summary["tasks"] == len(final)
    assert len(content(start)) + len(final) + len(skipped) == EXPECTED
    final_keys = {t[:3] for t in final}
    assert len(keys(start) | final_keys | skipped) == EXPECTED
    assert all(done + dropped == total for done, dropped, total in summary["progress"].values())
    last = journal.of(attempt)[-1]
    assert last.committed and hashlib.sha256(path.read_bytes()).hexdigest() == last.digest
    check_checkpoint(path, content(start) + final, keys(start) | final_keys, [], graph)
    assert not list(tmp_path.glob(f".{CHECKPOINT}.*")), "a finished run leaves no temporary file"
    print(
        f"seed {seed}: {attempt} attempts, {sum(len(journal.of(a)) for a in started_from)} saves, "
        f"{left} tasks left to the last one, " + ", ".join(f"{k}: {v}" for k, v in sorted(stats.items()))
    )
