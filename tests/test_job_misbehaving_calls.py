"""Generators that misbehave, whichever way they run: hung calls, CancelledError, coroutines, refusals.

Every outcome is chosen by step, never by the clock: a hung call awaits an event that never
fires (so any timeout ends it, however busy the machine), calls that must not time out never
suspend (a coroutine that does not await finishes in one step, before any timer can fire),
and failures are picked by row.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from graph_support import make_graph
from job_support import needs_pyarrow

from cellfrontier import (
    ExecutionGraph,
    GeneratorMappingError,
    GeneratorOutputError,
    GeneratorTimeoutError,
    Job,
    blocking,
)

ROWS = 40
BUFFER = 10


def chain_graph(with_alias: bool = False) -> ExecutionGraph:
    """``seed`` (full root) -> ``a`` (cell) -> ``b`` (cell) -> ``total`` (full)."""
    graph = make_graph(
        [("seed", "full_column"), ("a", "cell_by_cell"), ("b", "cell_by_cell"), ("total", "full_column")],
        [("seed", "a"), ("a", "b"), ("b", "total")],
    )
    if with_alias:
        graph.set_side_effect("a__note", "a")
    return graph


def seed(batch: Mapping[str, list[Any]]) -> list[int]:
    return list(batch["_row"])


def plus_one(row: Mapping[str, Any]) -> int:
    return int(row["a"]) + 1


def total(batch: Mapping[str, list[Any]]) -> list[int]:
    return [sum(batch["b"])] * len(batch["b"])


def generators(a: Any, **others: Any) -> dict[str, Any]:
    return {"seed": seed, "a": a, "b": plus_one, "total": total, **others}


@pytest.fixture
def no_unawaited_coroutines() -> Iterator[None]:
    """Fail the test if a coroutine is left un-awaited and unclosed (Python warns when it is collected)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="coroutine .* was never awaited")
        yield


# ---------------------------------------------------------------------- (a) hung calls and timeouts


class Hangs:
    """``async def``: rows in *hang* await an event nobody sets; the others answer without suspending."""

    def __init__(self, hang: set[int], attempts: int = 1_000_000) -> None:
        self.hang, self.attempts = hang, attempts
        self.calls: dict[int, int] = {}

    async def __call__(self, row: Mapping[str, Any]) -> int:
        i = row["_row"]
        self.calls[i] = self.calls.get(i, 0) + 1
        if i in self.hang and self.calls[i] <= self.attempts:
            await asyncio.Event().wait()  # never set: only a cancellation ends it
        return int(row.get("seed", 0)) * 10


def test_a_hung_async_call_times_out_is_retried_then_its_row_dropped() -> None:
    hung = {3, 17, 25}
    a = Hangs(hung)
    job = Job(
        chain_graph(),
        generators(a),
        ROWS,
        buffer_size=BUFFER,
        timeouts={"a": 0.01},
        retries=2,
        retry_backoff=0,
        progress_bar=False,
    )
    result = job.run()
    assert result.dropped == len(hung) and result.records == ROWS - len(hung)
    assert {i: a.calls[i] for i in hung} == dict.fromkeys(hung, 3)  # once, then two retries
    assert all(n == 1 for i, n in a.calls.items() if i not in hung)
    assert result.errors == 3 * len(hung)
    assert {s.error_type for s in result.error_samples} == {"GeneratorTimeoutError"}
    data = result.to_pydict(row_index=True)
    assert data["_row"] == [i for i in range(ROWS) if i not in hung]
    assert data["b"] == [10 * i + 1 for i in range(ROWS) if i not in hung]


def test_a_call_that_hangs_once_succeeds_on_its_retry_under_the_job_default() -> None:
    a = Hangs({5, 6}, attempts=1)
    job = Job(
        chain_graph(),
        generators(a),
        ROWS,
        buffer_size=BUFFER,
        call_timeout=0.01,
        retries=1,
        retry_backoff=0,
        progress_bar=False,
    )
    result = job.run()
    assert (result.records, result.dropped, result.errors) == (ROWS, 0, 2)
    assert isinstance(GeneratorTimeoutError("x"), TimeoutError)


def test_a_column_timeout_of_none_lifts_the_job_default() -> None:
    """The hung rows would wait forever without a limit: here the column's own None wins and
    the job default limits only the other async column, which hangs once."""
    a = Hangs(set())
    b_hangs = Hangs({2}, attempts=1)

    async def b(row: Mapping[str, Any]) -> int:
        await b_hangs(row)
        return int(row["a"]) + 1

    job = Job(
        chain_graph(),
        generators(a, b=b),
        ROWS,
        buffer_size=BUFFER,
        call_timeout=0.01,
        timeouts={"a": None},
        retries=1,
        retry_backoff=0,
        progress_bar=False,
    )
    assert [c.timeout for c in job.spec().columns] == [None, None, 0.01, None]
    result = job.run()
    assert (result.records, result.errors) == (ROWS, 1)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"timeouts": {"a": 1.0}}, "applies to async generators only"),
        ({"timeouts": {"nope": 1.0}}, "'nope', which is not a column"),
        ({"timeouts": {"a": 0}}, "seconds > 0"),
        ({"call_timeout": -1}, "call_timeout must be seconds > 0"),
        ({"call_timeout": float("nan")}, "call_timeout must be seconds > 0"),
    ],
)
def test_unusable_timeouts_are_refused_when_the_job_is_made(options: dict[str, Any], words: str) -> None:
    with pytest.raises(GeneratorMappingError, match=words):
        Job(chain_graph(), generators(lambda row: 1), ROWS, **options)


