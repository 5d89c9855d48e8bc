"""Errors of model calls: which ones a job retries and which ones are the request's own fault.

Every error is a :class:`cellfrontier.CellFrontierError` and the built-in a caller would
catch.  ``retryable`` says what a runner should do with it:

- retryable (``True``): the server failed (5xx), did not answer in time, or the connection
  broke; the same request may well succeed later, so the job's ``retries`` apply;
- not retryable (``False``): the request itself was refused (a 4xx other than 429: an unknown
  model, a bad key, a malformed request), or a template does not fit its column; asking
  again cannot help, so it fails at once with the server's own words.

Rate limiting (429/503) is neither: a model column waits and asks again by itself, and raises
:class:`RateLimitTimeoutError` (retryable) only when ``rate_limit_timeout`` has passed.
No message ever contains an API key: server messages are scrubbed before they are raised.
"""

from __future__ import annotations

from cellfrontier.errors import CellFrontierError

__all__ = [
    "InvalidAnswerError",
    "ModelCallError",
    "ModelConnectionError",
    "ModelRequestError",
    "ModelServerError",
    "ModelTimeoutError",
    "RateLimitTimeoutError",
    "RetryableModelError",
    "TemplateError",
    "TemplateFieldError",
]


class ModelCallError(CellFrontierError):
    """Base class of the errors of model calls."""

    retryable: bool = False


class RetryableModelError(ModelCallError):
    """A call that failed for a reason outside the request; asking again may succeed."""

    retryable = True


class ModelServerError(RetryableModelError, RuntimeError):
    """The server answered with a 5xx status (other than 503, which means "slow down")."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ModelTimeoutError(RetryableModelError, TimeoutError):
    """No whole answer within the call's timeout (the connection is closed, never reused)."""


class ModelConnectionError(RetryableModelError, ConnectionError):
    """The connection could not be opened, or broke before the answer was complete."""


class RateLimitTimeoutError(RetryableModelError, TimeoutError):
    """The server kept asking to slow down for longer than ``rate_limit_timeout``."""


class ModelRequestError(ModelCallError, ValueError):
    """The server refused the request itself (a 4xx other than 429): it would fail again.

    ``status`` is the HTTP status, ``server_message`` the server's own explanation.
    """

    def __init__(self, message: str, status: int, server_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message


class InvalidAnswerError(ModelCallError, ValueError):
    """A structured answer that stayed invalid after ``max_validation_retries`` re-asks."""

    retryable = True


class TemplateError(ModelCallError, ValueError):
    """A prompt template that cannot be compiled (an unclosed brace, a format spec, ...)."""


class TemplateFieldError(ModelCallError, KeyError, ValueError):
    """A template names a field that is not an upstream column of its column."""
