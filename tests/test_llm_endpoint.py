"""The fake endpoint itself: its formulas, its HTTPS, and that it stops by itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("httptools")

from llm_support import gather_settled, run, self_signed_certificate

from cellfrontier.llm import ChatModel, ModelConnectionError
from cellfrontier.testing import fake_answers
from cellfrontier.testing.fake_endpoint import EndpointConfig, FakeEndpoint

pytestmark = pytest.mark.process


def test_the_formulas_are_the_documented_ones() -> None:
    import hashlib

    d = hashlib.blake2b(b"m\0hello", digest_size=12).digest()
    assert fake_answers.expected_text("m", "hello") == "v" + d[8:].hex()
    u = int.from_bytes(d[:8], "big") / 2**64
    assert fake_answers.expected_latency("m", "hello") == pytest.approx(0.050 * (0.5 + u))
    assert fake_answers.expected_latency("m", "hello", 0.1) == pytest.approx(0.005 * (0.5 + u))
    assert 0.025 <= fake_answers.expected_latency("m", "hello") < 0.075


def test_a_reask_keeps_the_key_of_its_request() -> None:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "the prompt"}]
    assert fake_answers.key_content(messages) == "the prompt"
    reask = [*messages, {"role": "assistant", "content": "{"}, {"role": "user", "content": "again"}]
    assert fake_answers.key_content(reask) == "the prompt"
    parts = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    assert fake_answers.key_content(parts) == "ab"


def test_switch_bands_are_disjoint() -> None:
    assert fake_answers.switch_band(0.05, 0.1, 0.1, 0.1) == "fail"
    assert fake_answers.switch_band(0.15, 0.1, 0.1, 0.1) == "hang"
    assert fake_answers.switch_band(0.25, 0.1, 0.1, 0.1) == "invalid"
    assert fake_answers.switch_band(0.35, 0.1, 0.1, 0.1) == ""


def test_config_round_trips_through_the_command_line() -> None:
    from cellfrontier.testing.fake_endpoint import _parser

    config = EndpointConfig(
        latency_scale=0.5, max_in_flight=3, unknown_models=("a", "b"), retry_after_format="date"
    )
    parsed = vars(_parser().parse_args(config.to_args()))
    for name in ("certfile", "keyfile", "ignore_stdin"):
        parsed.pop(name)
    parsed["unknown_models"] = tuple(parsed["unknown_models"])
    assert EndpointConfig(**parsed) == config


def test_https_with_the_ca_given_and_refused_without_it(tmp_path: Path) -> None:
    certfile, keyfile = self_signed_certificate(tmp_path)
    with FakeEndpoint(latency_scale=0.02, certfile=certfile, keyfile=keyfile) as endpoint:
        assert endpoint.base_url.startswith("https://127.0.0.1:")
        trusting = ChatModel("tls-model", base_url=endpoint.base_url, verify=certfile).text("Q {q}")
        values = run(lambda: gather_settled([trusting({"q": k, "_row": k}) for k in range(20)]))
        assert values == [fake_answers.expected_text("tls-model", f"Q {k}") for k in range(20)]
        doubting = ChatModel("tls-model-2", base_url=endpoint.base_url).text("Q {q}")  # the system's CAs
        refused = run(lambda: gather_settled([doubting({"q": 0, "_row": 0})]))
        stats = endpoint.stats()
    assert isinstance(refused[0], ModelConnectionError) and "CERTIFICATE_VERIFY_FAILED" in str(refused[0])
    assert stats.answered == 20 and stats.peak_in_flight_by_model == {"tls-model": stats.peak_in_flight}


def test_close_stops_the_endpoint_without_killing_it() -> None:
    endpoint = FakeEndpoint(latency_scale=0.0)
    process = endpoint._process
    assert process is not None
    endpoint.close()
    assert process.returncode == 0


def test_the_endpoint_stops_after_its_lifetime() -> None:
    endpoint = FakeEndpoint(latency_scale=0.0, max_lifetime=0.2)
    try:
        process = endpoint._process
        assert process is not None
        assert process.wait(timeout=60) == 0  # exits by itself, its stdin still open
    finally:
        endpoint.close()


def test_the_endpoint_stops_when_its_parent_dies() -> None:
    """A parent that starts an endpoint and exits without closing it: the endpoint follows."""
    parent = textwrap.dedent(
        """
        import os, sys
        from cellfrontier.testing.fake_endpoint import FakeEndpoint
        endpoint = FakeEndpoint(latency_scale=0.0)
        print(endpoint._process.pid, flush=True)
        os._exit(0)  # no close(), no __exit__
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, check=True, timeout=120
    )
    pid = int(out.stdout.strip())
    # The orphan is not our child: poll for it with a bounded number of waits, not the clock.
    for _ in range(600):
        if not _alive(pid):
            break
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def test_stats_route_and_unknown_routes() -> None:
    import http.client

    with FakeEndpoint(latency_scale=0.0) as endpoint:
        conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=30)
        conn.request("GET", "/v1/models")
        response = conn.getresponse()
        assert response.status == 404 and "no route" in json.loads(response.read())["error"]["message"]
        conn.request(
            "POST", "/v1/chat/completions", body=b"{not json", headers={"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        assert response.status == 400
        response.read()
        conn.close()
        stats = endpoint.stats()
    assert stats.request_errors == 2 and stats.calls == 1 and stats.answered == 0