def test_a_blocking_column_gets_no_timeout_from_the_job_default() -> None:
    job = Job(chain_graph(), generators(blocking(lambda row: 1)), ROWS, call_timeout=5.0)
    assert all(c.timeout is None for c in job.spec().columns)


# ---------------------------------------------------------------------- (b) CancelledError from a generator


class CancelsItself:
    """Raises ``asyncio.CancelledError`` on its first *attempts* calls of rows in *rows*."""

    def __init__(self, rows: set[int], attempts: int, plain: bool = False) -> None:
        self.rows, self.attempts, self.calls = rows, attempts, {}  # type: dict[int, int]

    def value(self, row: Mapping[str, Any]) -> int:
        i = row["_row"]
        self.calls[i] = self.calls.get(i, 0) + 1
        if i in self.rows and self.calls[i] <= self.attempts:
            raise asyncio.CancelledError("the generator cancelled itself")
        return int(row["seed"]) * 10


class AsyncCancelsItself(CancelsItself):
    async def __call__(self, row: Mapping[str, Any]) -> int:
        await asyncio.sleep(0)
        return self.value(row)


class PlainCancelsItself(CancelsItself):
    def __call__(self, row: Mapping[str, Any]) -> int:
        return self.value(row)


@pytest.mark.parametrize("kind", [AsyncCancelsItself, PlainCancelsItself], ids=["async", "inline"])
def test_a_generator_raising_cancelled_error_fails_that_call_only(kind: type[CancelsItself]) -> None:
    a = kind({0, 11, 39}, attempts=10)
    result = Job(
        chain_graph(), generators(a), ROWS, buffer_size=BUFFER, retries=1, retry_backoff=0, progress_bar=False
    ).run()
    assert (result.records, result.dropped, result.errors) == (ROWS - 3, 3, 6)
    assert {s.error_type for s in result.error_samples} == {"CancelledError"}
    assert result.to_pydict()["b"] == [10 * i + 1 for i in range(ROWS) if i not in {0, 11, 39}]


def test_a_cancelled_error_once_is_retried_like_any_failure() -> None:
    a = AsyncCancelsItself({4}, attempts=1)
    result = Job(
        chain_graph(), generators(a), ROWS, buffer_size=BUFFER, retries=1, retry_backoff=0, progress_bar=False
    ).run()
    assert (result.records, result.dropped, result.errors) == (ROWS, 0, 1)


def test_an_async_batch_raising_cancelled_error_drops_its_group() -> None:
    async def cancelled_total(batch: Mapping[str, list[Any]]) -> list[int]:
        if batch["_row"][0] == 20:
            raise asyncio.CancelledError()
        return total(batch)

    result = Job(
        chain_graph(),
        generators(plus_one_seed, total=cancelled_total),
        ROWS,
        buffer_size=BUFFER,
        progress_bar=False,
    ).run()
    assert (result.records, result.dropped) == (ROWS - BUFFER, BUFFER)


def plus_one_seed(row: Mapping[str, Any]) -> int:
    return int(row["seed"]) * 10


# ------------------------------------------------------------- (c) plain generators returning awaitables


def returns_coroutine(row: Mapping[str, Any]) -> Any:
    return asyncio.sleep(0)


class CoroutineOnRetry:
    """Fails its first call of row 7, then returns a coroutine: only the retry path sees it."""

    def __init__(self) -> None:
        self.failed = False

    def __call__(self, row: Mapping[str, Any]) -> Any:
        if row["_row"] == 7 and not self.failed:
            self.failed = True
            raise RuntimeError("first attempt fails")
        return asyncio.sleep(0) if row["_row"] == 7 else int(row["seed"])


def batch_coroutine(batch: Mapping[str, list[Any]]) -> Any:
    return asyncio.sleep(0)


