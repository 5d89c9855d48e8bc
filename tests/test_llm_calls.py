"""Model columns against the fake endpoint: answers, rate limits, failures, usage, caps, secrets.

Every outcome is chosen by step: which requests fail, hang or get an invalid answer is a
function of the request (the endpoint's switch bands), and where an interleaving matters the
endpoint holds its answers until a given number of requests has arrived (a barrier).
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

pytest.importorskip("httptools")

from llm_support import gather_settled, run

from cellfrontier.llm import (
    ChatModel,
    InvalidAnswerError,
    ModelConnectionError,
    ModelRequestError,
    ModelServerError,
    ModelTimeoutError,
    RateLimitTimeoutError,
    TemplateFieldError,
    Usage,
)
from cellfrontier.testing import fake_answers
from cellfrontier.testing.fake_endpoint import FakeEndpoint

pytestmark = pytest.mark.process

FAST = 0.02
"""Latency scale of tests that need no overlap: 0.5-1.5 ms per answer."""

FACTS = {
    "type": "object",
    "properties": {"topic": {"type": "string"}, "facts": {"type": "array", "items": {"type": "string"}}},
    "required": ["topic", "facts"],
}


def prompts(n: int, text: str = "Answer briefly: {q}") -> list[str]:
    return [text.format(q=f"question {k}") for k in range(n)]


def rows(n: int) -> list[dict[str, Any]]:
    return [{"q": f"question {k}", "_row": k} for k in range(n)]


def test_text_answers_match_the_endpoint_formula_and_usage_matches_its_counts() -> None:
    with FakeEndpoint(latency_scale=FAST) as endpoint:
        model = ChatModel("text-model", base_url=endpoint.base_url)
        column = model.text("Answer briefly: {q}", temperature=0.7, max_tokens=16, system="Be brief.")

        async def calls() -> list[Any]:
            values = await asyncio.gather(*(column(row) for row in rows(300)))
            await model.aclose()
            return values

        values = run(calls)
        stats = endpoint.stats()
    assert values == [fake_answers.expected_text("text-model", p) for p in prompts(300)]
    assert stats.calls == stats.answered == 300
    assert set(stats.calls_by_request.values()) == {1}
    assert column.usage == Usage(
        calls=300, prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens
    )
    assert model.usage == column.usage
    # The system message is sent too: its two words count in every prompt.
    assert stats.prompt_tokens == sum(len(p.split()) + 2 for p in prompts(300))


def test_json_answers_are_validated_plain_data() -> None:
    with FakeEndpoint(latency_scale=FAST) as endpoint:
        model = ChatModel("json-model", base_url=endpoint.base_url)
        column = model.json("Facts about {q}", schema=FACTS)
        values = run(lambda: asyncio.gather(*(column(row) for row in rows(20))))
        # json_object: the schema goes in a system message; the fake then answers {"answer": text}.
        answer_schema = {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
        }
        loose = model.json("Facts about {q}", schema=answer_schema, response_format="json_object")
        loose_value = run(lambda: loose(rows(1)[0]))
        stats = endpoint.stats()
    assert values == [
        fake_answers.expected_json("json-model", p, FACTS) for p in prompts(20, "Facts about {q}")
    ]
    assert loose_value == {"answer": fake_answers.expected_text("json-model", "Facts about question 0")}
    assert loose.usage.prompt_tokens > len(["Facts", "about", "question", "0"])  # the schema was sent too
    assert column.usage.prompt_tokens + loose.usage.prompt_tokens == stats.prompt_tokens


def test_a_429_storm_finishes_every_call_and_lowers_the_limit() -> None:
    """The endpoint takes 16 at a time; 64 calls arrive at once, then 236 more.

    Its barrier holds every answer until 64 requests have arrived, so the first burst is
    always 16 accepted and 48 refused: the limit halves at least once (from the cap of 64)
    and, since raising it from 32 needs 32 successes per step, 300 calls cannot bring it
    back to the cap.
    """
    limit = 16
    with FakeEndpoint(
        latency_scale=0.2, max_in_flight=limit, hold_until=64, retry_after=0.005, retry_after_format="ms"
    ) as endpoint:
        model = ChatModel("storm-model", base_url=endpoint.base_url, max_concurrency=64)
        column = model.text("Answer briefly: {q}")
        values = run(lambda: gather_settled([column(row) for row in rows(300)]))
        stats = endpoint.stats()
    assert values == [fake_answers.expected_text("storm-model", p) for p in prompts(300)]
    assert stats.overloaded >= 48 and stats.early_retries == 0
    assert stats.peak_in_flight == limit
    assert column.usage.rate_limit_waits == stats.overloaded
    assert column.usage.calls == stats.answered == 300
    assert column.usage.retryable_errors == column.usage.request_errors == 0
    assert model.limiter.decreases >= 1 and model.limiter.limit < 64


@pytest.mark.parametrize("form", ["ms", "seconds", "date"])
def test_retry_after_is_honoured_in_each_form(form: str) -> None:
    """One slot, two calls: the second is refused while the first is held, and must wait."""
    with FakeEndpoint(
        latency_scale=FAST, max_in_flight=1, hold_until=2, retry_after=0.2, retry_after_format=form
    ) as endpoint:
        model = ChatModel(f"retry-after-{form}", base_url=endpoint.base_url)
        column = model.text("Answer briefly: {q}")
        values = run(lambda: gather_settled([column(row) for row in rows(2)]))
        stats = endpoint.stats()
    assert values == [fake_answers.expected_text(f"retry-after-{form}", p) for p in prompts(2)]
    assert stats.overloaded == 1 and stats.early_retries == 0
    assert column.usage.rate_limit_waits == 1 and column.usage.calls == 2


def test_503_is_a_rate_limit_too_and_rate_limit_timeout_ends_the_wait() -> None:
    with FakeEndpoint(
        latency_scale=FAST, max_in_flight=1, hold_until=2, overload_status=503, retry_after=30.0
    ) as endpoint:
        model = ChatModel("overloaded", base_url=endpoint.base_url, rate_limit_timeout=1.0)
        column = model.text("Answer briefly: {q}")
        values = run(lambda: gather_settled([column(row) for row in rows(2)]))
    assert values[0] == fake_answers.expected_text("overloaded", prompts(1)[0])
    assert isinstance(values[1], RateLimitTimeoutError) and values[1].retryable
    assert "rate_limit_timeout" in str(values[1])
    assert column.usage.rate_limit_waits == 1 and column.usage.retryable_errors == 1


def test_500s_are_retryable_failures_and_succeed_when_asked_again() -> None:
    share = 0.3
    with FakeEndpoint(latency_scale=FAST, fail_share=share, fail_attempts=1) as endpoint:
        model = ChatModel("flaky", base_url=endpoint.base_url)
        column = model.text("Answer briefly: {q}")
        first = run(lambda: gather_settled([column(row) for row in rows(100)]))
        failed = [k for k, value in enumerate(first) if isinstance(value, Exception)]
        second = run(lambda: gather_settled([column(rows(100)[k]) for k in failed]))
        stats = endpoint.stats()
    chosen = [k for k, p in enumerate(prompts(100)) if fake_answers.switch_fraction("flaky", p) < share]
    assert failed == chosen and 0 < len(chosen) < 100
    assert all(isinstance(first[k], ModelServerError) and first[k].retryable for k in chosen)
    assert all(first[k].status == 500 and "injected server error" in str(first[k]) for k in chosen)
    assert second == [fake_answers.expected_text("flaky", prompts(100)[k]) for k in chosen]
    assert stats.server_errors == len(chosen) == column.usage.retryable_errors
    assert column.usage.calls == 100 == stats.answered


def test_a_hung_call_times_out_and_its_retry_succeeds() -> None:
    """The endpoint never answers the first attempt: the outcome cannot depend on speed."""
    with FakeEndpoint(latency_scale=FAST, hang_share=1.0, hang_attempts=1) as endpoint:
        model = ChatModel("hanging", base_url=endpoint.base_url, timeout=30.0)
        column = model.text("Answer briefly: {q}", timeout=0.05)  # the column's own timeout
        first = run(lambda: gather_settled([column(rows(1)[0])]))
        second = run(lambda: column(rows(1)[0]))
        stats = endpoint.stats()
    assert isinstance(first[0], ModelTimeoutError) and first[0].retryable
    assert second == fake_answers.expected_text("hanging", prompts(1)[0])
    assert stats.hangs == 1 and stats.in_flight == 0  # the abandoned request left with its connection
    assert column.usage.retryable_errors == 1 and column.usage.calls == 1
    assert column.timeout == 0.05 and model.timeout == 30.0


def test_an_invalid_json_answer_is_asked_again_with_the_error() -> None:
    with FakeEndpoint(latency_scale=FAST, invalid_json_share=1.0, invalid_json_attempts=2) as endpoint:
        model = ChatModel("invalid-json", base_url=endpoint.base_url)
        patient = model.json("Facts about {q}", schema=FACTS, max_validation_retries=2)
        value = run(lambda: patient(rows(1)[0]))
        stats = endpoint.stats()
    assert value == fake_answers.expected_json("invalid-json", "Facts about question 0", FACTS)
    assert patient.usage.invalid_answers == 2 and patient.usage.calls == 3
    assert stats.invalid_json == 2 and stats.calls_by_request == {
        ("invalid-json", "Facts about question 0"): 3
    }
    assert len(stats.reasks) == 2
    assert "not JSON" in stats.reasks[0] and "expected object" in stats.reasks[1]
    assert patient.usage.prompt_tokens == stats.prompt_tokens


def test_an_answer_still_invalid_after_the_retries_is_a_failure() -> None:
    with FakeEndpoint(latency_scale=FAST, invalid_json_share=1.0, invalid_json_attempts=2) as endpoint:
        model = ChatModel("still-invalid", base_url=endpoint.base_url)
        impatient = model.json("Facts about {q}", schema=FACTS, max_validation_retries=1)
        outcome = run(lambda: gather_settled([impatient(rows(1)[0])]))
    assert isinstance(outcome[0], InvalidAnswerError) and "after 1 re-ask" in str(outcome[0])
    assert impatient.usage.invalid_answers == 2 and impatient.usage.calls == 2


def test_other_4xx_fail_at_once_with_the_server_message() -> None:
    with FakeEndpoint(latency_scale=FAST, unknown_models=("no-such-model",)) as endpoint:
        model = ChatModel("no-such-model", base_url=endpoint.base_url)
        column = model.text("Answer briefly: {q}")
        outcome = run(lambda: gather_settled([column(rows(1)[0])]))
        stats = endpoint.stats()
    error = outcome[0]
    assert isinstance(error, ModelRequestError) and isinstance(error, ValueError) and not error.retryable
    assert error.status == 404 and error.server_message == "the model 'no-such-model' does not exist"
    assert stats.calls == 1  # asked once, never again
    assert column.usage.request_errors == 1 and column.usage.calls == 0


def test_caps_per_model_are_never_exceeded() -> None:
    """The barrier holds answers until 4 + 8 requests arrived: each model fills its cap exactly."""
    with FakeEndpoint(latency_scale=0.1, hold_until=12) as endpoint:
        small = ChatModel("cap-4", base_url=endpoint.base_url, max_concurrency=4).text("Answer briefly: {q}")
        large = ChatModel("cap-8", base_url=endpoint.base_url, max_concurrency=8).text("Answer briefly: {q}")
        run(lambda: asyncio.gather(*(c(row) for row in rows(60) for c in (small, large))))
        stats = endpoint.stats()
    assert stats.peak_in_flight_by_model == {"cap-4": 4, "cap-8": 8}
    assert stats.peak_in_flight == 12 and stats.answered == 120


def test_a_template_field_that_is_missing_is_refused_before_any_call() -> None:
    with FakeEndpoint(latency_scale=FAST) as endpoint:
        column = ChatModel("m", base_url=endpoint.base_url).text("About {topic}")
        with pytest.raises(TemplateFieldError, match="'topic'"):
            column.check_inputs("answer", ["question"])
        with pytest.raises(TemplateFieldError, match="'topic'"):
            run(lambda: column({"question": "q", "_row": 0}))
        assert endpoint.stats().calls == 0


def test_a_keep_alive_connection_closed_by_the_server_is_reopened_once() -> None:
    """The endpoint closes a connection, unanswered, when a second request arrives on it."""
    with FakeEndpoint(latency_scale=FAST, close_after=1) as endpoint:
        model = ChatModel("reconnect", base_url=endpoint.base_url)
        column = model.text("Answer briefly: {q}")

        async def one_at_a_time() -> list[str]:
            return [await column(row) for row in rows(5)]

        values = run(one_at_a_time)
        stats = endpoint.stats()
    assert values == [fake_answers.expected_text("reconnect", p) for p in prompts(5)]
    assert stats.closed_without_answer == 4 and column.usage.retryable_errors == 0


def test_an_unreachable_endpoint_is_a_retryable_connection_error() -> None:
    with FakeEndpoint(latency_scale=FAST) as endpoint:
        base_url = endpoint.base_url
    column = ChatModel("gone", base_url=base_url).text("Answer briefly: {q}")  # the port is closed now
    outcome = run(lambda: gather_settled([column(rows(1)[0])]))
    assert isinstance(outcome[0], ModelConnectionError) and outcome[0].retryable
    assert column.usage.retryable_errors == 1


SECRET = "sk-test-cellfrontier-0123456789"


def test_the_key_from_the_environment_is_sent_but_never_shown_or_pickled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CF_TEST_KEY", SECRET)
    with FakeEndpoint(latency_scale=FAST, api_key=SECRET) as endpoint:
        model = ChatModel("keyed", base_url=endpoint.base_url, api_key_env="CF_TEST_KEY")
        column = model.json("Facts about {q}", schema=FACTS)
        value = run(lambda: column(rows(1)[0]))
        assert value == fake_answers.expected_json("keyed", "Facts about question 0", FACTS)
        shown = " ".join([repr(model), repr(column), column.identity(), repr(column.usage), repr(endpoint)])
        assert SECRET not in shown
        assert SECRET.encode() not in pickle.dumps(column)
        copy = pickle.loads(pickle.dumps(column))  # after calls: the model had a pool and a limiter
        assert copy.usage == Usage() and copy.model is not model
        assert copy.model._pool is None and copy.model._limiter is None and copy.model._api_key is None
        assert run(lambda: copy(rows(1)[0])) == value  # the copy reads the key from the environment again
        monkeypatch.setenv("CF_TEST_KEY", "sk-wrong-" + SECRET)
        wrong = ChatModel("keyed", base_url=endpoint.base_url, api_key_env="CF_TEST_KEY").text("{q}")
        outcome = run(lambda: gather_settled([wrong(rows(1)[0])]))
    error = outcome[0]
    assert isinstance(error, ModelRequestError) and error.status == 401
    assert "incorrect API key provided" in str(error) and SECRET not in str(error) + error.server_message


def test_an_explicit_key_travels_with_a_pickle() -> None:
    model = ChatModel("m", base_url="http://127.0.0.1:9/v1", api_key=SECRET)
    assert SECRET not in repr(model)
    copy = pickle.loads(pickle.dumps(model))
    assert copy._api_key == SECRET


def test_identity_covers_what_decides_values_and_nothing_else() -> None:
    a = ChatModel("m", base_url="http://127.0.0.1:9/v1", api_key=SECRET).text("Q: {q}", temperature=0.5)
    b = ChatModel("m", base_url="https://other.example:8443/v1").text("Q: {q}", temperature=0.5)
    assert a.identity() == b.identity()
    assert (
        a.identity()
        != ChatModel("m", base_url="http://127.0.0.1:9/v1").text("Q: {q}", temperature=0.6).identity()
    )
    assert (
        a.identity()
        != ChatModel("m2", base_url="http://127.0.0.1:9/v1").text("Q: {q}", temperature=0.5).identity()
    )
    j1 = a.model.json("Q: {q}", schema=FACTS)
    j2 = a.model.json("Q: {q}", schema={**FACTS, "required": ["topic"]})
    assert j1.identity() != j2.identity() != a.identity()


def test_usage_exports_restores_and_adds() -> None:
    usage = Usage(calls=3, prompt_tokens=10, completion_tokens=4, rate_limit_waits=1)
    saved = usage.as_dict()
    assert all(type(v) is int for v in saved.values())
    restored = Usage.from_dict(saved)
    restored.add(Usage(calls=2, retryable_errors=1))
    assert restored.as_dict() == {**saved, "calls": 5, "retryable_errors": 1}
    assert usage + Usage(calls=1) == Usage(**{**saved, "calls": 4})
    with pytest.raises(ValueError, match="unknown counter"):
        Usage.from_dict({"dollars": 1})
    with pytest.raises(ValueError, match="ints >= 0"):
        usage.add({"calls": -1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "ftp://127.0.0.1/v1"}, "http:// or https://"),
        ({"base_url": "http://user:pw@127.0.0.1/v1"}, "credentials"),
        ({"base_url": "http://127.0.0.1/v1", "max_concurrency": 0}, "max_concurrency"),
        ({"base_url": "http://127.0.0.1/v1", "timeout": 0}, "timeout"),
    ],
)
def test_bad_model_settings_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ChatModel("m", **kwargs)


def test_params_the_column_sets_itself_are_refused() -> None:
    model = ChatModel("m", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="'messages'"):
        model.text("{q}", messages=[])


def test_latency_back_pressure_stops_the_limit_growing() -> None:
    with FakeEndpoint(latency_scale=FAST) as endpoint:
        bounded = ChatModel(
            "bounded",
            base_url=endpoint.base_url,
            max_concurrency=32,
            initial_concurrency=2,
            latency_bound=1e-9,
        )
        free = ChatModel("free", base_url=endpoint.base_url, max_concurrency=32, initial_concurrency=2)
        for model in (bounded, free):
            column = model.text("Answer briefly: {q}")
            run(lambda column=column: asyncio.gather(*(column(row) for row in rows(100))))
    assert bounded.limiter.limit == 2 and bounded.limiter.increases == 0
    assert free.limiter.limit > 2
