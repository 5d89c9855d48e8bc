"""ChatModel: one model at one OpenAI-compatible endpoint, and the call path every column uses.

A :class:`ChatModel` holds configuration only; everything that belongs to a process or an
event loop is built on first use and never pickled:

- per process: the request head (request line, ``Host``, ``Authorization`` with the key read
  now, from the argument or the environment), the TLS context, and the adaptive limiter
  shared by every model object calling the same model at the same endpoint
  (:mod:`cellfrontier.llm.limiter`);
- per event loop: the keep-alive connection pool (:mod:`cellfrontier.llm.transport`),
  shared by models with the same origin in that loop.

So a ChatModel pickled to a Dask worker carries no connection, pool or limiter, and an API
key only if one was passed explicitly: a key read from the environment is read again, on the
worker.  The key never appears in ``repr``, errors (server messages are scrubbed of it),
usage or a column's identity.

One call (:meth:`ChatModel.call`): take a limiter slot, send the request, and then

- 200: parse the completion once (``json.loads``), count usage, return the text;
- 429 / 503: halve the limit (once per burst), wait what ``retry-after-ms`` / ``Retry-After``
  asks (else an exponential, jittered backoff) without holding a slot, and ask again, until
  ``rate_limit_timeout`` has passed (then :class:`RateLimitTimeoutError`); never a failure;
- another 4xx: :class:`ModelRequestError` at once, with the server's message;
- 5xx, no whole answer within ``timeout``, a broken connection: a retryable error
  (:class:`ModelServerError`, :class:`ModelTimeoutError`, :class:`ModelConnectionError`),
  for the job's ``retries`` to handle.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from cellfrontier.llm.columns import JsonColumn, ModelColumn, TextColumn
from cellfrontier.llm.errors import (
    ModelRequestError,
    ModelServerError,
    RateLimitTimeoutError,
    RetryableModelError,
)
from cellfrontier.llm.limiter import (
    TIMER_MARGIN,
    AdaptiveLimiter,
    backoff_delay,
    limiter_for,
    retry_after_seconds,
)
from cellfrontier.llm.transport import ConnectionPool, close_pool, parse_base_url, pool_for
from cellfrontier.llm.usage import Usage

__all__ = ["DEFAULT_API_KEY_ENV", "ChatModel"]

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
_OVERLOAD = (429, 503)


class ChatModel:
    """A chat model at an OpenAI-compatible endpoint; :meth:`text` and :meth:`json` make its columns.

    *api_key*: sent as ``Authorization: Bearer``; when None, read from the environment
    variable *api_key_env* in the process that makes the calls (none: no header, as local
    servers expect).  *max_concurrency*: the most calls this process keeps in flight for this
    model (the adaptive limit never exceeds it; a job on several processes divides it among
    them, see :meth:`share_caps`, so that it holds for the whole job); *initial_concurrency* starts lower;
    *latency_bound* (seconds) stops the limit growing while the mean latency is above it.
    *timeout*: seconds for one whole answer (a column may set its own);
    *rate_limit_timeout*: how long a call keeps waiting out 429/503 answers.  *verify*: TLS
    verification for https (True: the system's CAs; a path: that CA file; False: none).
    *headers*: extra request headers (not shown in ``repr``).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        max_concurrency: int = 64,
        initial_concurrency: int | None = None,
        latency_bound: float | None = None,
        timeout: float = 120.0,
        rate_limit_timeout: float = 600.0,
        verify: bool | str = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"ChatModel() needs a model name, got {model!r}")
        if not isinstance(base_url, str):
            raise TypeError(f"ChatModel() needs base_url as a str, got {type(base_url).__name__}")
        origin = parse_base_url(base_url)
        if "@" in base_url.split("//", 1)[-1].split("/", 1)[0]:
            raise ValueError(
                "ChatModel() refuses credentials in base_url; pass api_key (or set the environment variable)"
            )
        for name, value in (
            ("max_concurrency", max_concurrency),
            ("initial_concurrency", initial_concurrency),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"ChatModel() needs {name} as an int >= 1, got {value!r}")
        for name, seconds in (("timeout", timeout), ("rate_limit_timeout", rate_limit_timeout)):
            if not isinstance(seconds, (int, float)) or not seconds > 0 or not math.isfinite(seconds):
                raise ValueError(f"ChatModel() needs {name} as seconds > 0, got {seconds!r}")
        if api_key is not None and not isinstance(api_key, str):
            raise TypeError(f"ChatModel() needs api_key as a str or None, got {type(api_key).__name__}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.origin = origin
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.initial_concurrency = initial_concurrency
        self.latency_bound = latency_bound
        self.timeout = float(timeout)
        self.rate_limit_timeout = float(rate_limit_timeout)
        self.verify = verify
        self._api_key = api_key  # only an explicitly given key; never shown, pickled only if given
        self._headers = dict(headers or {})
        self._columns: list[ModelColumn] = []
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        """Forget everything that belongs to a process or a loop (built again on first use)."""
        self._head: bytes = b""
        self._secret: str | None = None
        self._ssl: ssl.SSLContext | None = None
        self._limiter: AdaptiveLimiter | None = None
        self._pool: ConnectionPool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None

    # -- column factories

    def text(
        self,
        template: str,
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> TextColumn:
        """A column whose value is the model's answer to *template* filled with the row (``{column}`` fields).

        *params* (``top_p``, ``seed``, ``stop``, ...) go into the request as they are.
        """
        return TextColumn(
            self, template, system=system, params=_params(temperature, max_tokens, params), timeout=timeout
        )

    def json(
        self,
        template: str,
        schema: Any,
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
        max_validation_retries: int = 2,
        response_format: str = "json_schema",
        **params: Any,
    ) -> JsonColumn:
        """A column whose value is the model's JSON answer, validated against *schema*.

        *schema*: a pydantic model class or a JSON-schema dict; the value is plain JSON data.
        *response_format*: ``json_schema`` sends the schema as ``response_format`` (servers
        with structured output: OpenAI, vLLM, SGLang, llama.cpp); ``json_object`` asks for
        JSON and gives the schema in a system message; ``none`` gives it in the system message
        only.  An answer that is not valid is asked again with the validation error, up to
        *max_validation_retries* times, then raises :class:`InvalidAnswerError`.
        """
        return JsonColumn(
            self,
            template,
            schema,
            system=system,
            params=_params(temperature, max_tokens, params),
            timeout=timeout,
            max_validation_retries=max_validation_retries,
            response_format=response_format,
        )

    # -- the call path

    async def call(self, body: bytes, usage: Usage, timeout: float) -> str:
        """Send one chat-completion request (*body*: its JSON) and return the answer's text.

        Counts into *usage*; see the module docstring for what each answer leads to.
        """
        loop = asyncio.get_running_loop()
        if self._pool_loop is not loop:
            self._bind(loop)
        limiter: AdaptiveLimiter = self._limiter  # type: ignore[assignment]
        pool: ConnectionPool = self._pool  # type: ignore[assignment]
        data = b"%s%d\r\n\r\n%s" % (self._head, len(body), body)
        deadline = 0.0
        waits = 0
        while True:
            if not limiter.try_acquire():
                await limiter.acquire()
            epoch = limiter.epoch
            started = loop.time()
            try:
                response = await pool.request(data, timeout)
            except BaseException as exc:
                limiter.release()
                if isinstance(exc, RetryableModelError):
                    usage.retryable_errors += 1
                raise
            status = response.status
            if status == 200:
                limiter.succeeded(loop.time() - started, epoch)
                return self._answer(response.body, usage)
            limiter.release()
            if status not in _OVERLOAD:
                raise self._refusal(status, response.body, usage)
            limiter.overloaded(epoch)
            usage.rate_limit_waits += 1
            waits += 1
            now = loop.time()
            if waits == 1:
                deadline = now + self.rate_limit_timeout
            delay = retry_after_seconds(response.headers)
            delay = backoff_delay(waits) if delay is None else delay + TIMER_MARGIN
            if now + delay > deadline:
                usage.retryable_errors += 1
                raise RateLimitTimeoutError(
                    f"model {self.model!r} at {self.base_url}: still asked to slow down ({status}) after "
                    f"{waits} waits; rate_limit_timeout is {self.rate_limit_timeout:g} s"
                )
            await asyncio.sleep(delay)
            if self._pool_loop is not loop:  # aclose() meanwhile: bind a new pool
                self._bind(loop)
            pool = self._pool  # type: ignore[assignment]

    def _answer(self, body: bytes, usage: Usage) -> str:
        try:
            data = json.loads(body)
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            usage.retryable_errors += 1
            raise ModelServerError(
                f"model {self.model!r} at {self.base_url}: a 200 answer without a chat completion: "
                f"{self._scrub(body[:200].decode('utf-8', 'replace'))!r}",
                200,
            ) from None
        usage.calls += 1
        counts = data.get("usage")
        if counts:
            usage.prompt_tokens += counts.get("prompt_tokens") or 0
            usage.completion_tokens += counts.get("completion_tokens") or 0
        return content if content is not None else ""

    def _refusal(self, status: int, body: bytes, usage: Usage) -> Exception:
        message = self._scrub(_server_message(body))
        where = f"model {self.model!r} at {self.base_url}"
        if 400 <= status < 500:
            usage.request_errors += 1
            return ModelRequestError(
                f"{where}: the endpoint refused the request ({status}): {message}", status, message
            )
        usage.retryable_errors += 1
        return ModelServerError(f"{where}: the endpoint failed ({status}): {message}", status)

    def _scrub(self, text: str) -> str:
        secret = self._secret
        return text.replace(secret, "***") if secret else text

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Build the process's head and limiter (once) and take this loop's pool."""
        if not self._head:
            self._head = self._build_head()
        if self.origin.scheme == "https" and self._ssl is None:
            self._ssl = _ssl_context(self.verify)
        self._pool = pool_for(self.origin, self._ssl, self.verify)
        self._pool_loop = loop
        self.limiter  # noqa: B018 - bind the process's limiter now, not in the first call's slot

    def _build_head(self) -> bytes:
        key = self._api_key if self._api_key is not None else os.environ.get(self.api_key_env) or None
        self._secret = key
        lines = [
            f"POST {self.origin.path}/chat/completions HTTP/1.1",
            f"Host: {self.origin.host_header}",
            "Content-Type: application/json",
            "Accept: application/json",
            "User-Agent: cellfrontier",
        ]
        if key:
            lines.append(f"Authorization: Bearer {key}")
        lines += [f"{name}: {value}" for name, value in self._headers.items()]
        return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    # -- hooks for a runner

    @property
    def limiter(self) -> AdaptiveLimiter:
        """The process's adaptive limiter for this model at this endpoint (shared)."""
        if self._limiter is None:
            self._limiter = limiter_for(
                self.base_url, self.model, self.max_concurrency, self.initial_concurrency, self.latency_bound
            )
        return self._limiter

    @property
    def usage(self) -> Usage:
        """The sum of this model's columns' usage in this process."""
        return Usage.total(column.usage for column in self._columns)

    @property
    def columns(self) -> tuple[ModelColumn, ...]:
        return tuple(self._columns)

    def share_caps(self, share: Callable[[int], int] | None) -> None:
        """Keep at most ``share(max_concurrency)`` calls in flight in this process (None: all of it).

        A job running on several processes calls it (through the columns) with its process's
        part of the cap, so that ``max_concurrency`` holds for the whole job.
        """
        self.limiter.set_share(share)

    def register(self, column: ModelColumn) -> None:
        """Count *column*'s usage in :attr:`usage` (columns call it when made or unpickled)."""
        self._columns.append(column)

    async def aclose(self) -> None:
        """Close the running loop's connections to this model's endpoint (shared with same-origin models).

        Calls made afterwards open new connections.
        """
        close_pool(self.origin, self.verify)
        self._pool = None
        self._pool_loop = None

    # -- pickling and display

    def __getstate__(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "api_key": self._api_key,  # None unless given explicitly: an environment key stays behind
            "api_key_env": self.api_key_env,
            "max_concurrency": self.max_concurrency,
            "initial_concurrency": self.initial_concurrency,
            "latency_bound": self.latency_bound,
            "timeout": self.timeout,
            "rate_limit_timeout": self.rate_limit_timeout,
            "verify": self.verify,
            "headers": self._headers,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state.pop("model"), **state)  # type: ignore[misc]

    def __repr__(self) -> str:
        return (
            f"ChatModel({self.model!r}, base_url={self.base_url!r}, max_concurrency={self.max_concurrency})"
        )


def _params(temperature: float | None, max_tokens: int | None, params: Mapping[str, Any]) -> dict[str, Any]:
    chosen = {"temperature": temperature, "max_tokens": max_tokens, **params}
    for name in ("model", "messages", "response_format", "stream"):
        if name in chosen:
            raise ValueError(f"text()/json() set {name!r} themselves; remove it from the parameters")
    return {name: value for name, value in chosen.items() if value is not None}


def _server_message(body: bytes) -> str:
    """The server's words in an error answer: OpenAI's ``error.message``, FastAPI's ``detail``, or text."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:500] or "(no message)"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        for key in ("error", "detail", "message"):
            if isinstance(data.get(key), str):
                return str(data[key])[:500]
    return text.strip()[:500]


_SSL_CONTEXTS: dict[Any, ssl.SSLContext] = {}


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """One TLS context per setting and process (building one costs milliseconds)."""
    context = _SSL_CONTEXTS.get(verify)
    if context is None:
        if verify is False:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif verify is True:
            context = ssl.create_default_context()
        else:
            context = ssl.create_default_context(cafile=os.fspath(verify))
        _SSL_CONTEXTS[verify] = context
    return context
