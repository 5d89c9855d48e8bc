"""CPU per model call, client by client, with 1,024 requests in flight (J12-LLM's call path).

Starts the fake endpoint (:mod:`cellfrontier.testing.fake_endpoint`, 25-75 ms per answer),
then runs each client in its own subprocess against it: a warm-up of one call per slot
(connections opened), then ``--calls`` chat completions with ``--in-flight`` workers calling
in a loop.  For each it reports the client process's CPU per call (``getrusage``: user +
system time of every thread), calls per second, their share of the ceiling the latency
allows (in-flight / 50 ms), and the endpoint's own CPU per call (it shares the machine).
Every answer is checked against the endpoint's formula.

Clients: ``lean`` (the bare exchange cellfrontier.llm's transport is built on: an asyncio
protocol, httptools' parser, stdlib json), ``lean-uvloop``, ``aiohttp`` (one ClientSession),
``openai`` (``AsyncOpenAI`` with its default httpx transport), ``openai-aiohttp``
(``DefaultAioHttpClient``), ``httpx`` (``AsyncClient``), and the product's own calls:
``chatmodel-text`` / ``chatmodel-json`` (a ``ChatModel.text()`` / ``.json()`` column called
with a row: template, limiter, usage, JSON, all in), and ``chatmodel-text-uvloop``.

    python benchmarks/llm_call_path.py                       # every client, table on stdout
    python benchmarks/llm_call_path.py --clients lean,chatmodel-text --calls 40000

Quote the figures as ratios within one run: the machine's two cores are shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

MODEL = "bench-model"
SLOW_CLIENTS = {"openai", "httpx", "openai-aiohttp"}
CLIENTS = (
    "lean",
    "lean-uvloop",
    "aiohttp",
    "openai",
    "openai-aiohttp",
    "httpx",
    "chatmodel-text",
    "chatmodel-text-uvloop",
    "chatmodel-json",
)


def prompt(i: int) -> str:
    return f"Answer briefly: what is question number {i}?"


# -- the clients (each returns an async callable: prompt -> answer text) ---------------------------


async def lean_client(base_url: str, in_flight: int) -> Callable[[str], Awaitable[str]]:
    from cellfrontier.llm.transport import parse_base_url, pool_for

    origin = parse_base_url(base_url)
    head = (
        f"POST {origin.path}/chat/completions HTTP/1.1\r\nHost: {origin.host_header}\r\n"
        "Content-Type: application/json\r\nAuthorization: Bearer bench\r\nContent-Length: "
    ).encode()
    dumps, loads = json.dumps, json.loads

    async def call(text: str) -> str:
        body = dumps({"model": MODEL, "messages": [{"role": "user", "content": text}]}).encode()
        response = await pool_for(origin).request(b"%s%d\r\n\r\n%s" % (head, len(body), body), 60.0)
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
        return loads(response.body)["choices"][0]["message"]["content"]  # type: ignore[no-any-return]

    return call


async def aiohttp_client(base_url: str, in_flight: int) -> Callable[[str], Awaitable[str]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight))
    url = base_url + "/chat/completions"
    headers = {"Authorization": "Bearer bench"}

    async def call(text: str) -> str:
        payload = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        async with session.post(url, json=payload, headers=headers) as response:
            data = await response.json()
        return data["choices"][0]["message"]["content"]  # type: ignore[no-any-return]

    return call


async def openai_client(
    base_url: str, in_flight: int, aiohttp: bool = False
) -> Callable[[str], Awaitable[str]]:
    import openai

    options: dict[str, Any] = {"http_client": openai.DefaultAioHttpClient()} if aiohttp else {}
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, **options)

    async def call(text: str) -> str:
        completion = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text}]
        )
        return completion.choices[0].message.content or ""

    return call


async def httpx_client(base_url: str, in_flight: int) -> Callable[[str], Awaitable[str]]:
    import httpx

    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    client = httpx.AsyncClient(limits=limits, timeout=60.0)
    url = base_url + "/chat/completions"
    headers = {"Authorization": "Bearer bench"}

    async def call(text: str) -> str:
        payload = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        response = await client.post(url, json=payload, headers=headers)
        return response.json()["choices"][0]["message"]["content"]  # type: ignore[no-any-return]

    return call


async def chatmodel_client(base_url: str, in_flight: int, kind: str) -> Callable[[str], Awaitable[str]]:
    from cellfrontier.llm import ChatModel

    model = ChatModel(MODEL, base_url=base_url, api_key="bench", max_concurrency=in_flight)
    if kind == "json":
        schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
        column: Any = model.json("{question}", schema=schema)
    else:
        column = model.text("{question}")
    column.check_inputs(kind, ["question"])

    async def call(text: str) -> str:
        return await column({"question": text, "_row": 0})  # type: ignore[no-any-return]

    return call


def expected(text: str, client: str) -> Any:
    from cellfrontier.testing import fake_answers

    if client == "chatmodel-json":
        schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
        return fake_answers.expected_json(MODEL, text, schema)
    return fake_answers.expected_text(MODEL, text)


async def make_client(name: str, base_url: str, in_flight: int) -> Callable[[str], Awaitable[Any]]:
    if name.startswith("lean"):
        return await lean_client(base_url, in_flight)
    if name == "aiohttp":
        return await aiohttp_client(base_url, in_flight)
    if name == "openai":
        return await openai_client(base_url, in_flight)
    if name == "openai-aiohttp":
        return await openai_client(base_url, in_flight, aiohttp=True)
    if name == "httpx":
        return await httpx_client(base_url, in_flight)
    if name.startswith("chatmodel-json"):
        return await chatmodel_client(base_url, in_flight, "json")
    if name.startswith("chatmodel-text"):
        return await chatmodel_client(base_url, in_flight, "text")
    raise SystemExit(f"unknown client {name!r}; known: {', '.join(CLIENTS)}")


# -- one client's run (in its own process) ------------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


async def _drive(
    call: Callable[[str], Awaitable[Any]], first: int, count: int, in_flight: int, name: str
) -> int:
    """*count* calls (prompts first .. first + count - 1) by *in_flight* workers; returns wrong answers."""
    next_index = first
    stop = first + count
    wrong = 0

    async def worker() -> None:
        nonlocal next_index, wrong
        while next_index < stop:
            i = next_index
            next_index += 1
            text = prompt(i)
            answer = await call(text)
            if i % 97 == 0 and answer != expected(text, name):
                wrong += 1

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return wrong


async def _run_client(name: str, base_url: str, calls: int, in_flight: int) -> dict[str, Any]:
    call = await make_client(name, base_url, in_flight)
    await _drive(call, 10**9, in_flight, in_flight, name)  # warm-up: one call per slot, connections open
    started, cpu_started = time.perf_counter(), _cpu()
    wrong = await _drive(call, 0, calls, in_flight, name)
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu_started
    return {"client": name, "calls": calls, "seconds": seconds, "cpu_seconds": cpu, "wrong": wrong}


def run_client(name: str, base_url: str, calls: int, in_flight: int) -> None:
    from cellfrontier.testing.fake_endpoint import _raise_open_files_limit

    _raise_open_files_limit()
    loop: asyncio.AbstractEventLoop
    if name.endswith("uvloop"):
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:  # not asyncio.Runner (3.11+): the benchmarks run on every supported Python
        result = loop.run_until_complete(_run_client(name, base_url, calls, in_flight))
    finally:
        loop.close()
    print(json.dumps(result), flush=True)


# -- the comparison (the parent) ----------------------------------------------------------------


def available(name: str) -> bool:
    module = {
        "lean-uvloop": "uvloop",
        "chatmodel-text-uvloop": "uvloop",
        "aiohttp": "aiohttp",
        "openai": "openai",
        "openai-aiohttp": "openai",
        "httpx": "httpx",
    }.get(name)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def compare(
    clients: list[str], calls: int, slow_calls: int, in_flight: int, latency_scale: float
) -> list[dict[str, Any]]:
    from cellfrontier.testing.fake_endpoint import FakeEndpoint

    rows: list[dict[str, Any]] = []
    ceiling = in_flight / (0.050 * latency_scale)
    with FakeEndpoint(latency_scale=latency_scale, max_lifetime=3600.0) as endpoint:
        for name in clients:
            if not available(name):
                print(f"{name}: skipped (not installed)", file=sys.stderr)
                continue
            n = slow_calls if name in SLOW_CLIENTS else calls
            before = endpoint.stats()
            command = [sys.executable, __file__, "--run-client", name, "--base-url", endpoint.base_url]
            command += ["--calls", str(n), "--in-flight", str(in_flight)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            after = endpoint.stats()
            served = after.answered - before.answered
            result["endpoint_cpu_us_per_call"] = (
                (after.cpu_seconds - before.cpu_seconds) * 1e6 / max(1, served)
            )
            result["cpu_us_per_call"] = result["cpu_seconds"] * 1e6 / n
            result["calls_per_second"] = n / result["seconds"]
            result["share_of_ceiling"] = result["calls_per_second"] / ceiling
            rows.append(result)
            print(
                f"{name:>22}: {result['cpu_us_per_call']:8.1f} us/call"
                f"  {result['calls_per_second']:8.0f} calls/s"
                f"  endpoint {result['endpoint_cpu_us_per_call']:6.1f} us/call"
                f"  wrong answers {result['wrong']}",
                file=sys.stderr,
                flush=True,
            )
    return rows


def table(rows: list[dict[str, Any]], in_flight: int, latency_scale: float) -> str:
    by_name = {row["client"]: row for row in rows}
    openai_cpu = by_name.get("openai", {}).get("cpu_us_per_call")
    lean_cpu = by_name.get("lean", {}).get("cpu_us_per_call")
    lines = [
        f"{in_flight} in flight, endpoint latency 25-75 ms x {latency_scale:g} "
        f"(ceiling {in_flight / (0.05 * latency_scale):,.0f} calls/s)",
        "",
        "| client | calls | CPU us/call | calls/s | share of ceiling | endpoint CPU us/call "
        "| openai default / this | this / lean |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        cpu = row["cpu_us_per_call"]
        vs_openai = f"{openai_cpu / cpu:.1f}x" if openai_cpu else "-"
        vs_lean = f"{cpu / lean_cpu:.2f}x" if lean_cpu else "-"
        lines.append(
            f"| {row['client']} | {row['calls']:,} | {cpu:,.1f} | {row['calls_per_second']:,.0f} "
            f"| {row['share_of_ceiling']:.1%} | {row['endpoint_cpu_us_per_call']:.1f} "
            f"| {vs_openai} | {vs_lean} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", default=",".join(CLIENTS), help="comma-separated, from: " + ", ".join(CLIENTS)
    )
    parser.add_argument("--calls", type=int, default=40_960, help="timed calls per fast client")
    parser.add_argument(
        "--slow-calls", type=int, default=4_096, help="timed calls for openai, openai-aiohttp, httpx"
    )
    parser.add_argument("--in-flight", type=int, default=1024)
    parser.add_argument("--latency-scale", type=float, default=1.0)
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--run-client", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_client:
        run_client(args.run_client, args.base_url, args.calls, args.in_flight)
        return
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    rows = compare(clients, args.calls, args.slow_calls, args.in_flight, args.latency_scale)
    print(table(rows, args.in_flight, args.latency_scale))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)
    if any(row["wrong"] for row in rows):
        raise SystemExit("some answers differed from the endpoint's formula")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
