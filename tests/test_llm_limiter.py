"""The adaptive limiter (AIMD per endpoint and model) and the reading of Retry-After, alone."""

from __future__ import annotations

import asyncio
import email.utils

import pytest

from cellfrontier.llm.limiter import AdaptiveLimiter, backoff_delay, limiter_for, retry_after_seconds


def test_slots_up_to_the_limit_then_waiters_in_order() -> None:
    async def scenario() -> list[int]:
        limiter = AdaptiveLimiter(cap=2)
        assert limiter.try_acquire() and limiter.try_acquire()
        assert not limiter.try_acquire()
        order: list[int] = []

        async def waiter(k: int) -> None:
            await limiter.acquire()
            order.append(k)

        tasks = [asyncio.create_task(waiter(k)) for k in range(3)]
        await asyncio.sleep(0)
        assert order == [] and limiter.in_flight == 2
        limiter.release()
        await asyncio.sleep(0)
        assert order == [0]
        limiter.release()
        limiter.release()
        await asyncio.gather(*tasks)
        assert limiter.in_flight == 2 and limiter.peak_in_flight == 2
        return order

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    async def scenario() -> AdaptiveLimiter:
        limiter = AdaptiveLimiter(cap=1)
        assert limiter.try_acquire()
        task = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        limiter.release()  # hands the slot to the waiter ...
        task.cancel()  # ... which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await task
        return limiter

    limiter = asyncio.run(scenario())
    assert limiter.in_flight == 0 and limiter.try_acquire()


def test_overload_halves_once_per_epoch() -> None:
    limiter = AdaptiveLimiter(cap=64)
    epoch = limiter.epoch
    for _ in range(40):  # a burst of 429s to calls sent under the same limit
        limiter.overloaded(epoch)
    assert (limiter.limit, limiter.decreases) == (32, 1)
    limiter.overloaded(limiter.epoch)  # a call sent after the decrease
    assert (limiter.limit, limiter.decreases) == (16, 2)
    for _ in range(10):
        limiter.overloaded(limiter.epoch)
    assert limiter.limit == 1  # never below one


def test_additive_increase_needs_a_full_window_of_successes_at_full_use() -> None:
    limiter = AdaptiveLimiter(cap=8, initial=4)
    for _ in range(4):
        assert limiter.try_acquire()
    for _ in range(3):
        limiter.succeeded(0.01, limiter.epoch)
        assert limiter.try_acquire()
    assert limiter.limit == 4
    limiter.succeeded(0.01, limiter.epoch)  # the 4th success at full use
    assert limiter.limit == 5 and limiter.increases == 1
    while limiter.in_flight:  # below full use: no credit
        limiter.succeeded(0.01, limiter.epoch)
    assert limiter.limit == 5


def test_the_limit_never_passes_the_cap() -> None:
    limiter = AdaptiveLimiter(cap=3, initial=1)
    for _ in range(100):
        while limiter.try_acquire():  # full use every round
            pass
        while limiter.in_flight:
            limiter.succeeded(0.0, limiter.epoch)
    assert limiter.limit == 3 and limiter.increases == 2


def test_latency_above_the_bound_stops_growth() -> None:
    limiter = AdaptiveLimiter(cap=8, initial=2, latency_bound=0.1)
    for _ in range(50):
        assert limiter.try_acquire()
        assert limiter.try_acquire()
        limiter.succeeded(0.5, limiter.epoch)
        limiter.succeeded(0.5, limiter.epoch)
    assert limiter.limit == 2 and limiter.increases == 0


def test_limiters_are_shared_per_endpoint_and_model_with_the_smallest_cap() -> None:
    first = limiter_for("http://127.0.0.1:1/v1", "shared-model", 16)
    second = limiter_for("http://127.0.0.1:1/v1", "shared-model", 8)
    other = limiter_for("http://127.0.0.1:1/v1", "another-model", 16)
    assert first is second and first.cap == 8 and first.limit == 8
    assert other is not first and other.cap == 16


def test_retry_after_forms() -> None:
    assert retry_after_seconds([(b"Retry-After", b"3")]) == 3.0
    assert retry_after_seconds([(b"retry-after", b"1.5")]) == 1.5
    assert retry_after_seconds([(b"Retry-After", b"7"), (b"retry-after-ms", b"250")]) == 0.25
    assert retry_after_seconds([(b"content-type", b"application/json")]) is None
    assert retry_after_seconds([(b"Retry-After", b"soon")]) is None
    assert retry_after_seconds([(b"Retry-After", b"-5")]) == 0.0
    past = email.utils.formatdate(0, usegmt=True).encode()
    assert retry_after_seconds([(b"Retry-After", past)]) == 0.0
    far = email.utils.formatdate(4102444800, usegmt=True).encode()  # 2100-01-01
    seconds = retry_after_seconds([(b"Retry-After", far)])
    assert seconds is not None and seconds > 365 * 86400


def test_backoff_grows_and_is_capped() -> None:
    for attempt in range(1, 20):
        step = min(10.0, 0.1 * 2 ** (attempt - 1))
        assert step * 0.5 <= backoff_delay(attempt) <= step


def test_against_a_fixed_capacity_the_limit_settles_at_or_below_it() -> None:
    """Rounds of a server that takes 20 at a time: each round the client sends what its limit
    allows, the server refuses the calls beyond 20 (their answers come first), and the rest
    succeed.  After the first burst the limit stays between half the capacity and one above it."""
    capacity = 20
    limiter = AdaptiveLimiter(cap=256)
    history = []
    for _ in range(600):
        sent = []
        while limiter.try_acquire():
            sent.append(limiter.epoch)
        for epoch in sent[capacity:]:
            limiter.release()
            limiter.overloaded(epoch)
        for epoch in sent[:capacity]:
            limiter.succeeded(0.01, epoch)
        history.append(limiter.limit)
    settled = history[10:]
    assert max(settled) == capacity + 1 and min(settled) == (capacity + 1) // 2
    assert limiter.decreases >= 4  # it keeps probing: several cycles in 600 rounds
    assert sum(settled) / len(settled) < capacity


def test_successes_of_calls_sent_before_a_decrease_earn_no_credit() -> None:
    limiter = AdaptiveLimiter(cap=8)
    epochs = []
    while limiter.try_acquire():
        epochs.append(limiter.epoch)
    limiter.overloaded(epochs[0])  # limit 8 -> 4 while 8 are in flight
    for epoch in epochs:
        limiter.succeeded(0.01, epoch)
    assert limiter.limit == 4 and limiter.increases == 0
