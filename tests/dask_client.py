"""Client process for ``test_job_dask.py``: J12 on a running cluster, its client killed at a chosen call.

    python dask_client.py SCHEDULER OUTPUT_DIR CALL_LOG ROWS BUFFER [--kill-client-at N --marker PATH]

Connects to the scheduler at SCHEDULER and runs J12 on it, writing to OUTPUT_DIR, with logged
generators (``dask_support``; async cells, so that checkpoints come every few hundred tasks
whatever the timing).  With ``--kill-client-at N`` the first shard attempt to make its N-th
generator call SIGKILLs this client process (once: MARKER).  Prints a JSON summary of the
result when the job finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from distributed import Client
from job_support import CallLog, logged_j12

from cellfrontier import Job
from cellfrontier.testing.j12 import build_j12_graph


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scheduler")
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("call_log", type=Path)
    parser.add_argument("rows", type=int)
    parser.add_argument("buffer", type=int)
    parser.add_argument("--kill-client-at", type=int, default=None)
    parser.add_argument("--marker", type=Path, default=None)
    args = parser.parse_args()
    log = CallLog(args.call_log, act_at=args.kill_client_at, marker=args.marker, target=os.getpid())
    job = Job(
        build_j12_graph(),
        logged_j12(log, async_cells=True, buffer=args.buffer),
        args.rows,
        buffer_size=args.buffer,
        max_active_row_groups=2,
        output_dir=args.output_dir,
        checkpoint_every=300,
        checkpoint_interval=1e9,
        progress_bar=False,
    )
    with Client(args.scheduler, timeout=60) as client:
        result = job.run(client=client)
    summary = {
        "records": result.records,
        "tasks": result.tasks,
        "resumed": result.resumed,
        "shards": [[s.row_groups.start, s.row_groups.stop, s.epoch, s.skipped] for s in result.shards],
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
