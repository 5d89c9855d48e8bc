"""J12-LLM through NVIDIA DataDesigner's own engine and LLM text columns, in a subprocess.

The comparison side of ``cellfrontier simulate --workload J12-LLM --backend datadesigner``:
J12's DataDesigner config (:func:`cellfrontier.simulate.datadesigner_jobs.build_j12_config`:
the sampler it needs, the custom root and ``summary`` columns) with each of the seven cell
columns replaced by an ``LLMTextColumnConfig`` whose prompt is the Jinja form of J12-LLM's
template (``{{ row_key }}``), asking its own model (``j12lat-model-<column>``, one
``ModelConfig`` each with ``max_parallel_requests=256``, since DataDesigner caps per provider
and model) of one ``openai``-type ``ModelProvider`` at the fake endpoint;
``RunConfig(max_in_flight_tasks=1024)``.

DataDesigner sends usage telemetry to an outside endpoint after a job with model calls.  It
reads ``NEMO_TELEMETRY_ENABLED`` when it is imported, so the job runs in a subprocess started
with it set to ``false``; the subprocess checks that DataDesigner saw it off, and an audit hook
refuses (and reports) every connection and name lookup outside 127.0.0.1 for the whole run:
nothing leaves the machine.  The subprocess prints its figures as one JSON line; the parent
reads the output files and checks them cell by cell.

    python -m cellfrontier.simulate.datadesigner_llm BASE_URL ROWS OUTPUT_DIR
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LOOPBACK", "jinja_template", "run_dd_j12_llm", "run_dd_j12_llm_subprocess"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")
MODEL_CAP = 256
JOB_CAP = 1024


def jinja_template(template: str) -> str:
    """``{field}`` as Jinja's ``{{ field }}`` (J12-LLM's templates hold no other braces)."""
    return template.replace("{", "{{ ").replace("}", " }}")


class OutsideConnections:
    """An audit hook: refuses every socket connection and name lookup outside the loopback."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect":
            address = args[1]
            host = address[0] if isinstance(address, tuple) else None  # a str is a Unix socket's path
        elif event == "socket.getaddrinfo":
            host = args[0]
            host = host.decode() if isinstance(host, bytes) else host
        else:
            return
        if host is not None and host not in LOOPBACK:
            self.refused.append(str(host))
            raise ConnectionRefusedError(f"J12-LLM's DataDesigner run allows 127.0.0.1 only, not {host!r}")


def run_dd_j12_llm(base_url: str, rows: int, output_dir: Path, guard: OutsideConnections) -> dict[str, Any]:
    """Run J12-LLM through DataDesigner in this process (the subprocess's body; see the module doc).

    *guard* is the audit hook the process installed first; its refusals are reported.
    """
    if os.environ.get("NEMO_TELEMETRY_ENABLED", "").lower() != "false":
        raise RuntimeError("run with NEMO_TELEMETRY_ENABLED=false in the environment (a subprocess)")
    from data_designer.config.column_configs import LLMTextColumnConfig
    from data_designer.config.models import ChatCompletionInferenceParams, ModelConfig
    from data_designer.engine.models import telemetry

    from cellfrontier.simulate.datadesigner_jobs import _import_engine, _quiet_data_designer, build_j12_config
    from cellfrontier.simulate.reporting import PeakRss
    from cellfrontier.testing.j12 import CELL_COLUMNS
    from cellfrontier.testing.j12_llm import J12_LLM_TEMPLATES, j12_llm_model_id

    if telemetry.TELEMETRY_ENABLED:
        raise RuntimeError("DataDesigner's telemetry is on despite NEMO_TELEMETRY_ENABLED=false")
    dd = _import_engine()
    config = build_j12_config()
    config.columns = [
        LLMTextColumnConfig(name=c.name, prompt=jinja_template(J12_LLM_TEMPLATES[c.name]), model_alias=c.name)
        if c.name in CELL_COLUMNS
        else c
        for c in config.columns
    ]
    models = [
        ModelConfig(
            alias=column,
            model=j12_llm_model_id(column),
            provider="fake-endpoint",
            inference_parameters=ChatCompletionInferenceParams(max_parallel_requests=MODEL_CAP),
            skip_health_check=True,
        )
        for column in CELL_COLUMNS
    ]
    output_dir.mkdir(parents=True, exist_ok=True)
    run_config = dd["RunConfig"](buffer_size=1000, max_in_flight_tasks=JOB_CAP, disable_early_shutdown=True)
    provider = dd["create_resource_provider"](
        artifact_storage=dd["ArtifactStorage"](artifact_path=output_dir, dataset_name="j12-llm"),
        model_configs=models,
        secret_resolver=dd["PlaintextResolver"](),
        model_provider_registry=dd["resolve_model_provider_registry"](
            [dd["ModelProvider"](name="fake-endpoint", endpoint=base_url, api_key="not-a-key")]
        ),
        seed_reader_registry=dd["SeedReaderRegistry"]([]),
        run_config=run_config,
    )
    with _quiet_data_designer(True), PeakRss() as rss:
        wall0, cpu0 = time.perf_counter(), _cpu()
        builder = dd["builder_module"].DatasetBuilder(config, provider)
        dataset_dir = builder.build(num_records=rows)
        seconds, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "records": int(builder.actual_num_records),
        "peak_rss_growth": rss.growth,
        "output": str(dataset_dir),
        "telemetry_enabled": bool(telemetry.TELEMETRY_ENABLED),
        "outside_connections_refused": guard.refused,
    }


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_dd_j12_llm_subprocess(
    base_url: str, rows: int, output_dir: Path, timeout: float = 7_200.0
) -> dict[str, Any]:
    """Run J12-LLM through DataDesigner in a subprocess with telemetry off; its figures.

    Raises when DataDesigner is missing, when the run fails, or when anything tried to reach
    beyond 127.0.0.1 (it was refused).
    """
    env = dict(os.environ, NEMO_TELEMETRY_ENABLED="false")
    command = [
        sys.executable,
        "-m",
        "cellfrontier.simulate.datadesigner_llm",
        base_url,
        str(rows),
        str(output_dir),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode == 3:
        from cellfrontier.simulate.datadesigner_jobs import DataDesignerUnavailable

        raise DataDesignerUnavailable(done.stdout.strip())
    if done.returncode != 0:
        raise RuntimeError(f"DataDesigner's J12-LLM run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["outside_connections_refused"] or figures["telemetry_enabled"]:
        raise RuntimeError(
            "DataDesigner tried to reach beyond 127.0.0.1 (refused): "
            f"{sorted(set(figures['outside_connections_refused']))}, telemetry {figures['telemetry_enabled']}"
        )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3:
        print(__doc__)
        return 2
    guard = OutsideConnections()
    sys.addaudithook(guard)  # before DataDesigner is imported: for the process's whole life
    from cellfrontier.simulate.datadesigner_jobs import dd_skip_reason

    reason = dd_skip_reason()
    if reason:
        print(reason)
        return 3
    figures = run_dd_j12_llm(args[0], int(args[1]), Path(args[2]), guard)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
