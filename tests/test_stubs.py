"""The type stubs of the compiled modules say what the modules really expose.

mypy reads the ``.pyi`` files, never the compiled modules, so a stub that drifts from its
module lets type-checked code call what does not exist (or hides what does).  For every
compiled module: the stub's public names are the module's ``__all__``; every public class
declares exactly the public attributes the class defines itself (methods, properties and
readonly fields, not the inherited ones); and every function and method takes the parameters,
by name and in order, that the stub gives it (``__init__`` of an extension type is a slot
without a readable signature, so only its presence is compared).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from types import ModuleType

import pytest

COMPILED = (
    "cellfrontier._values",
    "cellfrontier._groups",
    "cellfrontier._core",
    "cellfrontier.integrations._task_id",
    "cellfrontier.integrations._dd_core",
)


def _public(name: str) -> bool:
    return not name.startswith("_")


def _stub(module: ModuleType) -> ast.Module:
    package, _, leaf = module.__name__.rpartition(".")
    path = Path(importlib.import_module(package).__file__ or "").parent / f"{leaf}.pyi"
    return ast.parse(path.read_text(), filename=str(path))


def _defined(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """Names a stub body defines: functions, classes, annotated or assigned names, re-exports."""
    names: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Assign):
            names.update((t.id, node) for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):  # ``from x import a as a`` re-exports a
            names.update((a.asname, node) for a in node.names if a.asname is not None and a.asname == a.name)
    return names


def _parameters(node: ast.FunctionDef) -> list[str]:
    args = node.args
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]


def _is_property(node: ast.stmt) -> bool:
    return isinstance(node, ast.FunctionDef) and any(
        isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list
    )


def _check_signature(stub: ast.FunctionDef, runtime: object, where: str) -> None:
    actual = [p for p in inspect.signature(runtime).parameters]  # type: ignore[arg-type]
    expected = _parameters(stub)
    if expected and expected[0] in ("self", "cls") and (not actual or actual[0] != expected[0]):
        expected = expected[1:]  # a bound classmethod's signature drops cls
    assert actual == expected, f"{where}: the module takes {actual}, the stub says {expected}"


@pytest.mark.parametrize("name", COMPILED)
def test_the_stub_declares_exactly_the_modules_public_names(name: str) -> None:
    module = importlib.import_module(name)
    declared = {n for n in _defined(_stub(module).body) if _public(n)}
    exported = set(module.__all__)
    assert declared == exported, (
        f"{name}: only in the stub {declared - exported}, only in the module {exported - declared}"
    )
    public = {n for n, v in vars(module).items() if _public(n) and getattr(v, "__module__", None) == name}
    assert public <= exported, f"{name} defines public names it does not export: {public - exported}"


@pytest.mark.parametrize("name", COMPILED)
def test_every_class_and_function_matches_its_stub(name: str) -> None:
    module = importlib.import_module(name)
    for symbol, node in _defined(_stub(module).body).items():
        if not _public(symbol) or isinstance(node, ast.ImportFrom):
            continue
        runtime = getattr(module, symbol)
        if isinstance(node, ast.FunctionDef):
            _check_signature(node, runtime, f"{name}.{symbol}")
        if not isinstance(node, ast.ClassDef):
            continue
        members = _defined(node.body)
        declared = {n for n in members if _public(n)}
        defined = {n for n in vars(runtime) if _public(n)}
        assert declared == defined, (
            f"{name}.{symbol}: only in the stub {declared - defined}, only in the class {defined - declared}"
        )
        for member, stub in members.items():
            if not isinstance(stub, ast.FunctionDef) or (not _public(member) and member != "__init__"):
                continue
            if member not in vars(runtime):
                continue  # an __init__ the class inherits
            attribute = getattr(runtime, member)
            if _is_property(stub):
                assert not callable(attribute), f"{name}.{symbol}.{member} is a method, the stub a property"
            elif member != "__init__":  # an extension type's __init__ is a slot: no signature to read
                _check_signature(stub, attribute, f"{name}.{symbol}.{member}")
