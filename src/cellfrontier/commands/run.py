"""``cellfrontier run TARGET``: run a job defined in Python from the terminal, resumably.

TARGET names a :class:`~cellfrontier.Job` (or a function returning one) as ``module:attribute``
or ``path/to/file.py:attribute`` (:mod:`cellfrontier.commands.target`).  The job runs as
``job.run()`` would run it, in this process (``--row-groups A:B`` or ``--shard I/N``: one shard
of it), on local worker processes (``--workers N``) or on
a Dask cluster (``--scheduler ADDRESS``).  ``--shard I/N`` cuts the job's row groups as a
cluster run does (:func:`~cellfrontier.job.run.shard_cut.cut_range`), so N processes on shared
storage (a Slurm array job, several machines) each run their share, and a last ``run`` or
``status`` sees the whole job.

Exit status: 0 done; 1 the job failed (its first errors printed) or TARGET's code raised;
2 a usage error; 130 Ctrl-C and 143 SIGTERM, each after the job saved its checkpoint, so the
same command resumes it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from cellfrontier.commands.target import LoadedTarget, TargetError, TargetImportError, load_job
from cellfrontier.errors import CellFrontierError
from cellfrontier.job import GeneratorFailure, Job, JobResult, MissingDependencyError, OutputDirError
from cellfrontier.job.run.shard_cut import cut_range
from cellfrontier.job.store.status_reader import read_job_status

__all__ = ["add_parser", "load_snippets", "run_command"]

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143
MAX_SAMPLES = 5
_SAVED = "the checkpoint is saved in {}; run the same command to resume"


class _Terminated(BaseException):
    """SIGTERM arrived (a running job has checkpointed first): leave with status 143."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"needs a number >= 1, got {value}")
    return value


def _row_groups(text: str) -> range:
    match = re.fullmatch(r"(\d+):(\d+)", text)
    if not match or int(match.group(1)) >= int(match.group(2)):
        raise argparse.ArgumentTypeError(f"needs A:B with 0 <= A < B (row group ids), got {text!r}")
    return range(int(match.group(1)), int(match.group(2)))


def _shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise argparse.ArgumentTypeError(f"needs I/N with 0 <= I < N (I counts from 0), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a job: TARGET is module:attribute or file.py:attribute",
        description=(
            "Run the cellfrontier Job that TARGET names, with a progress bar, writing Parquet and "
            "checkpoints to its output_dir; running it again on the same directory resumes it. "
            "Ctrl-C or SIGTERM save a checkpoint first (exit 130 / 143)."
        ),
    )
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="module:attribute or path/to/file.py:attribute naming a Job, or a function returning one",
    )
    parser.add_argument("--output-dir", metavar="DIR", help="write here instead of the job's output_dir")
    parser.add_argument("--rows", type=_positive, metavar="N", help="generate N rows instead of num_records")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=_positive, metavar="N", help="run on N local worker processes (Job.run(workers=N))"
    )
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on the Dask cluster at ADDRESS")
    where.add_argument(
        "--row-groups", type=_row_groups, metavar="A:B", help="run one shard: row groups A to B-1"
    )
    where.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help=(
            "run shard I of N (I counts from 0): the job's row groups cut into N contiguous ranges "
            "as a cluster run cuts them; N processes (a Slurm array job) each run one"
        ),
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help=(
            "say what a run on the output_dir would keep, recompute, add and remove, and how many "
            "tasks it would compute, then exit without running (Job.plan_rerun())"
        ),
    )
    parser.add_argument("--no-progress", action="store_true", help="draw no progress bar and log no progress")
    parser.add_argument("--traceback", action="store_true", help="print the whole traceback of an error")
    parser.set_defaults(handler=run_command)


