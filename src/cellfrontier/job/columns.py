"""A job's columns: each column's generator, checked against the graph and classified.

Each column of the graph gets exactly one generator; a side-effect alias gets its values from
its producer's generator.  A generator runs in one of three ways (:class:`ColumnKind`),
decided once here:

- ``INLINE``: a plain function, called on the event-loop thread in batches (all ready rows of
  a column in a row group at once), with no per-call thread hop or task object;
- ``ASYNC``: an ``async def`` function (or an object whose ``__call__`` is one), run as one
  asyncio task per call under the concurrency caps;
- ``BLOCKING``: a plain function the user marked with :func:`blocking` because it waits (a
  synchronous HTTP client, a subprocess); it runs on a thread pool in batches of ready rows.

A :class:`ColumnSpec` is a plain, picklable description: the generated loops that call a
column's generator are built by the shard that runs it
(:mod:`cellfrontier.job.shard.row_loops`).

:func:`generator` wraps a generator with what a rerun needs to know of it: an explicit
``version`` (the column's values change only when it does) or ``volatile`` (recomputed by every
new job version); see :mod:`cellfrontier.job.fingerprint`.  Like :func:`blocking` it returns a
wrapper and leaves the function unchanged, and the two compose in either order.

A function that returns an awaitable without being declared ``async def`` is not recognised
as async (checking every result would cost time on every call); the first values of such a
column, whichever way it runs, raise :class:`GeneratorOutputError` saying so, before anything
is stored or checkpointed.

Hooks a generator object may offer (duck-typed, so the job depends on no generator library):
``check_inputs(column, inputs)`` is called here, before any work, with the names the column's
calls will find in their row (a model column refuses a template field it would not get).
"""

from __future__ import annotations

import enum
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cellfrontier._validate import is_integer
from cellfrontier.graph import ExecutionGraph
from cellfrontier.job.errors import GeneratorMappingError
from cellfrontier.job.fingerprint import generator_print
from cellfrontier.job.output import ROW_COLUMN
from cellfrontier.strategies import GenerationStrategy

__all__ = [
    "DEFAULT_ASYNC_CAP",
    "DEFAULT_BLOCKING_BATCH",
    "DEFAULT_BLOCKING_CAP",
    "BlockingGenerator",
    "ColumnKind",
    "ColumnSpec",
    "VersionedGenerator",
    "blocking",
    "generator",
    "generator_identity",
    "is_blocking",
    "output_columns",
    "resolve_columns",
]


class ColumnKind(enum.Enum):
    """How a column's generator runs (compare with ``is``)."""

    INLINE = "inline"
    """A plain function: called on the event-loop thread, a whole ready set per call."""
    ASYNC = "async"
    """An ``async def`` function: one asyncio task per call, under the caps."""
    BLOCKING = "blocking"
    """A plain function marked with :func:`blocking`: batches of calls on a thread pool."""


DEFAULT_ASYNC_CAP = 64
"""Calls in flight per async column when ``concurrency`` does not name it."""
DEFAULT_BLOCKING_CAP = 4
"""Batches in flight (pool threads busy) per blocking column when ``concurrency`` does not name it."""
DEFAULT_BLOCKING_BATCH = 64
"""Most rows one thread-pool hand-off of a blocking cell column carries."""

F = TypeVar("F", bound=Callable[..., Any])


class _GeneratorWrapper:
    """A wrapper that calls *fn* and carries its names: marking a generator for one job leaves
    the function itself unchanged for every other use."""

    __slots__ = ("__dict__", "__wrapped__")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.__wrapped__ = fn
        for name in ("__module__", "__name__", "__qualname__", "__doc__"):
            value = getattr(fn, name, None)
            if value is not None:
                self.__dict__[name] = value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)


class BlockingGenerator(_GeneratorWrapper):
    """A plain generator marked to run on the thread pool (what :func:`blocking` returns).

    A wrapper rather than an attribute set on the function, so that marking a function for
    one job leaves the function itself unchanged for every other use.
    """

    __slots__ = ("batch_size",)

    def __init__(self, fn: Callable[..., Any], batch_size: int) -> None:
        super().__init__(fn)
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"blocking({self.__wrapped__!r})"


