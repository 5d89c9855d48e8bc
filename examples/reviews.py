"""A small synthetic-data job to run from the terminal: product reviews.

    cellfrontier run examples/reviews.py:make_job                  # 10,000 rows into reviews-out/
    cellfrontier status reviews-out/                               # what the directory holds
    cellfrontier run examples/reviews.py:make_job --rows 50000     # grown: only the new rows computed
    cellfrontier run examples/reviews.py:make_job --plan           # after an edit: what a rerun redoes

Four columns: ``product`` and ``rating`` are drawn per row group (full-column samplers),
``review`` is written per row from both, and ``sentiment`` labels each review.  ``review`` is a
model call when ``REVIEWS_BASE_URL`` names an OpenAI-compatible server (``REVIEWS_MODEL`` the
model, the key from ``OPENAI_API_KEY``), and a plain function otherwise, so the example runs
anywhere.  Edit ``sentiment`` (or raise its ``version=``) and run again: ``product``, ``rating``
and ``review`` are read back from the files, only ``sentiment`` is computed.

Every value is a function of the row index, so a rerun or a resumed run gives the same dataset.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from cellfrontier import ExecutionGraph, Job, generator

PRODUCTS = ("kettle", "desk lamp", "rain jacket", "headphones", "chess set", "backpack")
ADJECTIVES = {1: "disappointing", 2: "flimsy", 3: "decent", 4: "solid", 5: "excellent"}


def _unit(row: int, salt: str) -> float:
    """A number in [0, 1) drawn from the row index alone (the same on every run)."""
    digest = hashlib.blake2b(f"{salt}:{row}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def product(batch: dict[str, list[Any]]) -> list[str]:
    return [PRODUCTS[int(_unit(row, "product") * len(PRODUCTS))] for row in batch["_row"]]


def rating(batch: dict[str, list[Any]]) -> list[int]:
    return [1 + int(_unit(row, "rating") * 5) for row in batch["_row"]]


def review(row: dict[str, Any]) -> str:
    """What a model would write; replaced by a model column when an endpoint is configured."""
    return f"A {ADJECTIVES[row['rating']]} {row['product']}, {row['rating']} out of 5."


def sentiment(row: dict[str, Any]) -> str:
    return "positive" if row["rating"] >= 4 else "negative" if row["rating"] <= 2 else "mixed"


def build_graph() -> ExecutionGraph:
    graph = ExecutionGraph()
    graph.add_column("product", "full_column")
    graph.add_column("rating", "full_column")
    graph.add_column("review", "cell_by_cell")
    graph.add_column("sentiment", "cell_by_cell")
    graph.add_edge("product", "review")
    graph.add_edge("rating", "review")
    graph.add_edge("rating", "sentiment")
    graph.add_edge("review", "sentiment")
    return graph


def review_generator() -> Any:
    """The model column when ``REVIEWS_BASE_URL`` is set, else :func:`review`."""
    base_url = os.environ.get("REVIEWS_BASE_URL")
    if not base_url:
        return review
    from cellfrontier.llm import ChatModel  # the llm extra: pip install 'cellfrontier[llm]'

    model = ChatModel(
        os.environ.get("REVIEWS_MODEL", "meta/llama-3.1-8b-instruct"), base_url=base_url, max_concurrency=256
    )
    return model.text(
        "Write a one-sentence customer review of a {product} rated {rating} out of 5.",
        temperature=0.8,
        max_tokens=80,
    )


def make_job() -> Job:
    return Job(
        build_graph(),
        {
            "product": product,
            "rating": rating,
            "review": review_generator(),
            "sentiment": generator(sentiment, version="1"),
        },
        10_000,
        buffer_size=1_000,
        retries=2,  # a model call that fails is tried twice more before its row is dropped
        output_dir="reviews-out",
    )
