"""Column fingerprints: what changes them and what does not; ``generator()`` and ``blocking()`` together."""

from __future__ import annotations

import functools
import types
from typing import Any

import pytest

from cellfrontier import ExecutionGraph, GeneratorMappingError, blocking, generator
from cellfrontier.job.columns import ColumnKind, resolve_columns
from cellfrontier.job.fingerprint import ColumnPrintInput, code_digest, column_fingerprints, generator_print


def make(source: str, name: str = "gen", namespace: dict[str, Any] | None = None) -> Any:
    """A function defined by *source* in a fresh module namespace (same module and qualname each time)."""
    scope: dict[str, Any] = {"__name__": "user_module", **(namespace or {})}
    exec(compile(source, "<user_module>", "exec"), scope)
    return scope[name]


def test_the_same_code_prints_the_same_and_an_edit_does_not() -> None:
    a = make("def gen(row):\n    return row['x'] + 1\n")
    b = make("def gen(row):\n    return row['x'] + 1\n")
    c = make("def gen(row):\n    return row['x'] + 2\n")
    moved = make("\n\n\ndef gen(row):\n    return row['x'] + 1\n")  # other line numbers
    assert code_digest(a) == code_digest(b) == code_digest(moved)
    assert code_digest(a) != code_digest(c)


def test_nested_code_defaults_closures_and_module_helpers_count() -> None:
    nested = "def gen(row):\n    f = lambda v: v * {k}\n    return f(row['x'])\n"
    assert code_digest(make(nested.format(k=2))) != code_digest(make(nested.format(k=3)))
    default = "def gen(row, scale={k}):\n    return row['x'] * scale\n"
    assert code_digest(make(default.format(k=2))) != code_digest(make(default.format(k=3)))
    closure = "def outer(k):\n    def gen(row):\n        return row['x'] * k\n    return gen\n"
    outer = make(closure, "outer")
    assert code_digest(outer(2)) == code_digest(outer(2)) != code_digest(outer(3))
    assert code_digest(outer((1, "a"))) != code_digest(outer((1, "b")))  # tuples of simple values
    assert code_digest(outer([1])) == code_digest(outer([2]))  # a list: its type only (not tracked)
    helper = "def helper(v):\n    return v * {k}\n\ndef gen(row):\n    return helper(row['x']) + LIMIT\n"
    assert code_digest(make(helper.format(k=2), namespace={"LIMIT": 5})) != code_digest(
        make(helper.format(k=3), namespace={"LIMIT": 5})
    )
    # A module-level variable is not tracked (a counter or a setting as often as a constant).
    assert code_digest(make(helper.format(k=2), namespace={"LIMIT": 5})) == code_digest(
        make(helper.format(k=2), namespace={"LIMIT": 6})
    )


def test_recursive_helpers_and_partials_are_printed() -> None:
    source = "def gen(row):\n    return gen(row) if row is None else {k}\n"
    assert code_digest(make(source.format(k=1))) != code_digest(make(source.format(k=2)))
    base = make("def gen(row, scale):\n    return row['x'] * scale\n")
    assert code_digest(functools.partial(base, scale=2)) != code_digest(functools.partial(base, scale=3))


class Doubler:
    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.calls = 0  # state: not part of the print

    def __call__(self, row: Any) -> Any:
        self.calls += 1
        return self.fn(row) * 2


def test_a_callable_object_prints_its_code_and_the_callables_it_holds() -> None:
    one = make("def gen(row):\n    return 1\n")
    two = make("def gen(row):\n    return 2\n")
    counting = Doubler(one)
    before = code_digest(counting)
    counting.calls = 41
    assert code_digest(counting) == before
    assert code_digest(Doubler(two)) != before


class ModelLike:
    def __init__(self, template: str) -> None:
        self.template = template

    def identity(self) -> str:
        return f'{{"template": "{self.template}"}}'

    async def __call__(self, row: Any) -> Any:
        return self.template


def test_an_identity_hook_decides_and_a_version_overrides_everything() -> None:
    assert generator_print(ModelLike("a")).source == "identity"
    assert generator_print(ModelLike("a")) == generator_print(ModelLike("a"))
    assert generator_print(ModelLike("a")) != generator_print(ModelLike("b"))
    one = make("def gen(row):\n    return 1\n")
    two = make("def gen(row):\n    return 2\n")
    assert generator_print(one, "7") == generator_print(two, "7")
    assert generator_print(one, "7").source == "version"
    assert generator_print(one).source == "code"


def test_fingerprints_are_merkle_over_the_graph() -> None:
    def inputs(prints: dict[str, str], volatile: str = "") -> list[ColumnPrintInput]:
        return [
            ColumnPrintInput("a", "full_column", ("a",), (), prints["a"], volatile == "a"),
            ColumnPrintInput("b", "cell_by_cell", ("b",), ("a",), prints["b"], volatile == "b"),
            ColumnPrintInput("c", "cell_by_cell", ("c", "c__x"), ("b",), prints["c"], False),
            ColumnPrintInput("d", "cell_by_cell", ("d",), ("a",), prints["d"], False),
        ]

    base = {"a": "1", "b": "1", "c": "1", "d": "1"}
    first = column_fingerprints(inputs(base), 1)
    assert column_fingerprints(inputs(base), 2) == first  # the generation matters for volatile only
    changed = column_fingerprints(inputs({**base, "b": "2"}), 1)
    assert [n for n in first if first[n] != changed[n]] == ["b", "c"]
    volatile = column_fingerprints(inputs(base, volatile="b"), 1)
    assert column_fingerprints(inputs(base, volatile="b"), 1) == volatile
    again = column_fingerprints(inputs(base, volatile="b"), 2)
    assert [n for n in volatile if volatile[n] != again[n]] == ["b", "c"]


async def _async_gen(row: Any) -> Any:
    return 1


def _plain_gen(row: Any) -> Any:
    return 1


def test_generator_composes_with_blocking_in_either_order_and_unwraps_for_free() -> None:
    graph = ExecutionGraph()
    for name in ("a", "b", "c", "d"):
        graph.add_column(name, "cell_by_cell")
    generators = {
        "a": generator(blocking(_plain_gen), version="2"),
        "b": blocking(generator(_plain_gen, version="2")),
        "c": generator(_async_gen, volatile=True),
        "d": generator(version=3)(_plain_gen),
    }
    columns = {c.name: c for c in resolve_columns(graph, generators, None)}
    assert columns["a"].kind is ColumnKind.BLOCKING and columns["b"].kind is ColumnKind.BLOCKING
    assert columns["a"].print_digest == columns["b"].print_digest
    assert columns["c"].kind is ColumnKind.ASYNC and columns["c"].volatile
    assert columns["d"].kind is ColumnKind.INLINE and columns["d"].fn is _plain_gen  # unwrapped
    assert columns["d"].print_source == "version" and columns["d"].identity.endswith(":_plain_gen")
    assert generator(_plain_gen, version="1")({"x": 1}) == 1  # still callable as itself
    with pytest.raises(GeneratorMappingError, match="blocking\\(\\) got the async function"):
        blocking(generator(_async_gen))
    with pytest.raises(GeneratorMappingError, match="version as a str or int"):
        generator(_plain_gen, version=1.5)  # type: ignore[arg-type]
    with pytest.raises(GeneratorMappingError, match="needs a callable"):
        generator(42)
    assert isinstance(generator(_plain_gen).__wrapped__, types.FunctionType)
