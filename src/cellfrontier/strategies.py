"""Generation strategies and their coercion from other enums and strings."""

from __future__ import annotations

import enum

from cellfrontier.errors import InvalidArgumentError

__all__ = ["GenerationStrategy", "coerce_strategy"]


class GenerationStrategy(str, enum.Enum):
    """How a column's generator produces its values.

    ``CELL_BY_CELL`` generators produce one cell per task; ``FULL_COLUMN`` generators need the
    whole row group at once and produce it in one task (a barrier).
    """

    CELL_BY_CELL = "cell_by_cell"
    FULL_COLUMN = "full_column"

    def __str__(self) -> str:
        return self.value


def coerce_strategy(value: object, method: str = "coerce_strategy") -> GenerationStrategy:
    """Return the :class:`GenerationStrategy` equal to *value*.

    Any object whose value (or own string form) is ``"cell_by_cell"`` or ``"full_column"`` is
    accepted, so another library's own strategy enum can be passed unchanged.  Anything else
    raises :class:`~cellfrontier.errors.InvalidArgumentError` (a ``ValueError`` and a
    ``TypeError``) naming *method*, the call the caller actually made.
    """
    if isinstance(value, GenerationStrategy):
        return value
    raw = getattr(value, "value", value)
    if isinstance(raw, str):
        try:
            return GenerationStrategy(raw.lower())
        except ValueError:
            pass
    choices = ", ".join(repr(s.value) for s in GenerationStrategy)
    raise InvalidArgumentError(
        f"{method}() got unknown generation strategy {value!r}; expected one of {choices}"
    )
