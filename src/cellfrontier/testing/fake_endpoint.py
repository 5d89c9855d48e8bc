"""A fake OpenAI-compatible chat-completions endpoint on 127.0.0.1, in a subprocess.

For tests and benchmarks of code that calls models (yours too)::

    from cellfrontier.testing.fake_endpoint import FakeEndpoint

    with FakeEndpoint(latency_scale=0.01) as ep:
        model = ChatModel("m", base_url=ep.base_url)
        ...
        ep.stats().calls            # what the server saw

Every answer and latency is a pure function of the request (:mod:`.fake_answers`), so each
output is known in advance.  Switches make it misbehave just as deterministically: 429 (or
503) above a number of requests in flight, with ``Retry-After`` in seconds, milliseconds or as
an HTTP date; a share of requests that fail with 500, hang (never answer) or answer invalid
JSON on their first attempts (counted per (model, content) at the server); 404 for unknown
models; 401 without the expected key; connections closed without a word after N answers
(as a server closing idle keep-alive connections does); and answers held back until N
requests have arrived (a barrier, so a test chooses an interleaving by step).

The server is an asyncio protocol with httptools' request parser (uvloop when installed);
latency is a timer per request (``loop.call_later``), never a sleeping coroutine, so it costs
little CPU beside the client it serves.  It binds 127.0.0.1 only, on a free port it reports
on its first line of output, and it stops by itself when its parent goes away (its standard
input reaches end of file, or the parent process id changes) and after ``max_lifetime``
seconds; :class:`FakeEndpoint` stops it on exit, even on failure.

Run it by hand with ``python -m cellfrontier.testing.fake_endpoint --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import json
import math
import os
import resource
import select
import ssl
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from cellfrontier.testing import fake_answers

__all__ = ["EndpointConfig", "EndpointStats", "FakeEndpoint", "main"]

HOST = "127.0.0.1"
STATS_PATH = "/_stats"
CHAT_PATH = "/v1/chat/completions"
API_KEY_ENV = "CELLFRONTIER_FAKE_ENDPOINT_KEY"
"""The key the endpoint requires (if set) travels in the environment, never on its command line."""


@dataclass(frozen=True)
class EndpointConfig:
    """The endpoint's behaviour; every field is also a command-line option (``--latency-scale``)."""

    latency_scale: float = 1.0
    """Multiplies every latency (25-75 ms at 1); 0 answers at once."""
    max_in_flight: int = 0
    """Answer ``overload_status`` to a request arriving while this many are in flight (0: no limit)."""
    max_in_flight_per_model: int = 0
    """The same limit per model (0: none)."""
    overload_status: int = 429
    retry_after: float = 0.05
    """The wait an overload answer asks for, in seconds."""
    retry_after_format: str = "ms"
    """``ms`` (``retry-after-ms``), ``seconds`` (``Retry-After``, whole seconds rounded up),
    ``date`` (``Retry-After`` as an HTTP date, rounded up to the second) or ``none``."""
    fail_share: float = 0.0
    """Share of requests (by :func:`fake_answers.switch_fraction`) answered 500 ..."""
    fail_attempts: int = 1
    """... on their first this-many attempts."""
    hang_share: float = 0.0
    """Share of requests never answered on their first ``hang_attempts`` attempts."""
    hang_attempts: int = 1
    invalid_json_share: float = 0.0
    """Share of JSON requests (with ``response_format``) whose first attempts get an invalid answer:
    odd attempts unparsable text, even ones parsable JSON that breaks the schema."""
    invalid_json_attempts: int = 1
    hold_until: int = 0
    """Hold every answer back until this many chat requests have arrived (0: no barrier)."""
    close_after: int = 0
    """Close a connection unanswered when a request comes after it answered this many (0: never)."""
    unknown_models: tuple[str, ...] = ()
    """Models answered 404."""
    max_lifetime: float = 600.0
    """Seconds after which the endpoint stops by itself."""

    def to_args(self) -> list[str]:
        args: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, tuple):
                for item in value:
                    args += [flag, str(item)]
            else:
                args += [flag, repr(value) if isinstance(value, float) else str(value)]
        return args


