"""How a job treats the process's signal handlers (in this process; no signal is sent)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cellfrontier.job.shard.interrupts import StopSignals


def _sigint_set_to(handler: Any) -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored, as in a process started with nohup or in a non-interactive background job."""
    yield from _sigint_set_to(signal.SIG_IGN)


@pytest.fixture
def sigint_default() -> Iterator[None]:
    """Ctrl-C raising KeyboardInterrupt, as at a terminal, however the test run was started."""
    yield from _sigint_set_to(signal.default_int_handler)


def test_handlers_are_installed_while_inside_and_put_back_after(sigint_default: None) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with StopSignals() as stop:
        for signum in before:
            assert signal.getsignal(signum) == stop._handle
    assert {s: signal.getsignal(s) for s in before} == before


def test_an_ignored_signal_stays_ignored(sigint_ignored: None) -> None:
    with StopSignals() as stop:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == stop._handle
        stop.redeliver()  # nothing received: nothing raised
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_outside_the_main_thread_nothing_is_installed() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    seen: list[dict[int, object]] = []

    def inside() -> None:
        with StopSignals() as stop:
            seen.append(dict(stop.previous))

    thread = threading.Thread(target=inside)
    thread.start()
    thread.join()
    assert seen == [{}]
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_received_signal_is_recorded_once_and_reported(sigint_default: None) -> None:
    calls: list[int] = []
    with StopSignals(on_signal=calls.append) as stop:
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
        assert stop.received == signal.SIGTERM
        assert calls == [signal.SIGTERM, signal.SIGINT]
