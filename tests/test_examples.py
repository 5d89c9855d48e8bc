"""The example job in ``examples/reviews.py`` runs as its docstring says, with and without a model."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from job_support import needs_pyarrow

from cellfrontier.cli import main

pytestmark = needs_pyarrow

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "reviews.py"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory; the example's module and ``sys.path`` restored afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "reviews", raising=False)
    monkeypatch.delenv("REVIEWS_BASE_URL", raising=False)
    return tmp_path


def read(out: Path) -> dict[str, list[Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(out / "data")
    return {name: table.column(name).to_pylist() for name in table.column_names}


def test_the_example_runs_grows_and_reruns_only_an_edited_column(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(EXAMPLE, workdir / "reviews.py")  # a copy, edited below as a user would
    target = "reviews.py:make_job"
    assert main(["run", target, "--rows", "1500", "--no-progress"]) == 0
    reviews = sys.modules["reviews"]  # imported by the command, under its file's name
    data = read(workdir / "reviews-out")
    assert data["_row"] == list(range(1500))
    assert data["product"] == reviews.product({"_row": data["_row"]})
    assert data["rating"] == reviews.rating({"_row": data["_row"]})
    rows = [{"product": p, "rating": r} for p, r in zip(data["product"], data["rating"], strict=True)]
    assert data["review"] == [reviews.review(row) for row in rows]
    assert data["sentiment"] == [reviews.sentiment(row) for row in rows]
    assert set(data["rating"]) == {1, 2, 3, 4, 5}

    capsys.readouterr()
    assert main(["run", target, "--rows", "2500", "--no-progress"]) == 0  # grown: rows 1,500 on
    assert "2,500 rows" in capsys.readouterr().out
    assert read(workdir / "reviews-out")["_row"] == list(range(2500))

    source = workdir / "reviews.py"  # the edit: sentiment's version raised
    source.write_text(
        source.read_text().replace('generator(sentiment, version="1")', 'generator(sentiment, version="2")')
    )
    del sys.modules["reviews"]
    assert main(["run", target, "--plan"]) == 0
    plan = capsys.readouterr().out
    assert "kept:       product, rating, review" in plan
    assert "recomputed: sentiment" in plan
    assert main(["run", target, "--rows", "2500", "--no-progress"]) == 0
    assert "2,500 tasks" in capsys.readouterr().out  # the sentiment cells, nothing else
    assert main(["status", "reviews-out"]) == 0
    assert "2,500 done" in capsys.readouterr().out


@pytest.mark.process
def test_the_example_calls_a_model_when_an_endpoint_is_configured(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("httptools")
    from cellfrontier.testing.fake_answers import expected_text
    from cellfrontier.testing.fake_endpoint import FakeEndpoint

    with FakeEndpoint(latency_scale=0.0) as endpoint:
        monkeypatch.setenv("REVIEWS_BASE_URL", endpoint.base_url)
        monkeypatch.setenv("REVIEWS_MODEL", "reviews-model")
        assert main(["run", f"{EXAMPLE}:make_job", "--rows", "300", "--no-progress"]) == 0
        answered = endpoint.stats().answered
    data = read(workdir / "reviews-out")
    prompts = [
        f"Write a one-sentence customer review of a {p} rated {r} out of 5."
        for p, r in zip(data["product"], data["rating"], strict=True)
    ]
    assert data["review"] == [expected_text("reviews-model", prompt) for prompt in prompts]
    assert answered == 300
