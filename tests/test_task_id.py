"""The vendored SHA-1 and the stable task ids, checked against :mod:`hashlib` (no DataDesigner).

``integrations/_sha1.h`` is crypto code copied into the project, so it is tested as such:
known answers from ``hashlib.sha1`` for every message length from 0 to 300 bytes (every
padding case: lengths around the 55/56 and 64-byte block boundaries, one and two final
blocks, several full blocks) with several byte patterns, and random messages up to 4 KiB.
The stable ids are compared with ids computed from ``hashlib`` in full, every character.
"""

from __future__ import annotations

import hashlib
import random

from hypothesis import given
from hypothesis import strategies as st

from cellfrontier.integrations._task_id import sha1, stable_task_id


def _patterns(length: int, rng: random.Random) -> list[bytes]:
    return [
        bytes(length),
        b"\xff" * length,
        bytes(i & 0xFF for i in range(length)),
        rng.randbytes(length),
    ]


def test_sha1_equals_hashlib_for_every_length_from_0_to_300_bytes() -> None:
    rng = random.Random(20240601)
    for length in range(301):
        for data in _patterns(length, rng):
            assert sha1(data) == hashlib.sha1(data).digest(), (length, data[:16])


def test_sha1_equals_hashlib_for_random_messages_up_to_4_kib() -> None:
    rng = random.Random(4096)
    lengths = [4096, 4095, 4033, 4032, 4031, *(rng.randrange(4097) for _ in range(400))]
    for length in lengths:
        data = rng.randbytes(length)
        assert sha1(data) == hashlib.sha1(data).digest(), length


def test_sha1_takes_any_bytes_like_message() -> None:
    data = b"cellfrontier" * 11
    expected = hashlib.sha1(data).digest()
    assert sha1(bytearray(data)) == sha1(memoryview(data)) == sha1(data) == expected
    assert len(sha1(b"")) == 20


def _hashlib_id(column: str, row_group: object, row_index: object, task_type: str) -> str:
    message = f"{column}\0{row_group}\0{row_index}\0{task_type}".encode()
    return "task-" + hashlib.sha1(message).hexdigest()[:16]


@given(
    column=st.text(max_size=300),
    row_group=st.one_of(st.integers(), st.integers(-(2**200), 2**200)),
    row_index=st.one_of(st.none(), st.integers(), st.integers(0, 2**100)),
    task_type=st.one_of(st.sampled_from(["cell", "batch", "from_scratch"]), st.text(max_size=40)),
)
def test_stable_ids_equal_hashlib_ids_in_full(
    column: str, row_group: int, row_index: int | None, task_type: str
) -> None:
    assert stable_task_id(column, row_group, row_index, task_type) == _hashlib_id(
        column, row_group, row_index, task_type
    )


def test_stable_ids_of_long_fields_and_other_value_types_equal_hashlib_ids() -> None:
    """Messages past the id's 256-byte stack buffer, numbers of other types, str subclasses."""

    class Name(str):
        pass

    cases = [
        ("c" * 1000, 3, 7, "cell"),
        ("é" * 200, -(2**63), 2**64, "from_scratch"),
        (Name("topic"), 1, None, "batch"),
        ("a", 2.5, 3.0, "cell"),
        ("a", True, False, "cell"),
    ]
    for column, row_group, row_index, task_type in cases:
        assert stable_task_id(column, row_group, row_index, task_type) == _hashlib_id(
            column, row_group, row_index, task_type
        )
