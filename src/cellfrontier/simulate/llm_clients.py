"""J12-LLM's cell columns over the clients a user would otherwise write: plain ``async def`` generators.

The comparison side of ``cellfrontier simulate --workload J12-LLM``: the same prompts sent to
the same endpoint, through the openai SDK (its default httpx transport, or its aiohttp one),
a bare ``httpx.AsyncClient`` or one ``aiohttp.ClientSession``, each wrapped the way a user
writes a generator for ``Job``: fill the template, await the client, return the answer's
text.  One client per event loop and endpoint, shared by the columns (as a user shares one),
created on first use and closed by the column's ``aclose_loop()``, which the job awaits at the end
of each shard.  A column pickles without its client, so ``run(workers=N)`` ships it.

``openai`` is ``openai.AsyncOpenAI(base_url=..., api_key=...)`` as it comes (its retries and
limits by default); the others get a connection limit of *in_flight*.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["CLIENTS", "ClientColumn", "client_generators"]

CLIENTS = ("openai", "openai-aiohttp", "httpx", "aiohttp")
DUMMY_KEY = "not-a-key"
"""The fake endpoint needs none; the SDK insists on one."""

Call = Callable[[str, str], Awaitable[str]]
"""``call(model, prompt)``: the answer's text."""


class _Client:
    """One client of one kind for one endpoint on one event loop."""

    def __init__(self, kind: str, base_url: str, in_flight: int) -> None:
        self.kind = kind
        self.handle: Any = None
        self.call: Call = self._build(kind, base_url, in_flight)

    def _build(self, kind: str, base_url: str, in_flight: int) -> Call:
        if kind in ("openai", "openai-aiohttp"):
            import openai

            options: dict[str, Any] = {}
            if kind == "openai-aiohttp":
                options["http_client"] = openai.DefaultAioHttpClient()
            client = self.handle = openai.AsyncOpenAI(base_url=base_url, api_key=DUMMY_KEY, **options)

            async def sdk_call(model: str, prompt: str) -> str:
                completion = await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": prompt}]
                )
                return completion.choices[0].message.content or ""

            return sdk_call
        url = base_url.rstrip("/") + "/chat/completions"
        if kind == "httpx":
            import httpx

            limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
            session = self.handle = httpx.AsyncClient(limits=limits, timeout=120.0)

            async def httpx_call(model: str, prompt: str) -> str:
                payload = {"model": model, "messages": [{"role": "user", "content": prompt}]}
                response = await session.post(url, json=payload)
                response.raise_for_status()
                return str(response.json()["choices"][0]["message"]["content"])

            return httpx_call
        if kind == "aiohttp":
            import aiohttp

            connector = aiohttp.TCPConnector(limit=in_flight)
            http = self.handle = aiohttp.ClientSession(connector=connector)

            async def aiohttp_call(model: str, prompt: str) -> str:
                payload = {"model": model, "messages": [{"role": "user", "content": prompt}]}
                async with http.post(url, json=payload) as response:
                    response.raise_for_status()
                    data = await response.json()
                return str(data["choices"][0]["message"]["content"])

            return aiohttp_call
        raise ValueError(f"unknown client {kind!r}; known: {', '.join(CLIENTS)}")

    async def aclose(self) -> None:
        handle = self.handle
        if self.kind == "httpx":
            await handle.aclose()
        else:  # aiohttp's session and the openai SDK's client
            await handle.close()


_CLIENTS: dict[tuple[asyncio.AbstractEventLoop, str, str], _Client] = {}


class ClientColumn:
    """A cell column asking *model* at *base_url* through *client*, the row filled into *template*."""

    def __init__(self, client: str, base_url: str, model: str, template: str, in_flight: int = 1024) -> None:
        if client not in CLIENTS:
            raise ValueError(f"unknown client {client!r}; known: {', '.join(CLIENTS)}")
        self.client, self.base_url, self.model = client, base_url, model
        self.template, self.in_flight = template, in_flight

    def _call(self) -> Call:
        key = (asyncio.get_running_loop(), self.client, self.base_url)
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = _Client(self.client, self.base_url, self.in_flight)
        return client.call

    async def __call__(self, row: Mapping[str, Any]) -> str:
        return await self._call()(self.model, self.template.format_map(row))

    async def aclose_loop(self) -> None:
        """Close this loop's client of this kind and endpoint (shared by the columns), if open."""
        client = _CLIENTS.pop((asyncio.get_running_loop(), self.client, self.base_url), None)
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"ClientColumn({self.client!r}, model={self.model!r})"


def client_generators(client: str, base_url: str, in_flight: int = 1024) -> dict[str, Any]:
    """J12-LLM's generators with every cell column a :class:`ClientColumn` of *client*."""
    from cellfrontier.testing.j12 import j12_generators
    from cellfrontier.testing.j12_llm import J12_LLM_TEMPLATES, j12_llm_model_id

    generators: dict[str, Any] = j12_generators()
    for column, template in J12_LLM_TEMPLATES.items():
        generators[column] = ClientColumn(client, base_url, j12_llm_model_id(column), template, in_flight)
    return generators
