"""The ``cellfrontier`` command: ``run`` and ``status`` on a job in a temporary ``pipeline.py``.

``cli_pipeline.py`` is copied into each test's directory as ``pipeline.py``; the environment
chooses where its run stops (SIGINT, SIGTERM, SIGKILL or a held call at the N-th generator
call), so every kill point is a step of the job, never a moment.  Tests that start, signal or
kill processes run the installed ``cellfrontier`` command in a subprocess; the others call
:func:`cellfrontier.cli.main` in this process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cli_pipeline import ROWS, expected_columns
from job_support import needs_pyarrow

from cellfrontier.cli import main

pytestmark = [
    needs_pyarrow,
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals"),
]

PIPELINE = Path(__file__).with_name("cli_pipeline.py")
TASKS = ROWS * 2 + ROWS // 500  # two cell columns, one batch per group of 500
SCRIPT = Path(sys.executable).with_name("cellfrontier")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "cellfrontier"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory holding ``pipeline.py``; the module and ``sys.path`` restored afterwards."""
    shutil.copy(PIPELINE, tmp_path / "pipeline.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("pipeline", "broken"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    for key in [k for k in os.environ if k.startswith("PIPELINE_")]:
        monkeypatch.delenv(key)
    return tmp_path


def read_output(out: Path) -> dict[str, list[Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(out / "data")
    return {name: table.column(name).to_pylist() for name in ("_row", "topic", "answer", "judge")}


def _sigint_as_at_a_terminal() -> None:
    # A test run started in the background of a non-interactive shell passes SIGINT on ignored;
    # the command, like any program, would then leave it ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def command(cwd: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """Start ``cellfrontier ARGS`` in *cwd* with the ``PIPELINE_*`` settings *env*."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    environment.update({f"PIPELINE_{k.upper()}": v for k, v in env.items()})
    return subprocess.Popen(
        [*COMMAND, *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_as_at_a_terminal,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, out, err


def run_command(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    return finish(command(cwd, *args, **env))


def status_json(cwd: Path, directory: str = "out", **env: str) -> dict[str, Any]:
    code, out, err = run_command(cwd, "status", directory, "--json", **env)
    assert code == 0, err
    return json.loads(out)


def calls_per_task(log: Path) -> Counter[tuple[str, int]]:
    return Counter(tuple(line.split()) for line in log.read_text().splitlines())  # type: ignore[misc]


def as_columns(library: str, scope: dict[str, Any]) -> dict[str, list[Any]]:
    """What a load snippet loaded (``table``, ``df`` or ``ds``), as ``{column: values}``."""
    if library == "pyarrow":
        data = scope["table"].to_pydict()
    elif library == "datasets":
        data = scope["ds"].to_dict()
    else:
        data = {name: scope["df"][name].to_list() for name in scope["df"].columns}
    return {name: list(data[name]) for name in ("_row", "topic", "answer", "judge")}


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    """Wait until the run creates *path* (a step it takes) or ends; two minutes at most."""
    for _ in range(12_000):
        if path.exists() or process.poll() is not None:
            return
        time.sleep(0.01)


def snapshot(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under *directory*: size, modification time (ns) and content."""
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


# ---------------------------------------------------------------------- the command line


def test_help_lists_each_subcommand_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    for name in ("run", "status", "simulate"):
        [line] = [line for line in lines if line.split()[:1] == [name]]
        assert len(line.split()) > 3  # the name and its one-line description


@pytest.mark.process
def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cellfrontier", "status", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "holds no cellfrontier job" in result.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("pipeline", "TARGET must be module:attribute or path/to/file.py:attribute, got 'pipeline'"),
        ("pipeline.py:nothing", "pipeline.py has no attribute 'nothing'"),
        ("pipeline:ROWS", "pipeline:ROWS is int, not a cellfrontier Job"),
        ("missing.py:job", "no file 'missing.py'"),
        ("nomodule:job", "no module named 'nomodule'"),
    ],
)
def test_a_target_naming_no_job_is_a_usage_error(
    workdir: Path, capsys: pytest.CaptureFixture[str], target: str, message: str
) -> None:
    assert main(["run", target]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (workdir / "out").exists()


def test_an_error_importing_the_target_names_the_file_and_the_exception(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "broken.py").write_text("import os\n\nraise RuntimeError('no config for ' + 'this job')\n")
    assert main(["run", "broken.py:job"]) == 1
    err = capsys.readouterr().err
    assert "cellfrontier run: importing broken.py failed: RuntimeError: no config for this job" in err
    assert "Traceback" not in err and "--traceback" in err
    sys.modules.pop("broken", None)
    assert main(["run", "broken.py:job", "--traceback"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and 'broken.py", line 3' in err


def test_a_function_named_as_target_is_called_and_its_errors_reported(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_OUTPUT", "elsewhere")
    assert main(["run", "pipeline:make_job", "--no-progress"]) == 0
    assert read_output(workdir / "elsewhere") == expected_columns(ROWS)
    (workdir / "broken.py").write_text("def job():\n    raise KeyError('model')\n")
    assert main(["run", "broken.py:job"]) == 1
    assert "calling broken.py:job() failed: KeyError: 'model'" in capsys.readouterr().err


def test_a_file_inside_a_package_is_imported_as_its_module(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    package = workdir / "jobs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(PIPELINE, package / "pipeline.py")
    (package / "nightly.py").write_text("from .pipeline import make_job\n\njob = make_job()\n")
    for name in ("jobs", "jobs.pipeline", "jobs.nightly"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert main(["run", "jobs/nightly.py:job", "--no-progress"]) == 0
    assert "the job finished: 2,500 rows" in capsys.readouterr().out
    manifest = json.loads((workdir / "out" / "cellfrontier-job.json").read_text())
    assert manifest["columns"]["topic"]["generator"] == "jobs.pipeline:topic"
    assert main(["run", "jobs.nightly:job", "--no-progress"]) == 0  # the same job: nothing left to do
    assert "the job finished: 2,500 rows, 0 dropped; 0 tasks" in capsys.readouterr().out
    for name in ("jobs", "jobs.pipeline", "jobs.nightly"):
        sys.modules.pop(name, None)


def test_success_prints_where_the_files_are_and_lines_that_load_them(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = workdir / "dataset"
    assert main(["run", "pipeline.py:job", "--output-dir", str(out), "--rows", "1200", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "the job finished: 1,200 rows, 0 dropped; 2,403 tasks" in printed
    assert f"output: {out / 'data'}/part-*.parquet (3 files)" in printed
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("load it with"))
    snippets = [line.strip() for line in lines[start + 1 :]]
    assert [s.split()[1] for s in snippets] == ["pyarrow.parquet", "pandas", "polars", "datasets"]
    expected = expected_columns(1200)
    monkeypatch.setenv("HF_HOME", str(workdir / "hf"))  # datasets caches here, offline
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    checked = []
    for snippet, library in zip(snippets, ["pyarrow", "pandas", "polars", "datasets"], strict=True):
        try:
            __import__(library)
        except ImportError:
            continue
        scope: dict[str, Any] = {}
        exec(snippet, scope)
        assert as_columns(library, scope) == expected, library
        checked.append(library)
    assert checked[:2] == ["pyarrow", "pandas"]


def test_a_failing_job_exits_1_and_prints_its_first_errors(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_FAIL", "stop")
    assert main(["run", "pipeline.py:job", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "cellfrontier run: the job failed: " in err and "more than max_error_rate=0" in err
    samples = [line.strip() for line in err.splitlines() if line.startswith("  'answer' at row")]
    assert samples[0] == "'answer' at row 3 (attempt 1): ValueError: no answer for row 3"
    assert len(samples) == 5
    assert f"at {workdir / 'pipeline.py'}:" in err and " in answer" in err
    assert "cellfrontier status out" in err
    assert main(["status", "out"]) == 0
    assert "'answer' at row 3 (attempt 1): ValueError: no answer for row 3" in capsys.readouterr().out


def test_a_job_that_drops_failed_rows_finishes_and_names_its_errors(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_FAIL", "drop")
    assert main(["run", "pipeline.py:job", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    dropped = [i for i in range(ROWS) if i % 10 == 3]
    assert f"the job finished: {ROWS - len(dropped):,} rows, {len(dropped):,} dropped" in printed
    assert (
        f"{len(dropped):,} generator calls failed (their rows dropped after retries); the first:" in printed
    )
    assert "'answer' at row 3 (attempt 1): ValueError: no answer for row 3" in printed
    assert read_output(workdir / "out") == expected_columns(ROWS, dropped)


def test_usage_errors_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["run", "pipeline.py:job", "--row-groups", "3:9"]) == 2
    assert "--row-groups 3:9 reaches past the job's 5 row groups" in capsys.readouterr().err
    for bad in (
        ["--shard", "3/3"],
        ["--rows", "0"],
        ["--row-groups", "4:2"],
        ["--shard", "0/2", "--workers", "2"],
    ):
        with pytest.raises(SystemExit) as exited:
            main(["run", "pipeline.py:job", *bad])
        assert exited.value.code == 2
    capsys.readouterr()
    monkeypatch.setenv("PIPELINE_OUTPUT", "none")
    sys.modules.pop("pipeline")  # imported again, now with no output_dir
    assert main(["run", "pipeline.py:job"]) == 2
    assert "the job has no output_dir: give --output-dir DIR" in capsys.readouterr().err
    assert not list(workdir.glob("*/cellfrontier-job.json"))


@pytest.mark.process
def test_workers_runs_the_job_on_local_worker_processes(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--workers 2``: a two-process loopback cluster imports the pipeline file by name and runs it."""
    pytest.importorskip("distributed")
    assert main(["run", "pipeline.py:job", "--workers", "2", "--no-progress"]) == 0
    assert read_output(workdir / "out") == expected_columns(ROWS)
    capsys.readouterr()
    assert main(["status", "out", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["rows_done"] == ROWS


def test_one_range_of_row_groups_then_status_shows_the_rest(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "pipeline.py:job", "--row-groups", "1:3", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "row groups [1, 3) finished: 1,000 rows, 0 dropped" in printed
    assert "the whole job: 2 of 5 row groups written; `cellfrontier status" in printed
    assert "load it with" not in printed
    assert main(["status", "out", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    shards = [(s["row_groups"], s["registered"], s["state"], s["rows_done"]) for s in status["shards"]]
    assert shards == [
        ([0, 1], False, "not started", 0),
        ([1, 3], True, "finished", 1000),
        ([3, 5], False, "not started", 0),
    ]
    assert (status["state"], status["rows_done"], status["groups_written"], status["groups_pending"]) == (
        "stale",
        1000,
        2,
        3,
    )
    assert main(["run", "pipeline.py:job", "--no-progress"]) == 0  # the rest, as two more shards
    assert "the job finished: 2,500 rows, 0 dropped; 3,003 tasks" in capsys.readouterr().out
    assert read_output(workdir / "out") == expected_columns(ROWS)


def test_plan_says_what_a_rerun_would_do_and_runs_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "pipeline.py:job", "--plan"]) == 0
    assert "new job version 1 (nothing to reuse)" in capsys.readouterr().out
    assert not (workdir / "out").exists()  # a plan writes nothing
    assert main(["run", "pipeline.py:job", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["run", "pipeline.py:job", "--rows", "3000", "--plan"]) == 0
    plan = capsys.readouterr().out
    assert "job version 1 -> 2" in plan and "rows:       2,500 -> 3,000" in plan
    assert "to compute: 1,001 tasks" in plan  # 500 new rows in two cell columns, one batch
    assert main(["run", "pipeline.py:job", "--rows", "2000", "--plan"]) == 1  # fewer rows: refused
    assert "keep num_records >= 2,500" in capsys.readouterr().err
    assert main(["run", "pipeline.py:job", "--rows", "3000", "--no-progress"]) == 0
    assert "the job finished: 3,000 rows, 0 dropped; 1,001 tasks" in capsys.readouterr().out


def test_status_of_a_directory_that_is_not_a_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["status", str(tmp_path)]) == 1
    assert f"cellfrontier status: {str(tmp_path)!r} holds no cellfrontier job" in capsys.readouterr().err
    assert main(["status", str(tmp_path / "missing"), "--json"]) == 1
    assert "is not a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# ---------------------------------------------------------------------- processes: signals, kills, shards


@pytest.mark.process
@pytest.mark.parametrize(
    ("action", "code", "word"), [("sigint", 130, "interrupted"), ("sigterm", 143, "terminated")]
)
def test_a_signal_at_a_chosen_call_saves_then_the_module_form_resumes(
    workdir: Path, action: str, code: int, word: str
) -> None:
    log = workdir / "calls"
    stopped = run_command(workdir, "run", "pipeline.py:job", act_at="1700", action=action, log=str(log))
    assert stopped[0] == code, stopped
    assert f"{word}: the checkpoint is saved in out; run the same command to resume" in stopped[2]
    held = calls_per_task(log)
    assert sum(held.values()) >= 1700
    status = status_json(workdir)
    assert status["state"] == "stale" and status["shards"][0]["state"] == "stale"
    assert "on this host is gone" in status["shards"][0]["detail"]
    resumed = run_command(workdir, "run", "pipeline:job", log=str(log))
    assert resumed[0] == 0, resumed
    assert "the job finished: 2,500 rows, 0 dropped; " in resumed[1] and ", resumed" in resumed[1]
    assert " job rows 2,500/2,500 dropped 0 | " in resumed[2]  # progress logged: stderr is no terminal
    assert read_output(workdir / "out") == expected_columns(ROWS)
    counts = calls_per_task(log)
    assert len(counts) == TASKS and set(counts.values()) == {1}  # plain generators: nothing ran twice


@pytest.mark.process
def test_status_beside_a_live_run_then_after_it_finished(workdir: Path) -> None:
    held, release, imported = workdir / "held", workdir / "release", workdir / "imported"
    process = command(
        workdir, "run", "pipeline.py:job", act_at="3500", action="hold", held=str(held), release=str(release)
    )
    try:
        wait_for(held, process)  # the run's 3,500th call
        assert held.exists(), finish(process)
        status = status_json(workdir, imported=str(imported))
        assert status["state"] == "live"
        [shard] = status["shards"]
        assert shard["state"] == "live" and f"process {process.pid} on this host" in shard["detail"]
        assert shard["epoch"] == 1 and shard["checkpoint_age"] is not None
        assert 0 < shard["tasks"] < shard["tasks_total"] == TASKS
        assert shard["tasks_per_second"] > 0 and status["eta_seconds"] is not None
        assert shard["groups_written"] + shard["groups_active"] + shard["groups_pending"] == 5
        assert status["rows_done"] == 500 * shard["groups_written"]
        text = run_command(workdir, "status", "out")
        assert text[0] == 0 and "a cellfrontier job, live" in text[1] and "ETA: " in text[1]
    finally:
        release.write_text("go")
    code, _, err = finish(process)
    assert code == 0, err
    assert not imported.exists()  # status never imported the pipeline
    status = status_json(workdir)
    assert (status["state"], status["rows_done"], status["groups_written"], status["eta_seconds"]) == (
        "finished",
        ROWS,
        5,
        None,
    )
    assert status["job"]["columns"] == [
        {"name": name, "strategy": strategy, "generator": f"pipeline:{name}", "aliases": []}
        for name, strategy in [
            ("topic", "cell_by_cell"),
            ("answer", "cell_by_cell"),
            ("judge", "full_column"),
        ]
    ]


@pytest.mark.process
def test_status_of_a_killed_run_then_the_run_resumes(workdir: Path) -> None:
    log = workdir / "calls"
    killed = run_command(workdir, "run", "pipeline.py:job", act_at="3200", action="kill", log=str(log))
    assert killed[0] == -signal.SIGKILL, killed
    before = snapshot(workdir / "out")
    status = status_json(workdir)
    assert snapshot(workdir / "out") == before  # reading changed nothing
    [shard] = status["shards"]
    assert status["state"] == "stale" and shard["state"] == "stale"
    assert "on this host is gone" in shard["detail"] and shard["epoch"] == 1
    assert shard["rows_done"] == 500 * shard["groups_written"]
    assert status["eta_seconds"] is None  # nothing is running
    resumed = run_command(workdir, "run", "pipeline.py:job", log=str(log))
    assert resumed[0] == 0, resumed
    assert read_output(workdir / "out") == expected_columns(ROWS)
    counts = calls_per_task(log)
    assert len(counts) == TASKS and max(counts.values()) <= 2  # at most what the checkpoint lacked, again


@pytest.mark.process
def test_shards_run_by_n_processes_then_status_and_run_see_the_whole_job(workdir: Path) -> None:
    # The first process creates the output directory and its manifest; the others start once the
    # manifest exists (a step, not a delay): several processes preparing one fresh directory at
    # the very same moment is the manifest's own concern, tested with it.
    first = command(workdir, "run", "pipeline.py:job", "--shard", "0/3", "--no-progress")
    wait_for(workdir / "out" / "cellfrontier-job.json", first)
    others = [
        command(workdir, "run", "pipeline.py:job", "--shard", f"{i}/3", "--no-progress") for i in (1, 2)
    ]
    results = [finish(p) for p in (first, *others)]
    for i, (code, out, err) in enumerate(results):
        assert code == 0, err
        assert f"shard {i}/3 (row groups " in out
    status = status_json(workdir)
    assert [s["row_groups"] for s in status["shards"]] == [[0, 1], [1, 3], [3, 5]]  # cut_range(range(5), 3)
    assert {s["state"] for s in status["shards"]} == {"finished"}
    assert (status["state"], status["rows_done"], status["groups_written"]) == ("finished", ROWS, 5)
    code, out, err = run_command(workdir, "run", "pipeline:job", "--no-progress")
    assert code == 0, err
    assert "the job finished: 2,500 rows, 0 dropped; 0 tasks" in out and "load it with" in out
    assert read_output(workdir / "out") == expected_columns(ROWS)


@pytest.mark.process
def test_run_on_a_dask_cluster_by_its_scheduler_address(workdir: Path) -> None:
    pytest.importorskip("distributed")
    import logging

    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.CRITICAL,
    ) as cluster:
        code, out, err = run_command(
            workdir, "run", "pipeline.py:job", "--scheduler", cluster.scheduler_address, "--no-progress"
        )
    assert code == 0, err
    assert f"the job finished: {ROWS:,} rows, 0 dropped; {TASKS:,} tasks" in out
    assert read_output(workdir / "out") == expected_columns(ROWS)
    status = status_json(workdir)
    assert status["state"] == "finished" and len(status["shards"]) == 4  # four per worker thread