def blocking(fn: F | None = None, *, batch_size: int = DEFAULT_BLOCKING_BATCH) -> Any:
    """Mark a plain generator as blocking: it runs on the job's thread pool, not inline.

    Use it for a function that waits (network, disk, a subprocess) rather than computes, so
    that it does not hold up the event loop.  Ready rows go to the pool in batches of at most
    *batch_size* (spread evenly over the free threads); ``concurrency[column]`` is the number of
    batches in flight, i.e. the threads busy with that column.  Usable bare (``@blocking``),
    with arguments (``@blocking(batch_size=1)``) or as a call (``blocking(fn)``), which
    returns a marked wrapper and leaves *fn* itself unchanged.
    """
    if not is_integer(batch_size) or batch_size < 1:
        raise GeneratorMappingError(f"blocking() needs an integer batch_size >= 1, got {batch_size!r}")

    def mark(target: F) -> BlockingGenerator:
        if not callable(target):
            raise GeneratorMappingError(f"blocking() needs a callable, got {type(target).__name__}")
        if _is_async(target):
            raise GeneratorMappingError(
                f"blocking() got the async function {_name(target)}; async generators run on the "
                "event loop and need no mark"
            )
        inner = target.__wrapped__ if isinstance(target, BlockingGenerator) else target
        return BlockingGenerator(inner, batch_size)

    return mark if fn is None else mark(fn)


class VersionedGenerator(_GeneratorWrapper):
    """A generator with rerun options (what :func:`generator` returns): ``version``, ``volatile``.

    A wrapper, like :class:`BlockingGenerator`, so the function itself stays unchanged; the
    job unwraps it when it resolves the columns, so calls pay nothing for it.
    """

    __slots__ = ("version", "volatile")

    def __init__(self, fn: Callable[..., Any], version: str | None, volatile: bool) -> None:
        super().__init__(fn)
        self.version = version
        self.volatile = volatile

    def __repr__(self) -> str:
        options = [f"version={self.version!r}"] if self.version is not None else []
        options += ["volatile=True"] if self.volatile else []
        return f"generator({self.__wrapped__!r}{''.join(', ' + o for o in options)})"


def generator(fn: F | None = None, *, version: str | int | None = None, volatile: bool = False) -> Any:
    """Give a generator what reruns need: an explicit *version*, or mark it *volatile*.

    A column's stored values are kept by a rerun while its fingerprint is unchanged, and by
    default the fingerprint follows the generator's code (:mod:`cellfrontier.job.fingerprint`).
    With ``version=`` it follows that value alone: bump it when the values should change, keep
    it to keep them (across Python versions too, whose bytecode differs).  ``volatile=True``
    recomputes the column, and everything downstream, in every new job version (a sample you
    want drawn afresh; a full-column generator whose values depend on the whole group, such
    as an aggregate, when a group can grow).  Usable bare, with arguments or as a call; it
    composes with :func:`blocking` in either order.
    """
    if version is not None and (isinstance(version, bool) or not isinstance(version, (str, int))):
        raise GeneratorMappingError(f"generator() needs version as a str or int, got {version!r}")
    if not isinstance(volatile, bool):
        raise GeneratorMappingError(f"generator() needs volatile as a bool, got {volatile!r}")
    pinned = None if version is None else str(version)

    def wrap(target: F) -> VersionedGenerator:
        if not callable(target):
            raise GeneratorMappingError(f"generator() needs a callable, got {type(target).__name__}")
        inner = target.__wrapped__ if isinstance(target, VersionedGenerator) else target
        return VersionedGenerator(inner, pinned, volatile)

    return wrap if fn is None else wrap(fn)


def unwrap_options(fn: Any) -> tuple[Any, str | None, bool]:
    """``(generator, version, volatile)``: *fn* without its :func:`generator` wrapper, wherever it is.

    ``blocking(generator(f))`` becomes ``blocking(f)``; ``generator(blocking(f))`` the
    ``blocking(f)`` inside.
    """
    if isinstance(fn, VersionedGenerator):
        return fn.__wrapped__, fn.version, fn.volatile
    if isinstance(fn, BlockingGenerator) and isinstance(fn.__wrapped__, VersionedGenerator):
        inner = fn.__wrapped__
        return BlockingGenerator(inner.__wrapped__, fn.batch_size), inner.version, inner.volatile
    return fn, None, False