@needs_pyarrow
@pytest.mark.parametrize(
    "case",
    ["inline", "inline-alias", "retried-inline", "inline-batch", "blocking", "blocking-batch"],
)
def test_a_plain_generator_returning_a_coroutine_is_refused_before_anything_is_checkpointed(
    case: str, tmp_path: Path, no_unawaited_coroutines: None
) -> None:
    graph = chain_graph(with_alias=case == "inline-alias")
    a: Any = {
        "inline": returns_coroutine,
        "inline-alias": returns_coroutine,
        "retried-inline": CoroutineOnRetry(),
        "blocking": blocking(returns_coroutine),
    }.get(case, plus_one_seed)
    others: dict[str, Any] = {}
    if case == "inline-batch":
        others["total"] = batch_coroutine
    if case == "blocking-batch":
        others["total"] = blocking(batch_coroutine)
    job = Job(
        graph,
        generators(a, **others),
        ROWS,
        buffer_size=BUFFER,
        retries=1,
        retry_backoff=0,
        output_dir=tmp_path / "out",
        progress_bar=False,
    )
    with pytest.raises(GeneratorOutputError, match="returned an awaitable; declare it `async def`"):
        job.run()
    # The job checkpointed as it stopped ...
    assert list((tmp_path / "out" / "checkpoints").rglob("epoch-*.ckpt"))
    # ... and that checkpoint resumes: the same job raises the same error, nothing else.
    with pytest.raises(GeneratorOutputError, match="returned an awaitable"):
        job.run()


def test_generators_named_async_by_the_job_still_run_when_a_plain_one_is_checked(
    no_unawaited_coroutines: None,
) -> None:
    """Checking the first values costs nothing after them: a plain column that returns ints runs."""
    result = Job(chain_graph(), generators(plus_one_seed), ROWS, buffer_size=BUFFER, progress_bar=False).run()
    assert result.records == ROWS


# ---------------------------------------------------------------------- refused requests: retryable = False


class Refused(ValueError):
    retryable = False


def test_an_error_marked_not_retryable_drops_its_row_at_once() -> None:
    calls: dict[int, int] = {}

    async def a(row: Mapping[str, Any]) -> int:
        i = row["_row"]
        calls[i] = calls.get(i, 0) + 1
        if i % 10 == 3:
            raise Refused("the request itself is wrong")
        if i % 10 == 4 and calls[i] == 1:
            raise RuntimeError("a passing failure")
        return i

    result = Job(
        chain_graph(), generators(a), ROWS, buffer_size=BUFFER, retries=3, retry_backoff=0, progress_bar=False
    ).run()
    refused = [i for i in range(ROWS) if i % 10 == 3]
    assert [calls[i] for i in refused] == [1] * len(refused)
    assert all(calls[i] == 2 for i in range(ROWS) if i % 10 == 4)
    assert (result.dropped, result.errors) == (len(refused), 2 * len(refused))


def test_a_replaced_job_keeps_its_timeouts() -> None:
    job = Job(chain_graph(), generators(Hangs(set())), ROWS, call_timeout=2.0, timeouts={"a": 0.5})
    copy = job.replace(num_records=5)
    assert (copy.call_timeout, copy.timeouts) == (2.0, {"a": 0.5})
    assert [c.timeout for c in copy.spec().columns] == [None, 0.5, None, None]


class SwallowsTimeout:
    """Hangs on row 3's first call, catches the timeout's cancellation and answers *outcome*."""

    def __init__(self, outcome: str) -> None:
        self.outcome, self.calls = outcome, 0

    async def __call__(self, row: Mapping[str, Any]) -> int:
        if row["_row"] == 3 and self.calls == 0:
            self.calls += 1
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                if self.outcome == "raise":
                    raise RuntimeError("gave up") from None
                return -1
        return int(row["seed"]) * 10


@pytest.mark.parametrize("outcome", ["raise", "answer"])
def test_a_generator_that_swallows_the_timeouts_cancellation_decides_its_outcome(outcome: str) -> None:
    result = Job(
        chain_graph(),
        generators(SwallowsTimeout(outcome)),
        ROWS,
        buffer_size=BUFFER,
        timeouts={"a": 0.01},
        retries=1,
        retry_backoff=0,
        progress_bar=False,
    ).run()
    assert (result.records, result.dropped) == (ROWS, 0)
    data = result.to_pydict()
    if outcome == "raise":  # its own error failed the call; the retry answered
        assert [s.error_type for s in result.error_samples] == ["RuntimeError"]
        assert data["b"][3] == 31
    else:  # it answered after all: that is its value
        assert (result.errors, data["b"][3]) == (0, 0)


# ---------------------------------------------------------------------- the loop's hook


class WithHooks:
    """An async generator with both hooks: only ``aclose_loop()`` is the job's to call."""

    def __init__(self) -> None:
        self.loops_closed: list[asyncio.AbstractEventLoop] = []
        self.closed_for_good = False

    async def __call__(self, row: Mapping[str, Any]) -> int:
        return int(row["seed"]) * 10

    async def aclose_loop(self) -> None:
        self.loops_closed.append(asyncio.get_running_loop())

    async def aclose(self) -> None:
        self.closed_for_good = True


@needs_pyarrow
def test_aclose_loop_is_awaited_on_each_shards_loop_and_aclose_never(tmp_path: Path) -> None:
    a = WithHooks()
    job = Job(
        chain_graph(),
        generators(a),
        ROWS,
        buffer_size=BUFFER,
        output_dir=tmp_path / "out",
        progress_bar=False,
    )
    job.run(row_groups=range(0, 2))
    job.run(row_groups=range(2, 4))
    assert len(a.loops_closed) == 2 and a.loops_closed[0] is not a.loops_closed[1]
    assert not a.closed_for_good
