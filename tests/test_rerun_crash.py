"""A rerun of an edited job killed (SIGKILL) at a chosen step, then resumed: the exact dataset.

J12 is first run whole (in this process); then ``rerun_worker.py`` reruns it with ``bucket``
edited (``bucket`` and the six columns downstream of it change, five are kept) and SIGKILLs
itself at a step chosen by count: a generator call, a group file's replacement between its
fsync and its rename, the job version switch before or after the manifest names it.  The
same edited job then resumes to the end.  Checked, per cell (``rerun_support`` logs them):

* the output is J12's, every row once, and every group file is the new version's;
* no kept cell was ever computed again, and no cell the directory held as done when the
  resume started was computed by it;
* every changed cell was computed, at most once per run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from job_support import CallLog, read_calls
from rerun_support import NAMES, downstream_of, held_now, j12_job, pinned_j12

from cellfrontier.job.store.generations import newest_version, read_manifest
from cellfrontier.job.store.group_files import read_group_stamp
from cellfrontier.testing.j12 import check_j12_output

pq = pytest.importorskip("pyarrow.parquet")
pytestmark = [pytest.mark.process, pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")]

WORKER = Path(__file__).with_name("rerun_worker.py")
ROWS = 4500
BUFFER = 100  # 45 row groups: rounds of the loop, and so checkpoints, come often
EDIT = {"bucket": "2"}
CHANGED = downstream_of("bucket")


def run_worker(out: Path, log: Path, kill: tuple[str, int] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(WORKER), str(out), str(log), str(ROWS), json.dumps(EDIT)]
    if kill is not None:
        command += ["--kill-at", kill[0], str(kill[1])]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def output_data(out: Path) -> dict[str, list[object]]:
    import pyarrow as pa

    tables = [pq.read_table(path) for path in sorted((out / "data").glob("part-*.parquet"))]
    table = pa.concat_tables(tables)
    return {name: table.column(name).to_pylist() for name in table.column_names}


@pytest.mark.parametrize(
    "kill",
    [
        ("call", 1),
        ("call", 2_600),
        ("call", 9_000),
        ("replace", 1),
        ("replace", 3),
        ("switched", 1),
        ("published", 1),
    ],
    ids=lambda k: f"{k[0]}-{k[1]}" if isinstance(k, tuple) else str(k),
)
def test_a_rerun_killed_at_a_step_resumes_to_the_exact_dataset(tmp_path: Path, kill: tuple[str, int]) -> None:
    out, log_path = tmp_path / "out", tmp_path / "calls"
    log = CallLog(log_path)
    log.note("run")
    j12_job(out, ROWS, pinned_j12(log), buffer_size=BUFFER).run()

    killed = run_worker(out, log_path, kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    if kill[0] in ("switched", "published"):
        record = newest_version(out)
        assert record is not None and record["generation"] == 2
        manifest = read_manifest(out)
        assert manifest is not None and manifest["generation"] == (1 if kill[0] == "switched" else 2)
    held = held_now(out, ROWS, BUFFER)
    if kill in (("call", 9_000), ("replace", 3)):  # the killed run had saved changed cells: kept now
        assert {c for c in held if c[0] in CHANGED}
    resumed = run_worker(out, log_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    check_j12_output(output_data(out), ROWS)
    current = newest_version(out)
    assert current is not None and current["generation"] == 2
    manifest = read_manifest(out)
    assert manifest == current  # the manifest names the version in the end
    for path in (out / "data").glob("part-*.parquet"):
        stamp = read_group_stamp(path)
        assert stamp is not None and stamp.columns is not None
        assert {n: fp for n, (fp, _) in stamp.columns.items()} == current["fingerprints"]
    assert not list((out / "data").glob(".*.tmp"))

    first, rerun, resume = read_calls(log_path)
    assert Counter(first) == Counter((name, i) for name in NAMES for i in range(ROWS))
    kept = set(NAMES) - CHANGED
    assert not [c for c in rerun + resume if c[0] in kept]  # a kept cell is never computed again
    again = held.intersection(resume)
    assert not again, f"the resume recomputed {len(again)} cells the directory held, e.g. {sorted(again)[:3]}"
    both = Counter(rerun) + Counter(resume)
    assert set(both) == {(name, i) for name in CHANGED for i in range(ROWS)}
    assert max(Counter(rerun).values(), default=1) == 1 and max(Counter(resume).values()) == 1
