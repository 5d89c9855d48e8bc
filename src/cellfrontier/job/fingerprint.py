"""Column fingerprints: what decides a column's values, hashed, so a rerun knows what to keep.

A rerun of an edited job keeps a column's stored values exactly when its fingerprint is the
one they were computed under.  Two parts make it:

- the **generator's print** (:func:`generator_print`), from what the user gave:

  - an explicit ``version=`` (``cellfrontier.generator(fn, version="2")``): the version alone,
    so the user decides when values go stale (and a pinned column survives a new Python);
  - an ``identity()`` hook (model columns: model, template, parameters, schema; never the
    endpoint or the key): its answer;
  - otherwise the code: the qualified name and a hash of the code object, recursively
    (bytecode, names, constants and nested code objects), the defaults, the closure's cells
    and the module-level functions of its own module that it names (recursively: an edited
    helper changes its callers).  Defaults and closure cells count by value when they are
    *simple* (None, a bool, int, float, str or bytes, or a tuple or frozenset of simple
    values); anything else (a list, a dict, a client object, a class, a function of another
    module) counts by its type name only and is **not tracked**: a change inside it is not
    seen.  Module-level variables are not tracked either (they are as often state, a counter
    or a setting read from the environment, as they are constants): a generator whose values
    depend on one should be pinned with ``version=``.  A callable object counts as its
    class's ``__call__`` plus the callables among its attributes (a wrapped function, a model
    column); its other attributes are usually state (counters, clients, caches) and are not
    tracked, so an object whose settings decide its values should say so with ``version=`` or
    an ``identity()`` hook.  Bytecode differs between Python versions, so a column
    fingerprinted by its code changes with ``major.minor``: pin it with ``version=``.

- the **column's fingerprint** (:func:`column_fingerprints`), Merkle style: the hash of its
  strategy, its print, its outputs (side-effect aliases) and the names and fingerprints of its
  upstream columns.  Equal fingerprints therefore mean equal inputs all the way up, so a kept
  column never reads a recomputed one.  A *volatile* column's print is replaced by the job
  version's generation number: it (and everything downstream) is recomputed by every new job
  version, and kept while the same version resumes.

Plain values only: this module knows no ``ColumnSpec`` or ``JobSpec`` (they are built on it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ColumnPrintInput",
    "GeneratorPrint",
    "code_digest",
    "column_fingerprints",
    "generator_print",
    "python_version",
]

_SIMPLE = (type(None), bool, int, float, str, bytes)
_MAX_DEPTH = 4
"""How deep attributes of callable objects are followed (cycles are cut by identity too)."""


def python_version() -> str:
    """``major.minor`` of this interpreter: code prints are only comparable within one."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class GeneratorPrint:
    """What a column's generator contributes to its fingerprint, and where it came from.

    ``source`` is ``"version"`` (set by the user), ``"identity"`` (the generator's hook) or
    ``"code"`` (hashed here; changes with the Python version).
    """

    source: str
    digest: str


def _simple(value: Any) -> str | None:
    """A canonical text for a simple value (module doc), or None when *value* is not simple."""
    kind = type(value)
    if kind in _SIMPLE:
        return f"{kind.__name__}:{value!r}"
    if kind is tuple or kind is frozenset:
        parts = [_simple(item) for item in value]
        if any(part is None for part in parts):
            return None
        items = sorted(parts) if kind is frozenset else parts  # type: ignore[type-var]
        return f"{kind.__name__}({','.join(items)})"  # type: ignore[arg-type]
    return None


