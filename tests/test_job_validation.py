"""Bad generator mappings and arguments are refused before any work starts."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from cellfrontier import GeneratorMappingError, InvalidArgumentError, Job, OutputDirError, blocking
from cellfrontier.job.columns import ColumnKind, generator_identity, resolve_columns
from cellfrontier.testing.j12 import build_j12_graph, j12_generators


class Refuses:
    """A generator that fails the test if it is ever called."""

    def __call__(self, arg: Any) -> Any:
        raise AssertionError("a generator ran although the mapping was refused")


def _refusing() -> dict[str, Any]:
    return {name: Refuses() for name in j12_generators()}


def test_missing_column() -> None:
    generators = _refusing()
    del generators["sig"], generators["final"]
    with pytest.raises(GeneratorMappingError, match=r"no generator for column\(s\) 'sig', 'final'"):
        Job(build_j12_graph(), generators, 10)


def test_unknown_column() -> None:
    generators = _refusing()
    generators["colour"] = Refuses()
    with pytest.raises(GeneratorMappingError, match="'colour' is not a column of the graph"):
        Job(build_j12_graph(), generators, 10)


def test_alias_given_its_own_generator() -> None:
    graph = build_j12_graph()
    graph.set_side_effect("code__trace", "code")
    generators = _refusing()
    generators["code__trace"] = Refuses()
    with pytest.raises(
        GeneratorMappingError, match="'code__trace' is a side-effect alias produced by 'code'"
    ):
        Job(graph, generators, 10)


def test_not_callable() -> None:
    generators = _refusing()
    generators["h"] = 42
    with pytest.raises(GeneratorMappingError, match=r"the generator of 'h' is not callable \(int\)"):
        Job(build_j12_graph(), generators, 10)


def test_not_a_mapping() -> None:
    with pytest.raises(GeneratorMappingError, match="mapping of column name to callable"):
        Job(build_j12_graph(), [Refuses()], 10)  # type: ignore[arg-type]


def test_every_problem_is_reported_at_once() -> None:
    generators = _refusing()
    del generators["h"]
    generators["nope"] = Refuses()
    with pytest.raises(GeneratorMappingError) as info:
        Job(build_j12_graph(), generators, 10, concurrency={"zz": 3, "code": 0})
    message = str(info.value)
    for part in (
        "'nope' is not a column",
        "no generator for column(s) 'h'",
        "concurrency names 'zz'",
        "concurrency['code']",
    ):
        assert part in message


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"buffer_size": 0}, "buffer_size >= 1"),
        ({"buffer_size": 2**31}, r"buffer_size < 2\*\*31"),  # the core's one row limit
        ({"num_records": True}, "integer num_records"),
        ({"retries": -1}, "retries >= 0"),
        ({"max_concurrency": 0}, "max_concurrency >= 1"),
        ({"max_active_row_groups": 1.5}, "integer max_active_row_groups"),
        ({"retry_backoff": -1}, "retry_backoff"),
        ({"progress": 3}, "callable progress"),
    ],
)
def test_bad_options(options: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        Job(build_j12_graph(), _refusing(), **{"num_records": 10, **options})


def test_bad_shards_are_refused() -> None:
    job = Job(build_j12_graph(), _refusing(), 2500)
    with pytest.raises(InvalidArgumentError, match="outside range"):
        job.run(row_groups=range(0, 4))
    with pytest.raises(InvalidArgumentError, match="step 1"):
        job.run(row_groups=range(0, 3, 2))


def test_generators_are_classified() -> None:
    async def a(row: Any) -> int:
        return 1

    class AsyncCallable:
        async def __call__(self, row: Any) -> int:
            return 1

    generators = j12_generators()
    generators["h"] = a
    generators["bucket"] = AsyncCallable()
    generators["code"] = blocking(generators["code"])
    generators["label"] = functools.partial(a)
    generators["total"] = blocking(len)  # a builtin takes no attribute: it gets wrapped
    kinds = {p.name: p.kind for p in resolve_columns(build_j12_graph(), generators, None)}
    assert kinds["h"] == kinds["bucket"] == kinds["label"] == ColumnKind.ASYNC
    assert kinds["code"] == kinds["total"] == ColumnKind.BLOCKING
    assert kinds["sig"] == kinds["summary"] == ColumnKind.INLINE


def test_blocking_refuses_async_and_bad_batch_sizes() -> None:
    async def a(row: Any) -> int:
        return 1

    with pytest.raises(GeneratorMappingError, match="need no mark"):
        blocking(a)
    with pytest.raises(GeneratorMappingError, match="batch_size"):
        blocking(batch_size=0)


def test_generator_identity_names_module_and_qualname() -> None:
    generators = j12_generators()
    assert generator_identity(generators["h"]) == "cellfrontier.testing.j12:gen_h"
    assert generator_identity(blocking(len)) == "builtins:len"
    assert generator_identity(functools.partial(generators["h"])) == "partial(cellfrontier.testing.j12:gen_h)"
    assert generator_identity(Refuses()).endswith(":Refuses")


def test_blocking_leaves_the_function_itself_unchanged() -> None:
    def fetch(row: Any) -> int:
        return 1

    marked = blocking(fetch)
    assert marked is not fetch and marked.__wrapped__ is fetch and marked(None) == 1
    assert blocking(batch_size=2)(marked).batch_size == 2
    generators = {**j12_generators(), "h": fetch}
    kinds = {p.name: p.kind for p in resolve_columns(build_j12_graph(), generators, None)}
    assert kinds["h"] == ColumnKind.INLINE


@pytest.mark.parametrize("url", ["s3://bucket/job", "gs://b/j", "file:///tmp/job", "abfs+x.y://c/d"])
def test_an_output_dir_url_is_refused_before_anything_is_created(tmp_path, monkeypatch, url: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputDirError, match="must be a filesystem path"):
        Job(build_j12_graph(), _refusing(), 10, output_dir=url)
    assert list(tmp_path.iterdir()) == []  # no local folder named "s3:"


def test_an_output_dir_that_only_looks_like_a_scheme_is_a_path(tmp_path) -> None:
    job = Job(build_j12_graph(), _refusing(), 10, output_dir=str(tmp_path / "a:b"))
    assert job.output_dir == tmp_path / "a:b"
