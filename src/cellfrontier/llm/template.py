"""Prompt templates: ``{name}`` fields filled with ``str()`` of a row's values, compiled once.

A template is parsed when its column is made, and rendering is one generated f-string
function (``f"Answer briefly: {row['question']!s}"``), so a call pays no parsing.  Only plain
field names are allowed: attribute access, indexing, conversions and format specs are refused
(a field is a column name, and every value is rendered with ``str()``); ``{{`` and ``}}`` are
literal braces.  :meth:`PromptTemplate.check_inputs` refuses, before any call, a field that is
not among a column's inputs.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Collection, Mapping
from typing import Any

from cellfrontier.llm.errors import TemplateError, TemplateFieldError

__all__ = ["ROW_FIELD", "PromptTemplate"]

ROW_FIELD = "_row"
"""The global row index, which every cell generator's row carries besides its inputs."""


class PromptTemplate:
    """A compiled ``{name}`` template: :meth:`render` maps a row to the prompt text."""

    __slots__ = ("_render", "fields", "source")

    def __init__(self, source: str) -> None:
        if not isinstance(source, str):
            raise TemplateError(f"PromptTemplate() needs a str, got {type(source).__name__}")
        self.source = source
        parts = _parse(source)
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(name for _, name in parts if name is not None))
        self._render = _compile(parts)

    def render(self, row: Mapping[str, Any]) -> str:
        """The prompt for *row*; a field missing from *row* raises :class:`TemplateFieldError`."""
        try:
            return self._render(row)
        except KeyError as exc:
            raise TemplateFieldError(
                f"render() found no value for field {exc.args[0]!r} of template {self.source!r}; "
                f"the row has {sorted(row)!r}"
            ) from None

    def check_inputs(self, column: str, inputs: Collection[str]) -> None:
        """Refuse a field that *column* does not receive: its *inputs* (upstream columns) or ``_row``."""
        available = set(inputs) | {ROW_FIELD}
        unknown = [name for name in self.fields if name not in available]
        if unknown:
            upstream = sorted(set(inputs) - {ROW_FIELD})
            raise TemplateFieldError(
                f"column {column!r}: its prompt template names {', '.join(map(repr, unknown))}, which "
                f"{'is not an upstream column' if len(unknown) == 1 else 'are not upstream columns'} of "
                f"{column!r} (upstream: {upstream!r}); add the edge to the graph or fix the template"
            )

    def __reduce__(self) -> tuple[Any, ...]:
        return (PromptTemplate, (self.source,))

    def __repr__(self) -> str:
        return f"PromptTemplate({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PromptTemplate) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def _parse(source: str) -> list[tuple[str, str | None]]:
    """``(literal text, field name or None)`` pairs, checked."""
    try:
        parsed = list(string.Formatter().parse(source))
    except ValueError as exc:
        raise TemplateError(
            f"PromptTemplate() cannot parse {source!r}: {exc} (write {{{{ and }}}} for braces)"
        ) from None
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None))
            continue
        if not name:
            raise TemplateError(
                f"PromptTemplate() got an empty field {{}} in {source!r}; name a column: {{question}}"
            )
        if conversion or spec or any(c in name for c in ".[]"):
            whole = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise TemplateError(
                f"PromptTemplate() got the field {{{whole}}} in {source!r}; fields are plain column names, "
                "rendered with str() (format the value in an upstream column instead)"
            )
        parts.append((literal, name))
    return parts


def _compile(parts: list[tuple[str, str | None]]) -> Callable[[Mapping[str, Any]], str]:
    """One f-string function; literals and names are bound as default arguments, never spliced in."""
    pieces: list[str] = []
    defaults: dict[str, str] = {}
    for k, (literal, name) in enumerate(parts):
        if literal:
            defaults[f"_l{k}"] = literal
            pieces.append(f"{{_l{k}}}")
        if name is not None:
            defaults[f"_k{k}"] = name
            pieces.append(f"{{row[_k{k}]!s}}")
    params = "".join(f", {arg}={arg}" for arg in defaults)
    source = f"def render(row{params}):\n    return f'{''.join(pieces)}'\n"
    namespace: dict[str, Any] = dict(defaults)
    exec(source, namespace)  # only generated names appear in the source; the text comes in as values
    return namespace["render"]