class _CodeHasher:
    """Feeds everything a generator's values depend on (module doc) into one blake2b."""

    def __init__(self) -> None:
        self.hash = hashlib.blake2b(digest_size=16)
        self.seen: set[int] = set()

    def feed(self, *parts: str | bytes) -> None:
        for part in parts:
            data = part if isinstance(part, bytes) else part.encode("utf-8", "surrogatepass")
            self.hash.update(len(data).to_bytes(8, "big"))
            self.hash.update(data)

    def code(self, code: types.CodeType, names: set[str]) -> None:
        self.feed("code", code.co_qualname if hasattr(code, "co_qualname") else code.co_name, code.co_code)
        self.feed(repr(code.co_names), repr(code.co_varnames), repr(code.co_freevars))
        self.feed(repr((code.co_argcount, code.co_kwonlyargcount, code.co_flags)))
        names.update(code.co_names)
        for constant in code.co_consts:
            if isinstance(constant, types.CodeType):
                self.code(constant, names)
            else:
                self.feed(_simple(constant) or f"type:{type(constant).__qualname__}")

    def value(self, value: Any, depth: int) -> None:
        """A value a generator reads: simple ones by value, callables by their code, others by type."""
        simple = _simple(value)
        if simple is not None:
            self.feed(simple)
            return
        if id(value) in self.seen:
            self.feed("seen", type(value).__qualname__)
            return
        if depth > _MAX_DEPTH:
            self.feed("type", type(value).__qualname__)
            return
        self.seen.add(id(value))
        identity = getattr(value, "identity", None)
        if isinstance(value, types.FunctionType):
            self.function(value, depth)
        elif isinstance(value, types.MethodType):
            self.feed("method")
            self.function(value.__func__, depth)  # type: ignore[arg-type]
            self.value(value.__self__, depth + 1)
        elif isinstance(value, functools.partial):
            self.feed("partial")
            self.value(value.func, depth + 1)
            for arg in value.args:
                self.value(arg, depth + 1)
            for key in sorted(value.keywords):
                self.feed(key)
                self.value(value.keywords[key], depth + 1)
        elif callable(identity) and not isinstance(value, type):
            self.feed("identity", type(value).__qualname__, _identity_text(value))
        elif callable(value) and not isinstance(value, (type, types.BuiltinFunctionType)):
            self.instance(value, depth)
        else:
            self.feed("type", type(value).__qualname__)

    def function(self, fn: types.FunctionType, depth: int) -> None:
        self.feed("function", fn.__module__ or "", fn.__qualname__)
        names: set[str] = set()
        self.code(fn.__code__, names)
        for default in fn.__defaults__ or ():
            self.value(default, depth + 1)
        for key, default in sorted((fn.__kwdefaults__ or {}).items()):
            self.feed(key)
            self.value(default, depth + 1)
        for cell in fn.__closure__ or ():
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell (a name assigned later)
                self.feed("empty-cell")
                continue
            self.value(content, depth + 1)
        module_globals = fn.__globals__
        for name in sorted(names):
            target = module_globals.get(name)
            if isinstance(target, types.FunctionType) and target.__module__ == fn.__module__:
                self.feed("global", name)
                self.value(target, depth + 1)

    def instance(self, obj: Any, depth: int) -> None:
        kind = type(obj)
        self.feed("object", kind.__module__, kind.__qualname__)
        call = getattr(kind, "__call__", None)  # noqa: B004 - the class's own __call__
        if isinstance(call, types.FunctionType):
            self.function(call, depth + 1)
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict):
            for key in sorted(attributes):
                value = attributes[key]
                if not callable(value) or isinstance(value, type):
                    continue  # state (counters, clients, caches) or a class: not tracked
                if key.startswith("__") and key.endswith("__") and key != "__wrapped__":
                    continue
                self.feed("attr", key)
                self.value(value, depth + 1)


def _identity_text(obj: Any) -> str:
    """The answer of *obj*'s ``identity()`` hook as text (JSON for anything else than str/bytes)."""
    answer = obj.identity()
    if isinstance(answer, bytes):
        return answer.decode("utf-8", "backslashreplace")
    if isinstance(answer, str):
        return answer
    return json.dumps(answer, sort_keys=True, separators=(",", ":"), default=repr)


def code_digest(fn: Callable[..., Any]) -> str:
    """A hash of *fn*'s code and of the values it reads that are tracked (module doc)."""
    hasher = _CodeHasher()
    hasher.value(fn, 0)
    return hasher.hash.hexdigest()


def generator_print(fn: Callable[..., Any], version: str | None = None) -> GeneratorPrint:
    """The print of generator *fn*: its *version* when given, else its ``identity()``, else its code."""
    if version is not None:
        return GeneratorPrint("version", _digest(["version", version]))
    identity = getattr(fn, "identity", None)
    if callable(identity) and not isinstance(fn, (types.FunctionType, types.MethodType, type)):
        return GeneratorPrint("identity", _digest(["identity", type(fn).__qualname__, _identity_text(fn)]))
    return GeneratorPrint("code", code_digest(fn))


@dataclass(frozen=True)
class ColumnPrintInput:
    """What :func:`column_fingerprints` needs of one column."""

    name: str
    strategy: str
    outputs: tuple[str, ...]
    upstream: tuple[str, ...]
    print_digest: str
    volatile: bool


def column_fingerprints(columns: Sequence[ColumnPrintInput], generation: int) -> dict[str, str]:
    """Each column's fingerprint (Merkle: its own parts and its upstream fingerprints).

    *columns* come in topological order.  *generation* is the job version's number, the print
    of every volatile column.
    """
    found: dict[str, str] = {}
    for column in columns:
        own = f"volatile@g{generation}" if column.volatile else column.print_digest
        ups = sorted((name, found[name]) for name in column.upstream)
        found[column.name] = _digest([column.strategy, own, list(column.outputs), ups])
    return found


def _digest(parts: Iterable[Any] | Mapping[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