@dataclass(frozen=True)
class EndpointStats:
    """What the endpoint saw, from :meth:`FakeEndpoint.stats`."""

    calls: int
    """Chat requests received (every answer: 200, overload, errors, hangs)."""
    answered: int
    """Requests answered 200 (each reports usage)."""
    calls_by_request: dict[tuple[str, str], int]
    """Requests received per (model, key content)."""
    peak_in_flight: int
    peak_in_flight_by_model: dict[str, int]
    in_flight: int
    overloaded: int
    """Overload answers sent (429 or 503)."""
    early_retries: int
    """Requests that came back before the ``Retry-After`` the endpoint had given them."""
    server_errors: int
    hangs: int
    invalid_json: int
    request_errors: int
    """4xx other than overload (unknown model, bad key, malformed request)."""
    closed_without_answer: int
    prompt_tokens: int
    completion_tokens: int
    reasks: list[str]
    """The last message of each request that followed an assistant turn (a re-ask), the first 100."""
    cpu_seconds: float
    """The endpoint process's CPU time so far (user + system, every thread)."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointStats:
        values = dict(data)
        values["calls_by_request"] = {(m, c): n for m, c, n in data["calls_by_request"]}
        return cls(**values)


# -- the server (runs in the subprocess) ---------------------------------------------------------

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
_REASONS.update({500: "Internal Server Error", 503: "Service Unavailable"})


def _response(status: int, body: bytes, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n" % (
        status,
        _REASONS.get(status, "Error").encode(),
        len(body),
        extra,
    )
    return head + body


def _error(status: int, message: str, extra: bytes = b"") -> bytes:
    body = json.dumps({"error": {"message": message, "type": _REASONS.get(status, "error")}}).encode()
    return _response(status, body, extra)


class _Slot:
    """One request's place in its connection's answer queue (HTTP/1.1 answers go out in order)."""

    __slots__ = ("data", "model")

    def __init__(self, model: str | None) -> None:
        self.model = model  # set while the request counts as in flight
        self.data: bytes | None = None


class _Server:
    def __init__(self, config: EndpointConfig, api_key: str | None) -> None:
        self.config = config
        self.api_key = api_key
        self.loop = asyncio.get_running_loop()
        self.calls = 0
        self.answered = 0
        self.calls_by_request: dict[tuple[str, str], int] = {}
        self.accepted_by_request: dict[tuple[str, str], int] = {}
        self.retry_not_before: dict[tuple[str, str], float] = {}
        self.in_flight = 0
        self.in_flight_by_model: dict[str, int] = {}
        self.peak_in_flight = 0
        self.peak_in_flight_by_model: dict[str, int] = {}
        self.overloaded = self.early_retries = self.server_errors = self.hangs = 0
        self.invalid_json = self.request_errors = self.closed_without_answer = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.reasks: list[str] = []
        self.held: list[tuple[float, float, _Connection, _Slot, bytes]] | None = (
            [] if config.hold_until > 0 else None
        )
        self.overload_header = self._overload_header_maker()

    # -- routing

    def handle(self, conn: _Connection, method: bytes, url: bytes, body: bytes) -> None:
        path = url.split(b"?", 1)[0]
        if method == b"POST" and path == CHAT_PATH.encode():
            self.chat(conn, body)
        elif method == b"GET" and path == STATS_PATH.encode():
            conn.answer_now(_response(200, json.dumps(self.stats()).encode()))
        else:
            self.request_errors += 1
            conn.answer_now(_error(404, f"no route {method.decode()} {path.decode(errors='replace')}"))

    def chat(self, conn: _Connection, body: bytes) -> None:
        self.calls += 1
        config = self.config
        try:
            request = json.loads(body)
            model = request["model"]
            messages = request["messages"]
            if not isinstance(model, str) or not isinstance(messages, list) or not messages:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            self.request_errors += 1
            conn.answer_now(_error(400, "the body must be JSON with a model and a non-empty messages list"))
            return
        content = fake_answers.key_content(messages)
        key = (model, content)
        if len(self.reasks) < 100 and any(m.get("role") == "assistant" for m in messages):
            self.reasks.append(fake_answers.message_text(messages[-1]))
        self.calls_by_request[key] = self.calls_by_request.get(key, 0) + 1
        if self.api_key is not None and conn.authorization != f"Bearer {self.api_key}":
            self.request_errors += 1
            given = conn.authorization.removeprefix("Bearer ")
            conn.answer_now(
                _error(401, f"incorrect API key provided: {given!r}")
            )  # echoed, as some servers do
            return
        if model in config.unknown_models:
            self.request_errors += 1
            conn.answer_now(_error(404, f"the model {model!r} does not exist"))
            return
        now = self.loop.time()
        arrived = self._clock()
        not_before = self.retry_not_before.pop(key, None)
        if not_before is not None and arrived < not_before:
            self.early_retries += 1
        by_model = self.in_flight_by_model.get(model, 0)
        if (config.max_in_flight and self.in_flight >= config.max_in_flight) or (
            config.max_in_flight_per_model and by_model >= config.max_in_flight_per_model
        ):
            self.overloaded += 1
            header, not_before = self.overload_header(arrived)
            if not_before is not None:
                self.retry_not_before[key] = not_before
            conn.answer_now(
                _error(config.overload_status, "too many requests in flight; retry later", header)
            )
            self._release_held()
            return
        attempt = self.accepted_by_request.get(key, 0) + 1
        self.accepted_by_request[key] = attempt
        slot = conn.add_slot(model)
        self.in_flight += 1
        self.in_flight_by_model[model] = by_model + 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
        if by_model + 1 > self.peak_in_flight_by_model.get(model, 0):
            self.peak_in_flight_by_model[model] = by_model + 1
        band = ""
        if config.fail_share or config.hang_share or config.invalid_json_share:
            fraction = fake_answers.switch_fraction(model, content)
            band = fake_answers.switch_band(
                fraction, config.fail_share, config.hang_share, config.invalid_json_share
            )
        if band == "hang" and attempt <= config.hang_attempts:
            self.hangs += 1  # never answered; leaves the in-flight count when the client gives up
            self._release_held()
            return
        if band == "fail" and attempt <= config.fail_attempts:
            self.server_errors += 1
            payload = _error(500, "injected server error")
        else:
            invalid = band == "invalid" and attempt <= config.invalid_json_attempts
            payload = self.completion(
                model, content, messages, request.get("response_format"), attempt, invalid
            )
        delay = fake_answers.expected_latency(model, content, config.latency_scale)
        if self.held is not None:
            self.held.append((now, delay, conn, slot, payload))
            self._release_held()
        else:
            self.loop.call_later(delay, conn.fill, slot, payload)

    def completion(
        self, model: str, content: str, messages: list[Any], response_format: Any, attempt: int, invalid: bool
    ) -> bytes:
        if isinstance(response_format, dict) and response_format.get("type") in (
            "json_schema",
            "json_object",
        ):
            if invalid:
                self.invalid_json += 1
                answer = '{"answer": "unterminated' if attempt % 2 else "[]"
            else:
                schema = None
                if response_format["type"] == "json_schema":
                    schema = (response_format.get("json_schema") or {}).get("schema")
                answer = json.dumps(fake_answers.expected_json(model, content, schema))
        else:
            answer = fake_answers.expected_text(model, content)
        prompt = fake_answers.prompt_tokens(messages)
        completion = fake_answers.completion_tokens(answer)
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.answered += 1
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        return _response(200, json.dumps(body).encode())

    # -- overload answers

    def _overload_header_maker(self) -> Any:
        """The ``(header bytes, earliest honest retry)`` of an overload answer, per the format."""
        wait = self.config.retry_after
        form = self.config.retry_after_format

        def make(now: float) -> tuple[bytes, float | None]:
            if form == "ms":
                return b"retry-after-ms: %d\r\n" % math.ceil(wait * 1000), now + math.ceil(wait * 1000) / 1000
            if form == "seconds":
                return b"retry-after: %d\r\n" % math.ceil(wait), now + math.ceil(wait)
            if form == "date":
                at = math.ceil(time.time() + wait)
                return b"retry-after: %s\r\n" % email.utils.formatdate(at, usegmt=True).encode(), float(at)
            return b"", None

        return make

    def _clock(self) -> float:
        """The clock an earliest-retry instant is kept in: wall time for HTTP dates, else monotonic.

        Not the loop's time: uvloop's is cached once per turn of the loop, in milliseconds, so a
        retry that arrives on time could read as early by the staleness of that cache.
        """
        return time.time() if self.config.retry_after_format == "date" else time.monotonic()

    # -- in flight, the barrier, closing

    def finished(self, slot: _Slot) -> None:
        model = slot.model
        if model is not None:
            slot.model = None
            self.in_flight -= 1
            self.in_flight_by_model[model] -= 1

    def _release_held(self) -> None:
        if self.held is None or self.calls < self.config.hold_until:
            return
        held, self.held = self.held, None
        for arrived, delay, conn, slot, payload in held:
            self.loop.call_at(arrived + delay, conn.fill, slot, payload)

    def stats(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "calls": self.calls,
            "answered": self.answered,
            "calls_by_request": [[m, c, n] for (m, c), n in self.calls_by_request.items()],
            "peak_in_flight": self.peak_in_flight,
            "peak_in_flight_by_model": self.peak_in_flight_by_model,
            "in_flight": self.in_flight,
            "overloaded": self.overloaded,
            "early_retries": self.early_retries,
            "server_errors": self.server_errors,
            "hangs": self.hangs,
            "invalid_json": self.invalid_json,
            "request_errors": self.request_errors,
            "closed_without_answer": self.closed_without_answer,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasks": self.reasks,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
        }


class _Connection(asyncio.Protocol):
    """One client connection: parse requests with httptools, answer them in order."""

    def __init__(self, server: _Server) -> None:
        import httptools

        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.authorization = ""
        self.slots: deque[_Slot] = deque()
        self.answers = 0
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:  # malformed HTTP: nothing sensible to answer
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for slot in self.slots:
            self.server.finished(slot)
        self.slots.clear()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []
        self.authorization = ""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 13 and name.lower() == b"authorization":
            self.authorization = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        close_after = self.server.config.close_after
        if close_after and self.answers >= close_after:
            self.server.closed_without_answer += 1
            self.close()
            return
        self.server.handle(self, self.parser.get_method(), self.url, b"".join(self.body))

    # answering
    def add_slot(self, model: str | None) -> _Slot:
        slot = _Slot(model)
        self.slots.append(slot)
        return slot

    def answer_now(self, data: bytes) -> None:
        self.fill(self.add_slot(None), data)

    def fill(self, slot: _Slot, data: bytes) -> None:
        slot.data = data
        self.server.finished(slot)
        slots = self.slots
        transport = self.transport
        while slots and slots[0].data is not None:
            out = slots.popleft().data
            self.answers += 1
            if transport is not None:
                transport.write(out)  # type: ignore[arg-type]
        if not self.keep_alive and not slots:
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _serve(
    config: EndpointConfig, certfile: str | None, keyfile: str | None, watch_stdin: bool
) -> None:
    loop = asyncio.get_running_loop()
    server_state = _Server(config, os.environ.get(API_KEY_ENV) or None)
    context = None
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
    server = await loop.create_server(
        lambda: _Connection(server_state), HOST, 0, ssl=context, backlog=4096, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(json.dumps({"port": port}) + "\n")
    sys.stdout.flush()
    stop = loop.create_future()

    def stop_now(*_: Any) -> None:
        if not stop.done():
            stop.set_result(None)

    loop.call_later(config.max_lifetime, stop_now)
    parent = os.getppid()

    def watch_parent() -> None:
        if os.getppid() != parent:
            stop_now()
        else:
            loop.call_later(0.5, watch_parent)

    watch_parent()
    if watch_stdin:
        fd = sys.stdin.fileno()

        def stdin_ready() -> None:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                stop_now()

        loop.add_reader(fd, stdin_ready)
    try:
        await stop
    finally:
        if watch_stdin:
            loop.remove_reader(sys.stdin.fileno())
        server.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cellfrontier.testing.fake_endpoint",
        description="A fake OpenAI-compatible chat-completions endpoint on 127.0.0.1 (a free port, "
        "printed as JSON on the first line). Stops when its standard input closes, its parent "
        "exits, or after --max-lifetime seconds. The options are EndpointConfig's fields "
        "(see its docstring).",
    )
    for f in fields(EndpointConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "unknown_models":
            parser.add_argument(
                flag, action="append", default=[], metavar="MODEL", help="answer 404 (repeatable)"
            )
        else:
            parser.add_argument(flag, type=type(f.default), default=f.default, help=f"default {f.default!r}")
    parser.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--keyfile", help="the certificate's private key (PEM)")
    parser.add_argument(
        "--ignore-stdin", action="store_true", help="do not stop when standard input closes (running by hand)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = vars(_parser().parse_args(argv))
    certfile, keyfile, ignore_stdin = args.pop("certfile"), args.pop("keyfile"), args.pop("ignore_stdin")
    args["unknown_models"] = tuple(args["unknown_models"])
    config = EndpointConfig(**args)
    _raise_open_files_limit()
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    # A loop of its own rather than asyncio.Runner (Python 3.11+): the package supports 3.10.
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(config, certfile, keyfile, not ignore_stdin))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _raise_open_files_limit() -> None:
    """A thousand connections need a thousand descriptors: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the parent's handle ---------------------------------------------------------------------------


