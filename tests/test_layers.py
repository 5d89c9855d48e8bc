"""The package's layers, checked over the source: no import cycle, and no import against the layers.

Every module under ``src/cellfrontier`` is read as source (``.py`` through :mod:`ast`; the
compiled modules' ``.pyx`` / ``.pxd`` by their import lines), and every import counts: at
module level, inside functions, and under ``if TYPE_CHECKING:`` (a type-only import is still
a dependency that a reader must follow).  An import names one module: ``import a.b.c`` and
``from a.b import c`` (``c`` a module) depend on ``a.b.c`` only, not on the ``__init__`` of
``a`` and ``a.b`` that Python runs first, since a package's public-names module imports its
own modules by design.  A new package (say ``cellfrontier.llm``) is covered as soon as it exists.

The layers, lowest first:

- the core: the modules directly in ``cellfrontier/`` (graph, tracker, the compiled core,
  state, checkpoint, merge, errors, checks ...) import nothing from ``job``, ``integrations``,
  ``simulate``, ``testing`` or ``llm``, nor the package's public-names module;
- ``cellfrontier.job``: its shared values (spec, columns, result, output, progress, errors),
  then ``store``, ``shard``, ``run``, then ``job.py`` and the package's public names; a module
  imports only from its own layer or below, so only ``job/__init__.py`` imports ``job.py``;
- ``cellfrontier.simulate`` (drivers, comparison backends, its subcommand) and
  ``cellfrontier.commands`` (the job's subcommands) sit on top: nothing else imports them,
  except the command's entry point, ``cellfrontier.cli`` (:data:`COMMAND`), which
  ``cellfrontier.__main__`` runs.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "cellfrontier"

ALLOWED_CYCLES: dict[frozenset[str], str] = {}
"""Import cycles allowed, each with the reason; every entry must still be a cycle.  (A lazy
import of an optional dependency, dask, pyarrow or DataDesigner, reaches outside ``src`` and
cannot close a cycle here.)"""

COMMAND = ("cellfrontier.cli", "cellfrontier.__main__")
"""The ``cellfrontier`` command: the modules that put the subcommands together and run them."""

JOB_LAYERS = (
    (
        "values",
        ("spec", "columns", "fingerprint", "result", "output", "progress", "status", "errors", "usage"),
    ),
    ("store", ("store",)),
    ("shard", ("shard",)),
    ("run", ("run",)),
    ("api", ("job",)),
)
"""``cellfrontier.job``'s layers, lowest first, by the first name under ``cellfrontier.job``."""


# ---------------------------------------------------------------------- reading the imports


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports_of_python(source: str, module: str, is_package: bool) -> list[tuple[str, tuple[str, ...]]]:
    """``(module imported, names imported from it)`` for every import statement in *source*."""
    found: list[tuple[str, tuple[str, ...]]] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, tuple(alias.name for alias in node.names)))
    return found


_CYTHON_FROM = re.compile(
    r"^[ \t]*from[ \t]+([\w.]+)[ \t]+c?import[ \t]+(?:\(([^)]*)\)|([^\n]*))", re.MULTILINE
)
_CYTHON_IMPORT = re.compile(r"^[ \t]*c?import[ \t]+([\w.]+(?:[ \t]*,[ \t]*[\w.]+)*)", re.MULTILINE)


def _imports_of_cython(source: str) -> list[tuple[str, tuple[str, ...]]]:
    """The same for a ``.pyx`` / ``.pxd`` file, read by its import lines (docstrings removed)."""
    code = re.sub(r'"""[\s\S]*?"""', "", source)
    code = re.sub(r"#[^\n]*", "", code)
    found = [
        (m.group(1), tuple(n.split()[0] for n in (m.group(2) or m.group(3)).split(",") if n.strip()))
        for m in _CYTHON_FROM.finditer(code)
    ]
    for m in _CYTHON_IMPORT.finditer(code):
        found += [(name.strip(), ()) for name in m.group(1).split(",")]
    return found


