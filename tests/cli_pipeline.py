"""A small job for ``cellfrontier run``'s tests, copied into a temporary directory as ``pipeline.py``.

Three columns: ``topic`` and ``answer`` cell by cell, ``judge`` over the whole group; every value
is a function of the row index (:func:`expected_columns`).  The environment chooses how it
behaves, so that one file serves every test, run in this process or in a subprocess:

- ``PIPELINE_ROWS`` (default 2,500: five groups of 500), ``PIPELINE_OUTPUT`` (the output_dir;
  ``none`` for none);
- ``PIPELINE_LOG``: append ``column key`` per generator call (one ``write`` each);
- ``PIPELINE_ACT_AT`` and ``PIPELINE_ACTION``: at that call (1-based, counted in this process)
  send this process ``sigint``, ``sigterm`` or ``kill`` (SIGKILL), or ``hold``: write the process
  id to ``PIPELINE_HELD`` and wait until ``PIPELINE_RELEASE`` exists (60 s at most);
- ``PIPELINE_FAIL``: ``answer`` raises on rows ending in 3; ``stop`` makes any failure stop the
  job, ``drop`` lets the job drop those rows and finish;
- ``PIPELINE_IMPORTED``: a file to create when this module is imported.

Checkpoints come every 300 completed tasks, never by time, so where they land depends on the
code alone.
"""

import os
import signal
import time
from pathlib import Path

from cellfrontier import ExecutionGraph, Job

ROWS = int(os.environ.get("PIPELINE_ROWS", "2500"))
BUFFER = 500
ACT_AT = int(os.environ.get("PIPELINE_ACT_AT", "0"))
ACTION = os.environ.get("PIPELINE_ACTION", "")
LOG = os.environ.get("PIPELINE_LOG")
FAIL = os.environ.get("PIPELINE_FAIL", "")
OUTPUT = os.environ.get("PIPELINE_OUTPUT", "out")
SIGNALS = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "kill": signal.SIGKILL}
calls = 0

if os.environ.get("PIPELINE_IMPORTED"):
    Path(os.environ["PIPELINE_IMPORTED"]).write_text("imported")


def _called(column, key):
    global calls
    calls += 1
    if LOG:
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{column} {key}\n".encode())
        finally:
            os.close(fd)
    if calls != ACT_AT:
        return
    if ACTION in SIGNALS:
        os.kill(
            os.getpid(), {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "kill": signal.SIGKILL}[ACTION]
        )
    elif ACTION == "hold":
        Path(os.environ["PIPELINE_HELD"]).write_text(str(os.getpid()))
        release = Path(os.environ["PIPELINE_RELEASE"])
        waited = 0
        while not release.exists():  # bounded: a test that never releases fails, it does not hang
            if waited > 6000:
                raise TimeoutError("the test never released the held call")
            time.sleep(0.01)
            waited += 1


def topic(row):
    _called("topic", row["_row"])
    return f"topic {row['_row']}"


def answer(row):
    _called("answer", row["_row"])
    if FAIL and row["_row"] % 10 == 3:
        raise ValueError(f"no answer for row {row['_row']}")
    return row["topic"].upper()


def judge(batch):
    _called("judge", batch["_row"][0] // BUFFER)
    return [len(value) for value in batch["answer"]]


def expected_columns(rows, dropped=()):
    """What the output holds: ``{column: values}`` with ``_row``, in row order, *dropped* rows absent."""
    kept = [i for i in range(rows) if i not in set(dropped)]
    return {
        "_row": kept,
        "topic": [f"topic {i}" for i in kept],
        "answer": [f"TOPIC {i}" for i in kept],
        "judge": [len(f"TOPIC {i}") for i in kept],
    }


def build_graph():
    graph = ExecutionGraph()
    graph.add_column("topic", "cell_by_cell")
    graph.add_column("answer", "cell_by_cell")
    graph.add_column("judge", "full_column")
    graph.add_edge("topic", "answer")
    graph.add_edge("answer", "judge")
    return graph


def make_job():
    return Job(
        build_graph(),
        {"topic": topic, "answer": answer, "judge": judge},
        ROWS,
        buffer_size=BUFFER,
        max_active_row_groups=2,
        output_dir=None if OUTPUT == "none" else OUTPUT,
        checkpoint_every=300,
        checkpoint_interval=1e9,
        max_error_rate=0.0 if FAIL == "stop" else 0.5,
        min_error_sample=1,
    )


job = make_job()