def is_blocking(fn: Any) -> bool:
    """Whether *fn* was marked with :func:`blocking`."""
    return isinstance(fn, BlockingGenerator)


def _blocking_batch(fn: Any) -> int:
    return int(fn.batch_size)


def _is_async(fn: Any) -> bool:
    target = fn
    while isinstance(target, (functools.partial, VersionedGenerator)):
        target = target.func if isinstance(target, functools.partial) else target.__wrapped__
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(type(target), "__call__", None)  # noqa: B004 - an object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


def generator_identity(fn: Any) -> str:
    """A stable name for a generator, recorded in the job's manifest (``module:qualname``).

    Two different lambdas defined at the same place share a name; the manifest cannot tell
    them apart, so give generators that must not be swapped distinct names.
    """
    target = fn.__wrapped__ if isinstance(fn, BlockingGenerator) else fn
    if isinstance(target, VersionedGenerator):
        return generator_identity(target.__wrapped__)
    if isinstance(target, functools.partial):
        return f"partial({generator_identity(target.func)})"
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if module is None or qualname is None:  # an instance: its class names it
        module, qualname = type(target).__module__, type(target).__qualname__
    return f"{module}:{qualname}"


def output_columns(graph: ExecutionGraph) -> dict[str, tuple[str, ...]]:
    """For each column, the names its generator produces: itself, then its live aliases.

    An alias that is also a real column's name is inert (the real column wins), so it is not
    an output.
    """
    columns = set(graph.columns)
    aliases: dict[str, list[str]] = {}
    for alias, producer in sorted(graph.side_effects.items()):
        if alias not in columns:
            aliases.setdefault(producer, []).append(alias)
    return {name: (name, *aliases.get(name, ())) for name in graph.get_topological_order()}


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """How one column runs, resolved once before any work: its generator, kind, caps and shape."""

    name: str
    index: int
    """Position in the graph's topological order."""
    batch: bool
    """A ``full_column`` column: one call per row group."""
    kind: ColumnKind
    fn: Callable[..., Any]
    inputs: tuple[str, ...]
    """Every upstream column and its side-effect aliases, in topological order."""
    outputs: tuple[str, ...]
    """The column itself, then its live side-effect aliases."""
    cap: int
    """Calls (async) or batches (blocking) in flight at most; 1 for an inline column."""
    blocking_batch: int
    """Most rows one thread-pool hand-off carries (blocking cell columns; 0 otherwise)."""
    depth: int
    """Longest chain of columns ending here (1 for a root): deeper columns launch first."""
    identity: str
    """The generator's ``module:qualname``, recorded in the job's manifest."""
    print_source: str = "code"
    """Where the generator's print comes from: ``version``, ``identity`` or ``code``."""
    print_digest: str = ""
    """The generator's print (:func:`~cellfrontier.job.fingerprint.generator_print`)."""
    volatile: bool = False
    """Recomputed by every new job version (:func:`generator`)."""
    timeout: float | None = None
    """Seconds one async call may run before it is cancelled and counted failed (None: no limit)."""


def _timeout_problem(what: str, seconds: Any) -> str | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return f"{what} must be seconds > 0 or None, got {seconds!r}"
    return None if seconds > 0 else f"{what} must be seconds > 0 or None, got {seconds!r}"