PACKAGES = frozenset(_module_name(p) for p in (SRC / PACKAGE).rglob("__init__.py"))


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Every module of the package and the package modules it imports."""
    sources: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for path in sorted((SRC / PACKAGE).rglob("*")):
        if path.suffix not in (".py", ".pyx", ".pxd") or "__pycache__" in path.parts:
            continue
        name = _module_name(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".py":
            found = _imports_of_python(text, name, path.name == "__init__.py")
        else:
            found = _imports_of_cython(text)
        sources.setdefault(name, []).extend(found)
    modules = set(sources)
    graph: dict[str, frozenset[str]] = {}
    for name, found in sources.items():
        targets: set[str] = set()
        for imported, names in found:
            submodules = {f"{imported}.{n}" for n in names} & modules
            if submodules:
                targets |= submodules
            if imported in modules and (not names or set(names) - {n.rpartition(".")[2] for n in submodules}):
                targets.add(imported)
        graph[name] = frozenset(targets - {name})
    return graph


def _cycles(graph: dict[str, frozenset[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _violations(importers: Iterable[str], forbidden: Callable[[str], bool]) -> list[str]:
    graph = import_graph()
    return sorted(f"{m} imports {t}" for m in importers for t in graph[m] if forbidden(t))


def _under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


# ---------------------------------------------------------------------- the checker itself


def test_the_reader_counts_imports_in_functions_under_type_checking_and_in_cython() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n    from ..other import Thing\n"
        "def f():\n    import cellfrontier.late\n"
    )
    found = _imports_of_python(source, "cellfrontier.pkg.mod", is_package=False)
    assert ("cellfrontier.pkg", ("sibling",)) in found
    assert ("cellfrontier.other", ("Thing",)) in found
    assert ("cellfrontier.late", ()) in found
    cython = (
        '"""from cellfrontier.job import nothing"""\nfrom cellfrontier cimport _kernels\nimport numpy as np\n'
    )
    assert _imports_of_cython(cython) == [("cellfrontier", ("_kernels",)), ("numpy", ())]
    assert _cycles(
        {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset()}
    ) == [frozenset({"a", "b", "c"})]


def test_the_graph_holds_the_imports_the_layers_are_made_of() -> None:
    graph = import_graph()
    assert "cellfrontier.job.shard.dispatch" in graph["cellfrontier.job.shard.runner"]
    assert "cellfrontier._validate" in graph["cellfrontier._groups"]  # a .pyx module's import
    assert "cellfrontier.checkpoint" in graph["cellfrontier.tracker"]  # `from cellfrontier import checkpoint`
    assert "cellfrontier.job.job" in graph["cellfrontier.job"]


# ---------------------------------------------------------------------- the rules


def test_there_is_no_import_cycle() -> None:
    found = _cycles(import_graph())
    cycles = [sorted(c) for c in found if c not in ALLOWED_CYCLES]
    assert cycles == [], f"modules that import each other (directly or through others): {cycles}"
    assert sorted(sorted(c) for c in ALLOWED_CYCLES if c not in found) == []  # no stale exception


def test_the_core_imports_nothing_built_on_it() -> None:
    core = [m for m in import_graph() if m.count(".") == 1 and m not in PACKAGES and m not in COMMAND]
    assert "cellfrontier.tracker" in core and "cellfrontier._core" in core
    above = ("cellfrontier.job", "cellfrontier.integrations", "cellfrontier.simulate", "cellfrontier.testing")
    assert _violations(core, lambda t: t == PACKAGE or _under(t, *above, "cellfrontier.llm")) == []


@pytest.mark.parametrize("package", ["cellfrontier.simulate", "cellfrontier.commands"])
def test_nothing_but_the_command_imports_the_subcommands(package: str) -> None:
    outside = [m for m in import_graph() if not _under(m, package, *COMMAND)]
    assert _violations(outside, lambda t: _under(t, package)) == []
    assert any(_under(t, package) for t in import_graph()["cellfrontier.cli"])  # the check sees it
    assert import_graph()["cellfrontier.__main__"] == {"cellfrontier.cli"}


def _job_layer(module: str) -> int | None:
    """The rank of a module of ``cellfrontier.job`` (None outside it; the package itself on top)."""
    if module == "cellfrontier.job":
        return len(JOB_LAYERS)
    if not _under(module, "cellfrontier.job"):
        return None
    first = module.split(".")[2]
    return next(rank for rank, (_, names) in enumerate(JOB_LAYERS) if first in names)


def test_the_job_layers_import_only_downward() -> None:
    graph = import_graph()
    upward = sorted(
        f"{m} ({JOB_LAYERS[_job_layer(m)][0]}) imports {t}"  # type: ignore[index]
        for m in graph
        if m != "cellfrontier.job" and _job_layer(m) is not None
        for t in graph[m]
        if _job_layer(t) is not None and _job_layer(t) > _job_layer(m)  # type: ignore[operator]
    )
    assert upward == []
    assert [m for m in graph if "cellfrontier.job.job" in graph[m]] == ["cellfrontier.job"]


def test_the_model_layer_uses_no_runner_internals() -> None:
    """``cellfrontier.llm`` (model calls, used by generators) sits beside the job, not inside it."""
    llm = [m for m in import_graph() if _under(m, "cellfrontier.llm")]
    internals = (
        "cellfrontier.job.run",
        "cellfrontier.job.shard",
        "cellfrontier.job.store",
        "cellfrontier.job.job",
    )
    assert _violations(llm, lambda t: _under(t, *internals)) == []


# ---------------------------------------------------------------------- the runner and its dispatcher


def _class_node(path: Path, name: str) -> ast.ClassDef:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name)


def _attributes_used_through(tree: ast.AST, attribute: str) -> set[str]:
    """Attributes read or called on ``self.<attribute>`` or on a local bound to it."""
    aliases = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == attribute
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "self"
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    used = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        through_self = (
            isinstance(owner, ast.Attribute)
            and owner.attr == attribute
            and isinstance(owner.value, ast.Name)
            and owner.value.id == "self"
        )
        if through_self or (isinstance(owner, ast.Name) and owner.id in aliases):
            used.add(node.attr)
    return used


def test_the_runner_uses_only_the_documented_interface_of_the_dispatcher() -> None:
    shard = SRC / "cellfrontier" / "job" / "shard"
    dispatcher = _class_node(shard / "dispatch.py", "CallDispatcher")
    documented = set(re.findall(r"(?:``|:meth:`)(\w+)", ast.get_docstring(dispatcher) or ""))
    used = _attributes_used_through(_class_node(shard / "runner.py", "ShardRunner"), "dispatch")
    assert {"submit_cells", "launch", "idle"} <= used  # the check sees the runner's calls
    assert sorted(used - documented) == []
    assert sorted(a for a in used if a.startswith("_")) == []


def test_the_dispatcher_holds_no_reference_to_the_runner() -> None:
    tree = ast.parse((SRC / "cellfrontier" / "job" / "shard" / "dispatch.py").read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    names |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in (*n.args, *n.kwonlyargs)}
    assert sorted(n for n in names if "runner" in n.lower()) == []
    assert "cellfrontier.job.shard.runner" not in import_graph()["cellfrontier.job.shard.dispatch"]
