"""A row group's file: written once per job version, replaced only by a newer one, never by a stale one."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellfrontier.job.output import OutputLayout
from cellfrontier.job.store import group_files
from cellfrontier.job.store.group_files import GroupStamp, read_group_stamp, write_group_file

pytest.importorskip("pyarrow")


def stamp(generation: int, rows: int = 3) -> GroupStamp:
    return GroupStamp(2, generation, 3, rows, {"x": (f"fp{generation}", ("x",))}, {})


def data(value: int) -> dict[str, list[int]]:
    return {"_row": [2000, 2001, 2002], "x": [value] * 3}


def values(layout: OutputLayout) -> list[int]:
    import pyarrow.parquet as pq

    return pq.read_table(layout.part_path(2)).column("x").to_pylist()


def test_newer_versions_replace_older_files_and_nothing_else_replaces_anything(tmp_path: Path) -> None:
    layout = OutputLayout(tmp_path)
    layout.create()
    assert write_group_file(layout, stamp(2), ["x"], data(2), tag="g000002e000001", previous=None) == 3
    # Another attempt of the same version: the first write wins.
    write_group_file(layout, stamp(2), ["x"], data(99), tag="g000002e000002", previous=None)
    assert values(layout) == [2, 2, 2]
    # Stale attempts of an older version, started without a file or from an even older one.
    write_group_file(layout, stamp(1), ["x"], data(1), tag="g000001e000009", previous=None)
    write_group_file(layout, stamp(1), ["x"], data(1), tag="g000001e000009", previous=0)
    assert values(layout) == [2, 2, 2]
    write_group_file(layout, stamp(3), ["x"], data(3), tag="g000003e000001", previous=2)  # a newer version
    assert values(layout) == [3, 3, 3]
    found = read_group_stamp(layout.part_path(2))
    assert found is not None and found.generation == 3 and found.columns == {"x": ("fp3", ("x",))}
    assert sorted(p.name for p in layout.data_dir.iterdir()) == ["part-00000002.parquet"]  # no leftovers


def test_the_fence_is_checked_after_the_new_file_is_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newer version's file landing between the write and the rename is not overwritten."""
    layout = OutputLayout(tmp_path)
    layout.create()
    write_group_file(layout, stamp(1), ["x"], data(1), tag="g000001e000001", previous=None)
    real = group_files.stamp_still_older
    asked: list[int] = []

    def newer_lands_first(path: Path, generation: int) -> bool:
        asked.append(generation)
        if generation == 2:  # version 3 replaces the file while version 2's write is under way
            write_group_file(layout, stamp(3), ["x"], data(3), tag="g000003e000001", previous=1)
        return real(path, generation)

    monkeypatch.setattr(group_files, "stamp_still_older", newer_lands_first)
    write_group_file(layout, stamp(2), ["x"], data(2), tag="g000002e000001", previous=1)
    assert asked == [2, 3] and values(layout) == [3, 3, 3]
    assert sorted(p.name for p in layout.data_dir.iterdir()) == ["part-00000002.parquet"]
