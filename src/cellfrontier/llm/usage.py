"""Usage counters of model calls: plain integers, so they add up, export and restore exactly.

Each model column keeps one :class:`Usage`; a :class:`~cellfrontier.llm.ChatModel` reports the
sum of its columns.  A job will save them in its checkpoints (:meth:`Usage.as_dict`) and add
a resumed run's counts to the saved ones (:meth:`Usage.add`), so its totals stay whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["USAGE_FIELDS", "Usage"]

USAGE_FIELDS = (
    "calls",
    "prompt_tokens",
    "completion_tokens",
    "rate_limit_waits",
    "retryable_errors",
    "request_errors",
    "invalid_answers",
)
"""``calls``: answers received (status 200, each billed); tokens as the server reported them;
``rate_limit_waits``: 429/503 answers waited out; ``retryable_errors``: 5xx, timeouts and broken
connections raised; ``request_errors``: other 4xx raised; ``invalid_answers``: structured
answers that failed validation (each one re-asked or, at the last attempt, raised)."""


class Usage:
    """Counters of one column (or the sum of several); see :data:`USAGE_FIELDS`."""

    __slots__ = USAGE_FIELDS

    calls: int
    prompt_tokens: int
    completion_tokens: int
    rate_limit_waits: int
    retryable_errors: int
    request_errors: int
    invalid_answers: int

    def __init__(self, **counts: int) -> None:
        for name in USAGE_FIELDS:
            setattr(self, name, 0)
        if counts:
            self.add(counts)

    @classmethod
    def from_dict(cls, data: Mapping[str, int]) -> Usage:
        """Counters from :meth:`as_dict`'s output (a checkpoint); missing names count 0."""
        return cls(**data)

    @classmethod
    def total(cls, parts: Iterable[Usage]) -> Usage:
        result = cls()
        for part in parts:
            result.add(part)
        return result

    def as_dict(self) -> dict[str, int]:
        """Every counter as a plain int, in :data:`USAGE_FIELDS` order."""
        return {name: getattr(self, name) for name in USAGE_FIELDS}

    def add(self, other: Usage | Mapping[str, int]) -> None:
        """Add *other*'s counts to these (in place): a restored checkpoint, another shard."""
        values = other.as_dict() if isinstance(other, Usage) else other
        for name, value in values.items():
            if name not in USAGE_FIELDS:
                raise ValueError(
                    f"Usage.add() got the unknown counter {name!r}; known: {', '.join(USAGE_FIELDS)}"
                )
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Usage.add() needs counts that are ints >= 0, got {name}={value!r}")
            setattr(self, name, getattr(self, name) + value)

    def copy(self) -> Usage:
        return Usage(**self.as_dict())

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        result = self.copy()
        result.add(other)
        return result

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Usage) and other.as_dict() == self.as_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable counters

    def __reduce__(self) -> tuple[Any, ...]:
        return (Usage.from_dict, (self.as_dict(),))

    def __repr__(self) -> str:
        return "Usage(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"
