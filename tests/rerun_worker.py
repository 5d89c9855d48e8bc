"""Worker process for ``test_rerun_crash.py``: J12 (pinned, logged) on OUTPUT_DIR, killed at a chosen step.

    python rerun_worker.py OUTPUT_DIR CALL_LOG ROWS VERSIONS_JSON [--kill-at STEP N]

Runs (or resumes) J12 with every generator logging each cell it computes to CALL_LOG (after a
``# run`` marker) and pinned to the versions in VERSIONS_JSON (``{"bucket": "2"}``: an edit).
Row groups of 100 rows; checkpoints come every 300 completed tasks, never by time.
``--kill-at`` SIGKILLs the process at the N-th time it reaches STEP:

- ``call``: a generator call (the call is logged first);
- ``replace``: a row group's file replacement, after the new file is durable and before it is
  renamed over the old one;
- ``switched``: the job version switch, after the new version's record exists and before the
  manifest is replaced by a copy of it;
- ``published``: right after the manifest names the new version.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

from job_support import CallLog
from rerun_support import j12_job, pinned_j12

from cellfrontier.job.store import generations, group_files


class KillAt:
    """Counts the times a step is reached and SIGKILLs this process at the N-th."""

    def __init__(self, at: int) -> None:
        self.at, self.count = at, 0

    def step(self) -> None:
        self.count += 1
        if self.count == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("call_log")
    parser.add_argument("rows", type=int)
    parser.add_argument("versions")
    parser.add_argument("--kill-at", nargs=2, default=None)
    args = parser.parse_args()
    step, at = (args.kill_at[0], int(args.kill_at[1])) if args.kill_at else ("", 0)
    log = CallLog(args.call_log, at if step == "call" else None)
    log.note("run")
    kill = KillAt(at)
    if step == "replace":
        still_older = group_files.stamp_still_older

        def durable_then_killed(*a: Any) -> bool:
            kill.step()
            return still_older(*a)

        group_files.stamp_still_older = durable_then_killed  # type: ignore[assignment]
    elif step in ("switched", "published"):
        publish = generations._publish_manifest

        def publish_and_kill(*a: Any) -> None:
            if step == "switched":
                kill.step()
            publish(*a)
            if step == "published":
                kill.step()

        generations._publish_manifest = publish_and_kill  # type: ignore[assignment]
    job = j12_job(
        args.output_dir,
        args.rows,
        pinned_j12(log, json.loads(args.versions)),
        buffer_size=100,
        checkpoint_every=300,
        checkpoint_interval=1e9,
        max_active_row_groups=2,
    )
    result = job.run()
    print("done", result.records, result.tasks, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
