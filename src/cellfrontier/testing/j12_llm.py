"""The job workload J12-LLM: J12 with its seven cell columns as chat-completion calls.

J12's graph; the four roots and ``summary`` are J12's own full-column generators (``summary``
formats whatever ``code``, ``label`` and ``total`` hold); each cell column asks its own model,
``j12lat-model-<column>``, one user message: its template (:data:`J12_LLM_TEMPLATES`) filled
with the row's upstream values (``str()`` of each).  Against the fake endpoint
(:mod:`cellfrontier.testing.fake_endpoint`) every answer is a pure function of (model,
prompt) (:mod:`cellfrontier.testing.fake_answers`), so the whole output is known in advance
(:func:`j12_llm_expected`) and any two runners that send the same prompts produce the same
dataset, cell by cell (:func:`check_j12_llm_output`).

Caps: 256 calls in flight per column, 1,024 for the job, 1,000-row groups.  Ceiling:
1,024 / (S x 50 ms) calls per second at latency scale S (20,480/s at S = 1).

    from cellfrontier import Job
    from cellfrontier.testing.fake_endpoint import FakeEndpoint
    from cellfrontier.testing.j12 import build_j12_graph
    from cellfrontier.testing.j12_llm import check_j12_llm_output, j12_llm_generators, j12_llm_job_options

    with FakeEndpoint(latency_scale=0.02) as endpoint:
        job = Job(build_j12_graph(), j12_llm_generators(endpoint.base_url), 2_000,
                  **j12_llm_job_options())
        check_j12_llm_output(job.run().to_pydict(row_index=True), 2_000)

:func:`j12_llm_generators` needs the ``llm`` extra (``cellfrontier.llm``); the rest of the
module does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cellfrontier.testing import fake_answers
from cellfrontier.testing.j12 import (
    CELL_COLUMNS,
    J12_COLUMNS,
    j12_differences,
    j12_expected_columns,
    j12_generators,
)

__all__ = [
    "J12_LLM_TEMPLATES",
    "LLM_BUFFER_SIZE",
    "LLM_COLUMN_CAP",
    "LLM_JOB_CAP",
    "check_j12_llm_output",
    "j12_llm_ceiling",
    "j12_llm_differences",
    "j12_llm_expected",
    "j12_llm_generators",
    "j12_llm_job_options",
    "j12_llm_model_id",
    "j12_llm_requests",
]

J12_LLM_TEMPLATES: dict[str, str] = {
    "h": "Hash the row key {row_key} into 0..999.",
    "bucket": "Which bucket holds {h}?",
    "code": "Write the code for {row_key}-{bucket}-{h}.",
    "label": "Label region {region} with bucket {bucket}.",
    "total": "Price {price} times bucket {bucket} plus one.",
    "sig": "Sign code {code} with {h}.",
    "final": "Join {summary}|{sig}|{order_id}.",
}
"""Each cell column's prompt, ``{column}`` fields filled with the row's upstream values."""

LLM_COLUMN_CAP = 256
LLM_JOB_CAP = 1024
LLM_BUFFER_SIZE = 1000
_ROOTS = ("region", "price", "order_id", "row_key")


def j12_llm_model_id(column: str) -> str:
    """The model a cell column asks: ``j12lat-model-<column>``."""
    return f"j12lat-model-{column}"


def j12_llm_ceiling(latency_scale: float = 1.0, max_concurrency: int = LLM_JOB_CAP) -> float:
    """Calls per second the job's cap allows at the endpoint's mean latency (20,480/s at scale 1)."""
    return max_concurrency / (latency_scale * fake_answers.MEAN_LATENCY)


def j12_llm_job_options() -> dict[str, Any]:
    """The workload's ``Job`` options: 1,000-row groups, 256 calls per column, 1,024 in all."""
    return {
        "buffer_size": LLM_BUFFER_SIZE,
        "concurrency": dict.fromkeys(CELL_COLUMNS, LLM_COLUMN_CAP),
        "max_concurrency": LLM_JOB_CAP,
    }


