"""Compare two builds of cellfrontier side by side: the same workloads, two interpreters, alternately.

    python benchmarks/compare_builds.py BASELINE_PYTHON CANDIDATE_PYTHON [--rounds 7] [--case ...]

Each interpreter is a virtualenv with one build installed (say ``main`` and a branch).  Every
round runs every case once in a fresh process of each interpreter, in alternating order (A then
B, then B then A), so that a machine that slows down or speeds up during the run affects both
alike; the table gives each side's median over the rounds and the ratio of the medians
(candidate / baseline: below 1 is faster, or smaller; for ``utilization`` above 1 is better).

The tracker cases run the same driver and benchmark code on both sides, this checkout's
``src/cellfrontier/simulate`` and ``benchmarks/harness.py`` (a build that predates the
``simulate`` package gets it, and ``testing``, from this checkout), so the only thing that
differs between the two sides is the tracker.  The job cases run each build's own job runner
through its own ``run_job_workload``.  Cases:

* ``w10-tasks``, ``w10-bulk``: W10 at 100,000 rows through the task-at-a-time and bulk APIs
  (seconds, best of 3 in the process);
* ``w10-adapter``: W10 at 100,000 rows through the DataDesigner backend (seconds, best of 2;
  skipped without DataDesigner);
* ``mem``: MEM at 1,000,000 rows (bytes held, and seconds to build it);
* ``micro``: the single-operation benchmarks of ``harness.micro_cases`` (ns per operation);
* ``j12`` (only when asked for): J12 at 100,000 rows through ``cellfrontier.Job`` with
  Parquet output to a temporary directory (seconds, and CPU µs per task);
* ``j12-lat`` (only when asked for): J12-LAT at 100,000 rows, about 35 s a run (seconds,
  CPU µs per task, and the share of the ceiling the caps allow).

The figures are only as quiet as the machine: run it on an idle one.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "src" / "cellfrontier"
DEFAULT_CASES = ("w10-tasks", "w10-bulk", "w10-adapter", "mem", "micro")
CASES = (*DEFAULT_CASES, "j12", "j12-lat")
W10_ROWS = 100_000
MEM_ROWS = 1_000_000
J12_ROWS = 100_000
LAT_ROWS = 100_000


# --------------------------------------------------------------------------- the worker side


def _import_simulate() -> None:
    """Make ``cellfrontier.testing`` and ``.simulate`` importable: the build's own, or this checkout's."""
    import cellfrontier

    for name in ("testing", "simulate"):  # simulate imports testing
        try:
            importlib.import_module(f"cellfrontier.{name}")
        except ImportError:
            package = types.ModuleType(f"cellfrontier.{name}")
            package.__path__ = [str(SOURCE / name)]
            sys.modules[f"cellfrontier.{name}"] = package
            setattr(cellfrontier, name, package)
    sys.path.insert(0, str(HERE))


def _job_figures(workload: str, rows: int) -> dict[str, float]:
    """One run of a job workload through the build's own runner (its driver's module name varies)."""
    try:
        from cellfrontier.simulate.job_drivers import run_job_workload
    except ImportError:
        from cellfrontier.simulate.job_workloads import run_job_workload  # type: ignore[no-redef]

    run_job_workload("J12", 2_000, check=False)  # pyarrow's first import and write, outside the timing
    figures = run_job_workload(workload, rows, check=False)
    out = {"seconds": figures.seconds, "cpu us/task": figures.cpu_us_per_task}
    if figures.utilization is not None:
        out["utilization"] = figures.utilization
    return out


def _best(run: Any, repeat: int) -> float:
    return min(run().seconds for _ in range(repeat))


def measure(case: str) -> dict[str, float]:
    """The figures of one case in this process (lower is better, but for ``utilization``)."""
    _import_simulate()
    import harness

    from cellfrontier.simulate import drivers

    if case == "w10-tasks":
        return {"seconds": _best(lambda: drivers.run_cellfrontier_tasks("W10", W10_ROWS), 3)}
    if case == "w10-bulk":
        return {"seconds": _best(lambda: drivers.run_cellfrontier_bulk("W10", W10_ROWS), 3)}
    if case == "w10-adapter":
        if harness.data_designer_skip_reason() is not None:
            return {}
        return {"seconds": _best(lambda: drivers.run_data_designer_adapter("W10", W10_ROWS), 2)}
    if case == "mem":
        result = harness.mem_cellfrontier(MEM_ROWS)
        return {"bytes": float(result.bytes), "seconds": result.seconds}
    if case == "micro":
        cases = harness.micro_cases("cellfrontier")
        return {f"{c.op} ns": harness.time_case(c, rounds=7) * 1e9 for c in cases}
    if case == "j12":
        return _job_figures("J12", J12_ROWS)
    if case == "j12-lat":
        return _job_figures("J12-LAT", LAT_ROWS)
    raise SystemExit(f"unknown case {case!r}; known: {', '.join(CASES)}")


# --------------------------------------------------------------------------- the driving side


def run_worker(python: str, case: str) -> dict[str, float]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [python, str(Path(__file__).resolve()), "--worker", case],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{python} failed on {case}:\n{done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def compare(baseline: str, candidate: str, cases: list[str], rounds: int) -> list[dict[str, Any]]:
    samples: dict[tuple[str, str], dict[str, list[float]]] = {}
    for round_no in range(rounds):
        order = [("baseline", baseline), ("candidate", candidate)]
        if round_no % 2:
            order.reverse()
        for case in cases:
            for side, python in order:
                for metric, value in run_worker(python, case).items():
                    samples.setdefault((case, metric), {"baseline": [], "candidate": []})[side].append(value)
        print(f"round {round_no + 1} of {rounds} done", file=sys.stderr, flush=True)
    rows = []
    for (case, metric), sides in samples.items():
        base, cand = statistics.median(sides["baseline"]), statistics.median(sides["candidate"])
        best_base, best_cand = min(sides["baseline"]), min(sides["candidate"])
        rows.append(
            {
                "case": case,
                "metric": metric,
                "baseline": base,
                "candidate": cand,
                "ratio": cand / base if base else float("nan"),
                "best_ratio": best_cand / best_base if best_base else float("nan"),
                "candidate_spread": (min(sides["candidate"]), max(sides["candidate"])),
                "baseline_spread": (min(sides["baseline"]), max(sides["baseline"])),
            }
        )
    return rows


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.4g}"


def print_table(rows: list[dict[str, Any]], rounds: int) -> None:
    print(f"medians over {rounds} rounds, alternating order; ratios = candidate / baseline\n")
    print(f"{'case':<12} {'metric':<18} {'baseline':>14} {'candidate':>14} {'ratio':>7} {'best':>7}")
    print("-" * 77)
    for row in rows:
        print(
            f"{row['case']:<12} {row['metric']:<18} {_fmt(row['baseline']):>14} "
            f"{_fmt(row['candidate']):>14} {row['ratio']:>7.3f} {row['best_ratio']:>7.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("baseline", nargs="?", help="the baseline build's python")
    parser.add_argument("candidate", nargs="?", help="the candidate build's python")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--case", action="append", choices=CASES, help="run only these cases (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--worker", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker)))
        return 0
    if not args.baseline or not args.candidate:
        parser.error("give the baseline's and the candidate's python")
    rows = compare(args.baseline, args.candidate, args.case or list(DEFAULT_CASES), args.rounds)
    print_table(rows, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
