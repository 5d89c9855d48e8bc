"""Argument checks shared by every module: integers, counts, rows, row arrays, row-group sizes.

One rule for what counts as an integer argument (a Python or numpy integer, never a bool,
never a float) and one wording for the errors, so that every call of the library refuses the
same values with the same message.  The compiled core takes its fast path for a plain ``int``
itself and calls these only for anything else, so the checks cost nothing per event.

Messages name the method with ``()`` and the offending value with ``!r``, as every error of
the library does (see :mod:`cellfrontier.errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from cellfrontier.errors import (
    CountTypeError,
    IndexTypeError,
    InvalidArgumentError,
    RowIndexError,
)

__all__ = [
    "MAX_ROWS",
    "as_count",
    "as_integer",
    "as_row",
    "check_group_size",
    "describe_names",
    "describe_plan",
    "is_integer",
    "row_array",
]

MAX_ROWS = 2**31
"""Row groups hold fewer rows than this: the core's per-column counters are 32-bit.

The compiled core states the same limit in C (``CF_MAX_ROWS`` in ``_bits.pxd``) and refuses
to import if the two differ."""


def is_integer(value: Any) -> bool:
    """Whether *value* is an integer argument: ``int`` or a numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def as_integer(value: Any, what: str, method: str, error: type[IndexTypeError] = IndexTypeError) -> int:
    """*value* as a Python int, or *error* naming *what* *method* needed."""
    if not is_integer(value):
        raise error(f"{method}() needs an integer {what}, got {type(value).__name__} {value!r}")
    return int(value)


def as_count(value: Any, what: str, method: str, minimum: int = 0, maximum: int | None = None) -> int:
    """A count or size: an integer with ``minimum <= value`` (and ``value < maximum``).

    A non-integer raises :class:`CountTypeError`, which is also a ``ValueError``.
    """
    number = as_integer(value, what, method, CountTypeError)
    if number < minimum:
        raise InvalidArgumentError(f"{method}() needs {what} >= {minimum}, got {value!r}")
    if maximum is not None and number >= maximum:
        raise InvalidArgumentError(f"{method}() needs {what} < {_power_of_two(maximum)}, got {value!r}")
    return number


def check_group_size(size: Any, method: str, what: str = "row_group_size", minimum: int = 0) -> int:
    """*size* as an int in ``minimum <= size < MAX_ROWS``: the one check of every row-group size.

    Plan constructors call it for every size they are given, and the core for every size it
    reads from a plan it did not build.
    """
    return as_count(size, what, method, minimum, MAX_ROWS)


def as_row(value: Any, size: int, method: str, where: str = "") -> int:
    """A row index in ``0 <= row < size``; *where* describes the group for the message."""
    row = as_integer(value, "row index", method)
    if not 0 <= row < size:
        place = where or f"a row group of size {size}"
        raise RowIndexError(f"{method}() got row index {value!r} outside {place}")
    return row


def row_array(rows: Any, size: int, row_group: Any, method: str) -> npt.NDArray[np.int64]:
    """Validate a bulk row array: 1-D, integer dtype, every value in ``0 <= row < size``."""
    if isinstance(rows, np.ma.MaskedArray):  # its mask would be silently ignored
        raise IndexTypeError(f"{method}() needs a plain array of row indices, not a masked array")
    try:
        arr = np.asarray(rows)
    except (TypeError, ValueError) as exc:  # a ragged nested list, say
        raise IndexTypeError(f"{method}() needs a 1-D array of row indices: {exc}") from None
    if arr.ndim != 1:
        raise IndexTypeError(f"{method}() needs a 1-D array of row indices, got {arr.ndim}-D")
    if arr.size == 0 and not isinstance(rows, np.ndarray):
        return np.zeros(0, dtype=np.int64)  # an empty list or tuple has no dtype to check
    if arr.dtype.kind not in "iu":
        raise IndexTypeError(f"{method}() needs integer row indices, got dtype {arr.dtype}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo = arr.min()
    hi = arr.max()
    if lo < 0 or hi >= size:
        bad = lo if lo < 0 else hi
        raise RowIndexError(
            f"{method}() got row index {int(bad)!r} outside row group {row_group!r} "
            f"of size {size} (expected 0 <= row_index < {size})"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)


def describe_names(names: Sequence[str]) -> str:
    """A short list of valid column names for an error message."""
    if not names:
        return "no columns"
    shown = ", ".join(repr(n) for n in names[:8])
    return shown + (f", ... ({len(names)} columns)" if len(names) > 8 else "")


def describe_plan(plan: Any) -> str:
    """A short description of a plan's row groups for an error message."""
    describe = getattr(plan, "describe", None)
    if describe is not None:
        return str(describe())
    return type(plan).__name__


def _power_of_two(value: int) -> str:
    """``2**31`` rather than ``2147483648`` in a message, where the bound is a power of two."""
    if value > 1024 and value & (value - 1) == 0:
        return f"2**{value.bit_length() - 1}"
    return str(value)
