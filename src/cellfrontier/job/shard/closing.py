"""Closing what a shard's generators hold on its event loop, when the shard's work is done.

A generator object with an async ``aclose_loop()`` method has it awaited once at the end of
each shard, on the shard's loop, whether the shard finished or stopped (a model column closes
its connections there: they belong to the loop).  It must leave the generator usable: the
next shard (on the same loop or another) uses it again.  A hook of its own name rather than
``aclose()``, which many objects have with the meaning "closed for good".  A failing
``aclose_loop()`` is logged, never raised: the shard's outcome is already decided.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence

from cellfrontier.job.columns import ColumnSpec

__all__ = ["close_generators"]

logger = logging.getLogger("cellfrontier.job")


async def close_generators(columns: Sequence[ColumnSpec]) -> None:
    """Await ``aclose_loop()`` of every distinct generator of *columns* that has an async one."""
    seen: set[int] = set()
    for column in columns:
        aclose = getattr(column.fn, "aclose_loop", None)
        if id(column.fn) in seen or not inspect.iscoroutinefunction(aclose):
            continue
        seen.add(id(column.fn))
        try:
            await aclose()
        except Exception:
            logger.warning("aclose_loop() of the generator of %r failed", column.name, exc_info=True)
