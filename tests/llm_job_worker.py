"""Worker process for ``test_job_model_columns.py``: J12-LLM with an ``output_dir``, stopped at a chosen call.

    python llm_job_worker.py '{"base_url": ..., "output_dir": ..., "rows": ..., "checkpoint_every": ...,
                               "act_at": N, "action": "kill"|"sigint", "cap": C}'

Runs (or resumes) J12-LLM against the endpoint at ``base_url``.  With ``act_at`` the N-th model
call of this process acts: ``kill`` SIGKILLs the process as the call starts (calls are in
flight); ``sigint`` sends Ctrl-C once the call has its answer (with ``cap`` 1, one call in
flight at a time, nothing else is then in flight).  Checkpoints come every
``checkpoint_every`` completed tasks (never by time).  Prints the result's usage as JSON when
the job finishes; exits 130 on Ctrl-C (the job checkpointed first).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

from cellfrontier import Job
from cellfrontier.testing.j12 import CELL_COLUMNS, build_j12_graph
from cellfrontier.testing.j12_llm import j12_llm_generators


class Counter:
    def __init__(self, act_at: int | None, action: str) -> None:
        self.calls, self.act_at, self.action = 0, act_at, action


class Acting:
    """A model column that counts its calls on a shared counter and acts at the chosen one.

    Every other attribute (``usage``, ``usage_group``, ``aclose_loop``, ``check_inputs``) is the
    column's own, so the job sees the model column's hooks.
    """

    def __init__(self, column: Any, counter: Counter) -> None:
        self.column, self.counter = column, counter

    def __getattr__(self, name: str) -> Any:
        return getattr(self.column, name)

    async def __call__(self, row: Mapping[str, Any]) -> Any:
        counter = self.counter
        counter.calls += 1
        acting = counter.calls == counter.act_at
        if acting and counter.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        value = await self.column(row)
        if acting and counter.action == "sigint":
            os.kill(os.getpid(), signal.SIGINT)
        return value


def main() -> int:
    settings = json.loads(sys.argv[1])
    cap = int(settings.get("cap", 16))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as at a terminal
    counter = Counter(settings.get("act_at"), settings.get("action", "kill"))
    generators = j12_llm_generators(settings["base_url"])
    for column in CELL_COLUMNS:
        generators[column] = Acting(generators[column], counter)
    job = Job(
        build_j12_graph(),
        generators,
        settings["rows"],
        buffer_size=500,
        output_dir=settings["output_dir"],
        checkpoint_every=settings["checkpoint_every"],
        checkpoint_interval=1e9,
        concurrency=dict.fromkeys(CELL_COLUMNS, cap),
        max_concurrency=cap,
        progress_bar=False,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the job checkpointed, then stopped
        result = job.run()
        usage = result.usage
        print(json.dumps({"records": result.records, "total": usage.total, "models": dict(usage.models)}))
        return 0
    return 130


if __name__ == "__main__":
    sys.exit(main())
