"""Worker process for ``test_job_resume.py``: J12 with an ``output_dir``, stopped at a chosen call.

    python job_worker.py OUTPUT_DIR CALL_LOG ROWS CHECKPOINT_EVERY \
        [--act-at N --action kill|sigint|sigterm] [--async]

Runs (or resumes) J12 with generators that log each call to CALL_LOG (after a ``# run``
marker) and, at their N-th call in this process, SIGKILL the process or send it SIGINT /
SIGTERM.  Checkpoints come every CHECKPOINT_EVERY completed tasks (never by time).  Exits 0
when the job finished, 130 on KeyboardInterrupt (Ctrl-C: the job checkpointed first).
"""

from __future__ import annotations

import argparse
import signal
import sys

from job_support import CallLog, logged_j12

from cellfrontier import Job
from cellfrontier.testing.j12 import build_j12_graph


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("call_log")
    parser.add_argument("rows", type=int)
    parser.add_argument("checkpoint_every", type=int)
    parser.add_argument("--act-at", type=int, default=None)
    parser.add_argument("--action", default="kill")
    parser.add_argument("--async", dest="async_cells", action="store_true")
    args = parser.parse_args()
    # Ctrl-C as at a terminal, however the test run was started: a test runner launched in the
    # background of a non-interactive shell passes SIGINT on ignored, and a job leaves an
    # ignored signal ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    log = CallLog(args.call_log, args.act_at, args.action)
    log.note("run")
    job = Job(
        build_j12_graph(),
        logged_j12(log, async_cells=args.async_cells),
        args.rows,
        output_dir=args.output_dir,
        checkpoint_every=args.checkpoint_every,
        checkpoint_interval=1e9,
        max_active_row_groups=2,
        concurrency=dict.fromkeys(["h", "bucket", "code", "label", "total", "sig", "final"], 7),
        progress_bar=False,
    )
    try:
        result = job.run()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    print("done", result.records, result.tasks, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