def resolve_columns(
    graph: ExecutionGraph,
    generators: Mapping[str, Callable[..., Any]],
    concurrency: Mapping[str, int] | None,
    timeouts: Mapping[str, float | None] | None = None,
    call_timeout: float | None = None,
) -> tuple[ColumnSpec, ...]:
    """Check *generators* against *graph* and describe each column, in topological order.

    Every problem is reported before any work starts: a column without a generator, a name
    that is not a column, a side-effect alias given its own generator, something not callable,
    a concurrency cap that is not a positive integer or names an unknown column, or a timeout
    that is not seconds > 0 or names a column whose calls cannot be cancelled (inline or
    blocking).  Then each generator's ``check_inputs`` hook, if it has one, sees its inputs.

    *call_timeout* is every async column's timeout unless *timeouts* names the column
    (``None`` there: no limit for that column).
    """
    if not isinstance(generators, Mapping):
        raise GeneratorMappingError(
            f"Job() needs generators as a mapping of column name to callable, got {type(generators).__name__}"
        )
    order = graph.get_topological_order()
    known = set(order)
    aliases = graph.side_effects
    problems: list[str] = []
    for name in generators:
        if name in known:
            continue
        if name in aliases:
            problems.append(
                f"{name!r} is a side-effect alias produced by {aliases[name]!r}; its values come from "
                f"the generator of {aliases[name]!r} (return a mapping with both keys)"
            )
        else:
            problems.append(f"{name!r} is not a column of the graph")
    missing = [name for name in order if name not in generators]
    if missing:
        problems.append(f"no generator for column(s) {', '.join(map(repr, missing))}")
    for name in order:
        if name in generators and not callable(generators[name]):
            problems.append(f"the generator of {name!r} is not callable ({type(generators[name]).__name__})")
    caps = dict(concurrency or {})
    for name, cap in caps.items():
        if name not in known:
            problems.append(f"concurrency names {name!r}, which is not a column of the graph")
        elif not is_integer(cap) or cap < 1:
            problems.append(f"concurrency[{name!r}] must be an integer >= 1, got {cap!r}")
    problem = _timeout_problem("call_timeout", call_timeout)
    if problem:
        problems.append(problem)
    limits = dict(timeouts or {})
    for name, seconds in limits.items():
        if name not in known:
            problems.append(f"timeouts names {name!r}, which is not a column of the graph")
            continue
        problem = _timeout_problem(f"timeouts[{name!r}]", seconds)
        if problem:
            problems.append(problem)
        elif seconds is not None and name in generators and not _is_async(generators[name]):
            problems.append(
                f"timeouts[{name!r}] applies to async generators only: a plain or blocking call "
                "cannot be cancelled (make the generator `async def`, or drop its timeout)"
            )
    if problems:
        raise GeneratorMappingError("Job() got an unusable generators mapping: " + "; ".join(problems))

    outputs = output_columns(graph)
    depth: dict[str, int] = {}
    columns: list[ColumnSpec] = []
    for index, name in enumerate(order):
        fn, version, volatile = unwrap_options(generators[name])
        printed = generator_print(fn.__wrapped__ if is_blocking(fn) else fn, version)
        ups = graph.get_upstream_columns(name)
        depth[name] = 1 + max((depth[u] for u in ups), default=0)
        inputs = tuple(out for up in order if up in ups for out in outputs[up])
        batch = graph.get_strategy(name) is GenerationStrategy.FULL_COLUMN
        check_inputs = getattr(fn, "check_inputs", None)
        if callable(check_inputs):
            check_inputs(name, frozenset((ROW_COLUMN, *inputs)))
        if _is_async(fn):
            kind, default_cap = ColumnKind.ASYNC, DEFAULT_ASYNC_CAP
        elif is_blocking(fn):
            kind, default_cap = ColumnKind.BLOCKING, DEFAULT_BLOCKING_CAP
        else:
            kind, default_cap = ColumnKind.INLINE, 1
        columns.append(
            ColumnSpec(
                name=name,
                index=index,
                batch=batch,
                kind=kind,
                fn=fn,
                inputs=inputs,
                outputs=outputs[name],
                cap=int(caps.get(name, default_cap)),
                blocking_batch=_blocking_batch(fn) if kind is ColumnKind.BLOCKING else 0,
                depth=depth[name],
                identity=generator_identity(fn),
                print_source=printed.source,
                print_digest=printed.digest,
                volatile=volatile,
                timeout=limits.get(name, call_timeout) if kind is ColumnKind.ASYNC else None,
            )
        )
    return tuple(columns)
