"""Row-group plans: which row groups a job has and how many rows each holds.

A plan answers ``has_row_group(id)`` and ``row_group_size(id)`` and iterates ``(id, size)``
pairs.  :meth:`RowGroupPlan.uniform` describes ``num_records`` rows in groups of
``buffer_size`` (the last one shorter) in O(1) memory, so a job of a million row groups costs
nothing until a group is touched; :meth:`RowGroupPlan.explicit` takes arbitrary pairs (ids
need not be contiguous: a resumed run has holes).  Any other object with the same three
methods (another library's plan, say) is accepted by the tracker as it is.

Bad arguments raise errors of :mod:`cellfrontier.errors` that are also the built-ins these
calls raised before (``TypeError`` for non-integers, ``ValueError`` for bad values,
``KeyError`` for an unknown group), so existing handlers keep working.  Every size goes
through the one size check (:func:`cellfrontier._validate.check_group_size`): a row group holds
fewer than ``MAX_ROWS`` (2**31) rows, since the core's per-column counters are 32-bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

from cellfrontier._validate import as_count, as_integer, check_group_size, is_integer
from cellfrontier.errors import (
    IndexTypeError,
    InvalidArgumentError,
    UnknownRowGroupError,
)

__all__ = ["RowGroupPlan", "RowGroupPlanLike", "as_row_group_plan"]


@runtime_checkable
class RowGroupPlanLike(Protocol):
    """What the tracker needs from a plan."""

    def has_row_group(self, row_group: int) -> bool: ...

    def row_group_size(self, row_group: int) -> int: ...

    def __iter__(self) -> Iterator[tuple[int, int]]: ...


# Row-group ids must fit the core's 64-bit keys with room to spare.
_MIN_ID = -(2**62)


class RowGroupPlan:
    """An immutable row-group plan (uniform or explicit)."""

    __slots__ = ("_buffer_size", "_num_groups", "_num_records", "_sizes")
    _buffer_size: int
    _num_groups: int
    _num_records: int
    _sizes: dict[int, int] | None

    def __init__(self) -> None:
        # Both shapes share one class, so the two constructors are the only way in.
        raise InvalidArgumentError(
            "RowGroupPlan() cannot be called directly; use RowGroupPlan.uniform() or .explicit()"
        )

    @classmethod
    def uniform(cls, num_records: int, buffer_size: int) -> RowGroupPlan:
        """Groups ``0 .. ceil(num_records / buffer_size) - 1`` of *buffer_size* rows, the last shorter."""
        num_records = as_count(num_records, "num_records", "uniform", 0)
        buffer_size = check_group_size(buffer_size, "uniform", "buffer_size", 1)
        plan = object.__new__(cls)
        plan._num_records = num_records
        plan._buffer_size = buffer_size
        plan._num_groups = -(-plan._num_records // plan._buffer_size)
        plan._sizes = None
        return plan

    @classmethod
    def explicit(cls, pairs: Iterable[tuple[int, int]]) -> RowGroupPlan:
        """Groups given as ``(id, size)`` pairs; ids must be distinct, sizes non-negative."""
        sizes: dict[int, int] = {}
        for pair in pairs:
            try:
                raw_id, raw_size = pair
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"explicit() needs (id, size) pairs, got {pair!r}") from None
            rg = as_integer(raw_id, "row group id", "explicit")
            if rg < _MIN_ID:
                raise InvalidArgumentError(f"explicit() needs row group id >= {_MIN_ID}, got {raw_id!r}")
            size = check_group_size(raw_size, "explicit", f"size of row group {rg}")
            if rg in sizes:
                raise InvalidArgumentError(f"explicit() got duplicate row group id {rg!r}")
            sizes[rg] = size
        plan = object.__new__(cls)
        plan._sizes = sizes
        plan._num_records = sum(sizes.values())
        plan._buffer_size = max(sizes.values(), default=0)
        plan._num_groups = len(sizes)
        return plan

    @property
    def is_uniform(self) -> bool:
        return self._sizes is None

    @property
    def num_records(self) -> int:
        """Rows in all groups together."""
        return self._num_records

    @property
    def buffer_size(self) -> int:
        """The largest group size (the buffer size of a uniform plan)."""
        return self._buffer_size

    def has_row_group(self, row_group: int) -> bool:
        """Whether *row_group* is in the plan (never, for a non-integer such as ``True`` or ``1.0``)."""
        if type(row_group) is not int and not is_integer(row_group):
            return False
        if self._sizes is not None:
            return row_group in self._sizes
        return 0 <= row_group < self._num_groups

    def row_group_size(self, row_group: int) -> int:
        """Rows in *row_group*; :class:`UnknownRowGroupError` (a ``KeyError``) if there is none."""
        if type(row_group) is not int and not is_integer(row_group):
            raise IndexTypeError(
                f"row_group_size() needs an integer row group, got {type(row_group).__name__} {row_group!r}"
            )
        if not self.has_row_group(row_group):
            raise UnknownRowGroupError(f"row_group_size() got unknown row group {row_group!r}")
        if self._sizes is not None:
            return self._sizes[row_group]
        if row_group == self._num_groups - 1:
            return self._num_records - row_group * self._buffer_size
        return self._buffer_size

    def describe(self) -> str:
        """The plan's row-group ids in a few words, for error messages."""
        if self._sizes is None:
            return f"ids 0 .. {self._num_groups - 1}" if self._num_groups else "no row groups"
        ids = sorted(self._sizes)
        if not ids:
            return "no row groups"
        shown = ", ".join(str(rg) for rg in ids[:8])
        return f"ids {shown}" + (f", ... ({len(ids)} groups)" if len(ids) > 8 else "")

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self._sizes is not None:
            yield from self._sizes.items()
            return
        for rg in range(self._num_groups):
            yield rg, self.row_group_size(rg)

    def __len__(self) -> int:
        return self._num_groups

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RowGroupPlan):
            return NotImplemented
        if self.is_uniform and other.is_uniform:
            return (self._num_records, self._buffer_size) == (other._num_records, other._buffer_size)
        return dict(self) == dict(other)

    def __hash__(self) -> int:
        return hash(tuple(self)) if not self.is_uniform else hash((self._num_records, self._buffer_size))

    def __repr__(self) -> str:
        if self._sizes is None:
            return f"RowGroupPlan.uniform(num_records={self._num_records}, buffer_size={self._buffer_size})"
        return f"RowGroupPlan.explicit({list(self._sizes.items())!r})"

    def to_dict(self) -> dict[str, Any]:
        """A plain description (for checkpoints)."""
        if self._sizes is None:
            return {"kind": "uniform", "num_records": self._num_records, "buffer_size": self._buffer_size}
        return {"kind": "explicit", "pairs": [[rg, size] for rg, size in self._sizes.items()]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RowGroupPlan:
        if data.get("kind") == "uniform":
            return cls.uniform(data["num_records"], data["buffer_size"])
        return cls.explicit((rg, size) for rg, size in data["pairs"])


def as_row_group_plan(row_groups: Any) -> Any:
    """Accept a plan object as it is, or turn an iterable of ``(id, size)`` pairs into one."""
    if isinstance(row_groups, RowGroupPlan):
        return row_groups
    if all(hasattr(row_groups, m) for m in ("has_row_group", "row_group_size", "__iter__")):
        return row_groups
    return RowGroupPlan.explicit(row_groups)
