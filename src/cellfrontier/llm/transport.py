"""The HTTP/1.1 client of model calls: one keep-alive connection pool per event loop and origin.

Why not an HTTP library: the call path is the product's hot path, and measured with 1,024
requests in flight against the fake endpoint (``benchmarks/llm_call_path.py``, table in
BENCHMARKS.md) the client library decides the CPU per call.  aiohttp spends about four times
what a bare exchange does, and httpx (the openai SDK's default transport) far more, in
per-request objects, header handling and connection-pool bookkeeping a chat completion does
not need.  A chat completion is always the same exchange: one POST with a JSON body, one
JSON answer.  So this module does only that, at the floor: an :class:`asyncio.Protocol` per
connection, the request written in one ``write`` (a head prepared once per model plus the
body), the response parsed by httptools (llhttp, the parser Node.js uses, in C: status,
headers, ``Content-Length`` or chunked bodies, keep-alive), and the awaiting call woken by
one future.  No redirects, cookies, compression or proxies: a model endpoint needs none.

Connections are kept alive and reused (a LIFO list of idle ones).  As any HTTP/1.1 client
must, a request sent on a *reused* connection that the server had meanwhile closed (an idle
keep-alive timeout: the connection ends before any byte of the answer) is sent again once on
a new connection; a connection that fails after answer bytes arrived is an error.
HTTPS goes through asyncio's TLS with the context the model builds (system CAs, a CA file,
or none).

Pools belong to an event loop: a job's shard runs its own loop, so it gets its own pool, and
a pool never outlives its loop (they are kept in a weak mapping by loop).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httptools

from cellfrontier.llm.errors import ModelConnectionError, ModelTimeoutError

__all__ = [
    "ConnectionPool",
    "Origin",
    "Response",
    "close_loop_pools",
    "close_pool",
    "parse_base_url",
    "pool_for",
]


class Origin(NamedTuple):
    """Where requests go: scheme, host and port, plus the path prefix of the API (``/v1``)."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_base_url(base_url: str) -> Origin:
    """Split ``http(s)://host[:port]/prefix`` into an :class:`Origin`; anything else is refused."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http:// or https:// URL with a host, got {base_url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not carry a query or fragment, got {base_url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Origin(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


class Response(NamedTuple):
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]
    """Raw header pairs as received (names in the server's case)."""


class _StaleConnection(Exception):
    """The connection ended before any byte of the answer (a reused one may be retried)."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: at most one exchange at a time, parsed by httptools."""

    __slots__ = ("chunks", "closed", "headers", "keep_alive", "parser", "received", "transport", "waiter")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.chunks: list[bytes] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.received = False
        self.closed = False
        self.keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ModelConnectionError(f"malformed HTTP response from the model endpoint: {exc}"))
            self.abort()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            if not self.received:
                self._fail(_StaleConnection())
            else:
                self._fail(
                    ModelConnectionError(f"the model endpoint closed the connection mid-answer ({exc})")
                )

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        self.keep_alive = self.parser.should_keep_alive()
        chunks = self.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self.parser.get_status_code(), body, self.headers))

    # the exchange
    def send(self, data: bytes, waiter: asyncio.Future[Response]) -> None:
        self.waiter = waiter
        self.chunks = []
        self.headers = []
        self.received = False
        self.transport.write(data)  # type: ignore[union-attr]

    def timed_out(self) -> None:
        self._fail(ModelTimeoutError("the model endpoint did not answer within the call's timeout"))
        self.abort()

    def _fail(self, exc: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class ConnectionPool:
    """Keep-alive connections to one origin, for one event loop.

    It does not limit how many connections it opens: the callers' concurrency limits do, and
    a pool never makes a call wait for a connection another call holds.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin, ssl_context: Any = None) -> None:
        self.loop = loop
        self.origin = origin
        self.ssl_context = ssl_context
        self.idle: list[_Connection] = []
        self.opened = 0
        self.closed = False

    async def request(self, data: bytes, timeout: float) -> Response:
        """Send *data* (a whole HTTP/1.1 request) and return the answer.

        Raises :class:`ModelTimeoutError` after *timeout* seconds without a whole answer and
        :class:`ModelConnectionError` when no connection can be had or it breaks mid-answer.
        """
        idle = self.idle
        connection = None
        while idle:
            candidate = idle.pop()
            if not candidate.closed:
                connection = candidate
                break
        if connection is not None:
            try:
                return await self._exchange(connection, data, timeout)
            except _StaleConnection:  # closed by the server while idle: send once more, anew
                pass
        try:
            return await self._exchange(await self._connect(), data, timeout)
        except _StaleConnection:
            raise ModelConnectionError(
                f"the model endpoint {self.origin.host_header!r} closed a new connection without answering"
            ) from None

    async def _exchange(self, connection: _Connection, data: bytes, timeout: float) -> Response:
        waiter: asyncio.Future[Response] = self.loop.create_future()
        connection.send(data, waiter)
        timer = self.loop.call_later(timeout, connection.timed_out)
        try:
            response = await waiter
        except _StaleConnection:
            raise
        except BaseException:  # a timeout, a broken connection, or the call cancelled mid-exchange
            connection.abort()
            raise
        finally:
            timer.cancel()
        if connection.keep_alive and not connection.closed and not self.closed:
            self.idle.append(connection)
        else:
            connection.abort()
        return response

    async def _connect(self) -> _Connection:
        origin = self.origin
        try:
            _, connection = await self.loop.create_connection(
                _Connection,
                origin.host,
                origin.port,
                ssl=self.ssl_context,
                server_hostname=origin.host if self.ssl_context is not None else None,
            )
        except OSError as exc:
            raise ModelConnectionError(
                f"cannot connect to the model endpoint {origin.host_header!r}: {exc}"
            ) from None
        self.opened += 1
        return connection

    def close(self) -> None:
        """Close the idle connections; connections in use close when their exchange ends."""
        self.closed = True
        idle, self.idle = self.idle, []
        for connection in idle:
            connection.abort()


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], ConnectionPool]] = (
    weakref.WeakKeyDictionary()
)


def pool_for(origin: Origin, ssl_context: Any = None, tls_key: Any = None) -> ConnectionPool:
    """The running loop's pool for *origin* (created on first use).

    Models with the same origin and TLS settings (*tls_key*) share it, so a job's columns
    reuse each other's idle connections.
    """
    loop = asyncio.get_running_loop()
    pools = _POOLS.get(loop)
    if pools is None:
        pools = _POOLS[loop] = {}
    key = (origin.scheme, origin.host, origin.port, tls_key)
    pool = pools.get(key)
    if pool is None or pool.closed:
        pool = pools[key] = ConnectionPool(loop, origin, ssl_context)
    return pool


def close_pool(origin: Origin, tls_key: Any = None) -> None:
    """Close the running loop's pool for *origin*, if any (the next request opens a new one)."""
    pools = _POOLS.get(asyncio.get_running_loop())
    if pools is not None:
        pool = pools.pop((origin.scheme, origin.host, origin.port, tls_key), None)
        if pool is not None:
            pool.close()


def close_loop_pools() -> None:
    """Close every pool of the running loop (a runner calls it when the loop's work is done)."""
    for pool in (_POOLS.pop(asyncio.get_running_loop(), None) or {}).values():
        pool.close()
