"""A set of row-group ids kept as sorted disjoint ranges: which groups a shard's counts include.

A shard's checkpoint counts the rows of the groups it has released (their files written) and
of those it found written when it resumed; its header names those groups as ``[start, stop)``
pairs so that a reader of the directory can tell which written files came after the save.
Groups finish almost in order, so the ranges stay few (about one per group finished out of
order); adding a group costs a binary search and at most one merge.
"""

from __future__ import annotations

import bisect

__all__ = ["GroupRanges"]


class GroupRanges:
    """Row-group ids as sorted, disjoint, non-adjacent ``[start, stop)`` ranges."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.stops: list[int] = []

    def add(self, rg: int) -> None:
        starts, stops = self.starts, self.stops
        i = bisect.bisect_right(starts, rg)  # ranges[:i] start at or before rg
        if i and stops[i - 1] > rg:
            return  # already in
        joins_left = bool(i) and stops[i - 1] == rg
        joins_right = i < len(starts) and starts[i] == rg + 1
        if joins_left and joins_right:
            stops[i - 1] = stops.pop(i)
            del starts[i]
        elif joins_left:
            stops[i - 1] = rg + 1
        elif joins_right:
            starts[i] = rg
        else:
            starts.insert(i, rg)
            stops.insert(i, rg + 1)

    def __len__(self) -> int:
        """The number of ranges (not of groups)."""
        return len(self.starts)

    def pairs(self) -> list[list[int]]:
        """The ranges as ``[start, stop]`` pairs, ascending (JSON-ready)."""
        return [[a, b] for a, b in zip(self.starts, self.stops, strict=True)]