class FakeEndpoint:
    """Starts the endpoint in a subprocess and stops it on :meth:`close` / leaving ``with``.

    Keyword arguments are :class:`EndpointConfig`'s fields; *certfile*/*keyfile* serve HTTPS
    (then :attr:`base_url` is ``https://127.0.0.1:PORT/v1`` and :meth:`stats` trusts *certfile*);
    *api_key* makes the endpoint answer 401 to requests without ``Authorization: Bearer <key>``
    (echoing the key it got, as some servers do).
    """

    def __init__(
        self,
        *,
        certfile: str | None = None,
        keyfile: str | None = None,
        api_key: str | None = None,
        start_timeout: float = 60.0,
        **config: Any,
    ) -> None:
        self.config = EndpointConfig(**config)
        self.certfile, self.keyfile = certfile, keyfile
        self._api_key = api_key
        self.start_timeout = start_timeout
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self.start()

    def __repr__(self) -> str:
        return f"FakeEndpoint({self.base_url!r}, {self.config!r})"

    @property
    def base_url(self) -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://{HOST}:{self.port}/v1"

    def start(self) -> None:
        if self._process is not None:
            return
        command = [sys.executable, "-m", "cellfrontier.testing.fake_endpoint", *self.config.to_args()]
        if self.certfile:
            command += ["--certfile", self.certfile, "--keyfile", self.keyfile or self.certfile]
        env = dict(os.environ)
        env.pop(API_KEY_ENV, None)
        if self._api_key is not None:
            env[API_KEY_ENV] = self._api_key
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        try:
            self.port = self._read_port()
        except BaseException:
            self.close()
            raise

    def _read_port(self) -> int:
        process = self._process
        assert process is not None and process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], self.start_timeout)
        line = process.stdout.readline() if ready else b""
        if not line:
            code = process.poll() if ready else None
            if code is None:
                why = f"did not start within {self.start_timeout!r} s"
            else:
                why = f"exited with code {code} before it was ready (its error is on stderr above)"
            raise RuntimeError(
                f"FakeEndpoint() {why}; run `python -m cellfrontier.testing.fake_endpoint` to see why"
            )
        return int(json.loads(line)["port"])

    def stats(self) -> EndpointStats:
        """What the endpoint saw so far (one GET of its ``/_stats`` route)."""
        import http.client

        if self.certfile:
            context = ssl.create_default_context(cafile=self.certfile)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(HOST, self.port, context=context)
        else:
            conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            conn.request("GET", STATS_PATH)
            response = conn.getresponse()
            return EndpointStats.from_json(json.loads(response.read()))
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the endpoint (close its stdin; kill it if it has not exited within 5 s)."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> FakeEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


if __name__ == "__main__":
    main()