# ---------------------------------------------------------------------- running


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`_Terminated` (a job re-delivers it after checkpointing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise _Terminated()

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _fail(message: str, exc: BaseException | None, args: argparse.Namespace, status: int) -> int:
    print(f"cellfrontier run: {message}", file=sys.stderr)
    if exc is not None:
        if args.traceback:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        else:
            print("(--traceback shows the whole traceback)", file=sys.stderr)
    return status


def run_command(args: argparse.Namespace) -> int:
    """Handle ``cellfrontier run`` (module doc); returns the exit status."""
    with _sigterm_raises():
        try:
            return _run(args)
        except KeyboardInterrupt:
            print("interrupted before the job started", file=sys.stderr)
            return EXIT_INTERRUPTED
        except _Terminated:
            print("terminated before the job started", file=sys.stderr)
            return EXIT_TERMINATED


def _run(args: argparse.Namespace) -> int:
    try:
        loaded = load_job(args.target)
    except TargetError as exc:
        return _fail(str(exc), None, args, EXIT_USAGE)
    except TargetImportError as exc:
        return _fail(str(exc), exc.__cause__, args, EXIT_FAILED)
    try:
        job = _configured(loaded.job, args)
    except CellFrontierError as exc:
        return _fail(str(exc), None, args, EXIT_USAGE)
    if job.output_dir is None:
        return _fail(
            "the job has no output_dir: give --output-dir DIR (or output_dir= in the Job)",
            None,
            args,
            EXIT_USAGE,
        )
    if args.plan:
        try:
            print(job.plan_rerun())
        except OutputDirError as exc:
            return _fail(str(exc), None, args, EXIT_FAILED)
        return 0
    shard = _chosen_shard(job, args)
    if shard is not None and shard.stop > job.num_row_groups:
        return _fail(
            f"--row-groups {shard.start}:{shard.stop} reaches past the job's {job.num_row_groups} row groups "
            f"(ids 0 to {job.num_row_groups - 1})",
            None,
            args,
            EXIT_USAGE,
        )
    if shard is not None and not len(shard):
        i, n = args.shard
        print(f"shard {i}/{n} holds no row groups: the job has only {job.num_row_groups} (nothing to do)")
        return 0
    output_dir = job.output_dir
    try:
        with _progress_logs(job):
            result = _run_job(job, loaded, args, shard)
    except KeyboardInterrupt:
        print(f"interrupted: {_SAVED.format(output_dir)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print(f"terminated: {_SAVED.format(output_dir)}", file=sys.stderr)
        return EXIT_TERMINATED
    except (OutputDirError, MissingDependencyError) as exc:
        return _fail(str(exc), None, args, EXIT_FAILED)
    except Exception as exc:
        kind = "" if isinstance(exc, CellFrontierError) else f"{type(exc).__name__}: "
        _fail(f"the job failed: {kind}{exc}", exc, args, EXIT_FAILED)
        _print_samples(_samples_on_disk(output_dir), sys.stderr)
        print(f"`cellfrontier status {output_dir}` shows what the directory holds", file=sys.stderr)
        return EXIT_FAILED
    _report(result, job, shard, args, sys.stdout)
    return 0


def _configured(job: Job, args: argparse.Namespace) -> Job:
    """The job with the command line's overrides (each checked as ``Job()`` checks it)."""
    changes: dict[str, Any] = {}
    if args.output_dir is not None:
        changes["output_dir"] = args.output_dir
    if args.rows is not None:
        changes["num_records"] = args.rows
    if args.no_progress:
        changes["progress_bar"] = False
    return job.replace(**changes) if changes else job


def _chosen_shard(job: Job, args: argparse.Namespace) -> range | None:
    if args.row_groups is not None:
        return args.row_groups
    if args.shard is not None:
        index, count = args.shard
        ranges = cut_range(range(job.num_row_groups), count)
        return ranges[index] if index < len(ranges) else range(0)
    return None


@contextlib.contextmanager
def _progress_logs(job: Job) -> Iterator[None]:
    """Where stderr is no terminal, the job logs its progress: show those lines (a batch job's log).

    Only while the job runs, and only where nothing else (the job's own module) set up logging.
    """
    logger = logging.getLogger("cellfrontier.job")
    if job.progress_bar is False or logger.handlers or logging.getLogger().handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _run_job(job: Job, loaded: LoadedTarget, args: argparse.Namespace, shard: range | None) -> JobResult:
    if args.workers is not None:
        return job.run(workers=args.workers)
    if args.scheduler is None:
        return job.run(row_groups=shard)
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError(
            "--scheduler needs dask.distributed, which is not installed: pip install 'cellfrontier[dask]'"
        ) from None
    client = distributed.Client(args.scheduler, timeout="30s")
    try:
        if loaded.file is not None:  # the workers import the generators from it by name
            client.upload_file(str(loaded.file))
        return job.run(client=client)
    finally:
        client.close()


# ---------------------------------------------------------------------- reporting


def load_snippets(data_dir: Path) -> list[str]:
    """One line of Python per library that loads the dataset in *data_dir* (row order kept)."""
    where = json.dumps(str(data_dir))  # a Python string literal too
    files = json.dumps(str(data_dir / "*.parquet"))
    return [
        f"import pyarrow.parquet as pq; table = pq.read_table({where})",
        f"import pandas as pd; df = pd.read_parquet({where})",
        f"import polars as pl; df = pl.read_parquet({files})",
        f'from datasets import load_dataset; ds = load_dataset("parquet", data_dir={where})["train"]',
    ]


def _print_samples(samples: Sequence[GeneratorFailure], out: TextIO) -> None:
    for sample in samples[:MAX_SAMPLES]:
        print(f"  {sample}", file=out)
        if sample.origin:
            print(f"      at {sample.origin}", file=out)


def _samples_on_disk(output_dir: Path) -> tuple[GeneratorFailure, ...]:
    """The first errors the job's checkpoints record (every shard's, this run's or a worker's)."""
    try:
        return read_job_status(output_dir).error_samples
    except Exception:  # nothing readable: the error itself was printed
        return ()


def _report(result: JobResult, job: Job, shard: range | None, args: argparse.Namespace, out: TextIO) -> None:
    output_dir = Path(job.output_dir or ".").resolve()
    data_dir = output_dir / "data"
    what = "the job" if shard is None else f"row groups [{shard.start}, {shard.stop})"
    if args.shard is not None:
        what = f"shard {args.shard[0]}/{args.shard[1]} ({what})"
    resumed = ", resumed" if result.resumed else ""
    print(
        f"{what} finished: {result.records:,} rows, {result.dropped:,} dropped; "
        f"{result.tasks:,} tasks in {result.seconds:.1f} s{resumed}",
        file=out,
    )
    if result.errors:
        print(
            f"{result.errors:,} generator calls failed (their rows dropped after retries); the first:",
            file=out,
        )
        _print_samples(result.error_samples, out)
    files = len(list(data_dir.glob("part-*.parquet")))
    print(f"output: {data_dir}/part-*.parquet ({files:,} files)", file=out)
    if shard is not None:
        status = read_job_status(output_dir)
        if status.state != "finished":
            print(
                f"the whole job: {status.groups_written:,} of {job.num_row_groups:,} row groups written; "
                f"`cellfrontier status {output_dir}` shows the rest",
                file=out,
            )
            return
        print("the whole job is finished", file=out)
    print("load it with (rows in order; `_row` holds each row's index):", file=out)
    for line in load_snippets(data_dir):
        print(f"  {line}", file=out)