def j12_llm_generators(
    base_url: str, max_concurrency: int = LLM_COLUMN_CAP, **model_options: Any
) -> dict[str, Any]:
    """J12's generators with every cell column a ``ChatModel.text`` column (one model per column).

    *model_options* go to each :class:`~cellfrontier.llm.ChatModel` (``api_key_env``, ``timeout``, ...).
    """
    from cellfrontier.llm import ChatModel

    generators: dict[str, Any] = j12_generators()
    for column, template in J12_LLM_TEMPLATES.items():
        model = ChatModel(
            j12_llm_model_id(column), base_url=base_url, max_concurrency=max_concurrency, **model_options
        )
        generators[column] = model.text(template)
    return generators


def _expected_chunk(rows: int, start: int) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
    """Every column of rows ``start .. start + rows - 1``, and each cell column's prompts."""
    roots = j12_expected_columns(rows, start)
    columns: dict[str, list[Any]] = {name: roots[name] for name in _ROOTS}
    prompts: dict[str, list[str]] = {}
    for name, strategy, upstream in J12_COLUMNS:
        if name in columns:
            continue
        if strategy == "full_column":  # summary
            columns[name] = [
                f"{len(code)}:{label}:{total}"
                for code, label, total in zip(
                    columns["code"], columns["label"], columns["total"], strict=True
                )
            ]
            continue
        template, model = J12_LLM_TEMPLATES[name], j12_llm_model_id(name)
        ups = [columns[up] for up in upstream]
        prompts[name] = [
            template.format(**dict(zip(upstream, values, strict=True))) for values in zip(*ups, strict=True)
        ]
        columns[name] = [fake_answers.expected_text(model, prompt) for prompt in prompts[name]]
    return columns, prompts


def j12_llm_expected(rows: int, start: int = 0) -> dict[str, list[Any]]:
    """Every J12-LLM column for global rows ``start .. start + rows - 1``: the endpoint's answers."""
    return _expected_chunk(rows, start)[0]


_CHUNK = 50_000
"""Rows of prompts built at a time (bounds the memory of a long listing)."""


def j12_llm_requests(rows: int) -> Iterator[tuple[tuple[str, str], tuple[str, int]]]:
    """``((model, prompt), (column, row))`` for every cell call of rows ``0 .. rows - 1``.

    What the endpoint counts a call by (``EndpointStats.calls_by_request``), with the cell it
    computes: a test matches the server's counts to the cells a checkpoint held.
    """
    for first in range(0, rows, _CHUNK):
        _, prompts = _expected_chunk(min(_CHUNK, rows - first), first)
        for name, column_prompts in prompts.items():
            model = j12_llm_model_id(name)
            for k, prompt in enumerate(column_prompts):
                yield (model, prompt), (name, first + k)


def j12_llm_differences(data: Mapping[str, Sequence[Any]], rows: int, *, limit: int = 5) -> list[str]:
    """How *data* (``{column: values}`` of rows ``0 .. rows - 1``) differs from J12-LLM; empty if not.

    As :func:`~cellfrontier.testing.j12.j12_differences` does for J12: at most *limit* wrong
    cells per column, then a count of the rest.
    """
    return j12_differences(data, rows, limit=limit, expected_columns=j12_llm_expected)


def check_j12_llm_output(data: Mapping[str, Sequence[Any]], rows: int) -> None:
    """Raise AssertionError unless *data* (``{column: values}`` with ``_row``) is J12-LLM exactly."""
    if "_row" in data and list(data["_row"]) != list(range(rows)):
        row_ids = list(data["_row"])
        missing = sorted(set(range(rows)) - set(row_ids))[:5]
        raise AssertionError(f"rows differ from 0..{rows - 1}: {len(row_ids)} rows, first missing {missing}")
    problems = j12_llm_differences(data, rows)
    if problems:
        raise AssertionError("output differs from J12-LLM: " + "; ".join(problems))
