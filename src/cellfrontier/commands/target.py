"""Finding the job ``cellfrontier run TARGET`` names: ``module:attribute`` or ``path/to/file.py:attribute``.

The module is imported as Python would import it, so that the generators' names recorded in
the job's manifest (``module:qualname``) are the same whichever form named it: a file is
imported under its module name with the directory above its package (or its own directory)
first on ``sys.path``, as ``python path/to/file.py`` would see it; a module name is looked up
from the current directory first, as ``python -m`` does.  ``pipeline.py:job`` and
``pipeline:job`` run from the file's directory therefore name the same job, and resume each
other's runs.

Two kinds of failure: the target names nothing usable (:class:`TargetError`, a usage error),
or the user's own code raised while it was imported or called (:class:`TargetImportError`,
which keeps the original exception as its cause for ``--traceback``).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from cellfrontier.job import Job

__all__ = ["LoadedTarget", "TargetError", "TargetImportError", "load_job"]

_DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
"""A module name or an attribute path: identifiers joined by dots."""


class TargetError(ValueError):
    """TARGET names no job: a bad form, a missing file, module or attribute, not a Job."""


class TargetImportError(RuntimeError):
    """The user's code raised while TARGET's module was imported, or its function called."""


@dataclass(frozen=True)
class LoadedTarget:
    """The job TARGET named, and where it came from."""

    job: Job
    module: ModuleType
    file: Path | None
    """The module's file when it is a single top-level module (a cluster can be sent it)."""


def _split(target: str) -> tuple[str, str]:
    source, colon, attribute = target.rpartition(":")
    if not colon or not source or not _DOTTED.match(attribute):
        raise TargetError(
            f"TARGET must be module:attribute or path/to/file.py:attribute, got {target!r} "
            "(e.g. pipeline:job or jobs/pipeline.py:make_job)"
        )
    return source, attribute


def _is_path(source: str) -> bool:
    return source.endswith(".py") or "/" in source or os.sep in source


def _module_for_file(path: Path) -> tuple[str, Path]:
    """``(module name, directory to put on sys.path)`` for a file, its enclosing packages included."""
    parts = [path.stem]
    directory = path.parent
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts), directory


def _put_first_on_path(directory: Path) -> None:
    entry = str(directory)
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)


def _import(name: str, shown: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise TargetError(
                f"no module named {exc.name!r} (looked in the current directory and the installed "
                "packages); give path/to/file.py:attribute, or run from the module's directory"
            ) from None
        raise TargetImportError(f"importing {shown} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise TargetImportError(f"importing {shown} failed: {type(exc).__name__}: {exc}") from exc


def _import_file(source: str) -> ModuleType:
    path = Path(source).resolve()
    if not path.is_file():
        raise TargetError(f"no file {source!r} (TARGET is path/to/file.py:attribute or module:attribute)")
    name, root = _module_for_file(path)
    if not _DOTTED.match(name):
        raise TargetError(f"{source!r} cannot be imported as a module: {name!r} is not a Python module name")
    _put_first_on_path(root)
    module = _import(name, source)
    found = getattr(module, "__file__", None)
    if found is None or Path(found).resolve() != path:
        raise TargetError(
            f"importing {source!r} as module {name!r} found another module of that name ({found}); "
            "rename the file or run it by its module name"
        )
    return module


def load_job(target: str) -> LoadedTarget:
    """The :class:`~cellfrontier.Job` TARGET names (a Job, or a function called without arguments)."""
    source, attribute = _split(target)
    if _is_path(source):
        module = _import_file(source)
    else:
        if not _DOTTED.match(source):
            raise TargetError(f"{source!r} is not a module name (a file must end in .py)")
        _put_first_on_path(Path.cwd())
        module = _import(source, f"module {source!r}")
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise TargetError(f"{source} has no attribute {attribute!r}") from None
    if not isinstance(value, Job) and callable(value):
        try:
            value = value()
        except Exception as exc:
            raise TargetImportError(
                f"calling {source}:{attribute}() failed: {type(exc).__name__}: {exc}"
            ) from exc
    if not isinstance(value, Job):
        raise TargetError(
            f"{source}:{attribute} is {type(value).__name__}, not a cellfrontier Job "
            "(name a Job, or a function that returns one)"
        )
    found: str | None = getattr(module, "__file__", None)
    file = Path(found) if found else None
    single = file is not None and "." not in module.__name__ and file.name != "__init__.py"
    return LoadedTarget(value, module, file if single else None)
