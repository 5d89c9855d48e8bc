"""``cellfrontier simulate --workload J12-LLM``: every backend writes J12-LLM exactly, on 127.0.0.1 only."""

from __future__ import annotations

import sys

import pytest

from cellfrontier.cli import main
from cellfrontier.simulate.datadesigner_llm import OutsideConnections, jinja_template
from cellfrontier.simulate.llm_jobs import run_j12_llm
from cellfrontier.testing.j12_llm import J12_LLM_TEMPLATES

pytest.importorskip("httptools")
pytest.importorskip("pyarrow")
SCALE = 0.02


def test_the_templates_jinja_form_names_the_same_fields() -> None:
    assert jinja_template(J12_LLM_TEMPLATES["final"]) == "Join {{ summary }}|{{ sig }}|{{ order_id }}."


def test_the_guard_refuses_connections_and_lookups_outside_the_loopback() -> None:
    guard = OutsideConnections()
    guard("socket.connect", (None, ("127.0.0.1", 8000)))
    guard("socket.connect", (None, "/run/some.sock"))
    guard("socket.getaddrinfo", ("localhost", 80, 0, 0, 0))
    with pytest.raises(ConnectionRefusedError):
        guard("socket.connect", (None, ("203.0.113.7", 443)))
    with pytest.raises(ConnectionRefusedError):
        guard("socket.getaddrinfo", (b"events.telemetry.example", 443, 0, 0, 0))
    assert guard.refused == ["203.0.113.7", "events.telemetry.example"]


@pytest.mark.process
@pytest.mark.parametrize("backend", ["llm", "openai", "aiohttp"])
def test_a_job_backend_writes_j12_llm_cell_by_cell(backend: str) -> None:
    pytest.importorskip("openai" if backend == "openai" else "httptools")
    pytest.importorskip("aiohttp" if backend == "aiohttp" else "httptools")
    figures = run_j12_llm(150, backend, latency_scale=SCALE)  # checks the output cell by cell
    assert (figures.records, figures.calls, figures.checked) == (150, 7 * 150, True)
    assert figures.cpu_us_per_call > 0 and 0 < figures.share_of_ceiling < 1


@pytest.mark.process
def test_datadesigner_llm_columns_write_j12_llm_with_telemetry_off_and_nothing_outside() -> None:
    from cellfrontier.simulate.datadesigner_jobs import dd_skip_reason

    reason = dd_skip_reason()
    if reason:
        pytest.skip(reason)
    # run_j12_llm refuses a run whose subprocess saw telemetry on or refused a connection.
    figures = run_j12_llm(100, "datadesigner", latency_scale=SCALE)
    assert (figures.records, figures.calls, figures.checked) == (100, 700, True)


@pytest.mark.process
@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX processes")
def test_the_command_runs_j12_llm_on_two_workers(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("distributed")
    argv = ["simulate", "--workload", "J12-LLM", "--rows", "400", "--workers", "2", "--no-progress"]
    assert main([*argv, "--latency-scale", str(SCALE)]) == 0
    out = capsys.readouterr().out
    assert "2 worker processes" in out and "cellfrontier.llm (Job)" in out
    assert "output checked cell by cell against J12-LLM: cellfrontier.llm (Job)" in out


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--backend", "floor"], "J12-LLM runs with llm"),
        (["--backend", "datadesigner", "--workers", "2"], "--workers runs cellfrontier's Job"),
        (["--latency-scale", "0"], "--latency-scale must be above 0"),
    ],
)
def test_the_command_refuses_options_that_do_not_fit(
    extra: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--workload", "J12-LLM", *extra])
    assert words in capsys.readouterr().err


def test_llm_options_are_refused_for_other_workloads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--workload", "J12", "--workers", "2"])
    assert "are for --workload J12-LLM" in capsys.readouterr().err
