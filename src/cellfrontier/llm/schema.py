"""Schemas of structured answers: what is sent as ``response_format`` and how answers are checked.

A schema is a pydantic model class (validated by pydantic, which also parses the JSON in one
pass) or a JSON-schema dict.  Dicts are checked here against the keywords that describe plain
records (``type``, ``properties``, ``required``, ``additionalProperties: false``, ``items``,
``minItems``/``maxItems``, ``enum``, ``const``, ``minimum``/``maximum``,
``minLength``/``maxLength``, ``anyOf``/``oneOf``/``allOf`` and local ``$ref``); other keywords
are sent to the server but not checked here.  Either way the column's value is plain JSON
data (dicts, lists, str, numbers), which a job can store in Parquet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["AnswerSchema", "SchemaViolation", "compile_schema"]


class SchemaViolation(ValueError):
    """An answer that is not JSON or does not fit the schema (the text is re-asked with it)."""


class AnswerSchema:
    """A compiled schema: :attr:`json_schema` (sent to the server) and :meth:`parse` (checks an answer)."""

    def __init__(self, schema: Any) -> None:
        self.source = schema
        self.name = "answer"
        self._adapter: Any = None
        if isinstance(schema, Mapping):
            self.json_schema: dict[str, Any] = json.loads(json.dumps(schema))  # a plain, private copy
            self.name = str(self.json_schema.get("title", "answer"))
        elif _is_pydantic_model(schema):
            from pydantic import TypeAdapter

            self._adapter = TypeAdapter(schema)
            self.json_schema = schema.model_json_schema()
            self.name = schema.__name__
        else:
            raise TypeError(
                "json() needs schema= as a pydantic model class or a JSON-schema dict, "
                f"got {type(schema).__name__}"
            )
        self.canonical = json.dumps(self.json_schema, sort_keys=True, separators=(",", ":"))
        """The schema as canonical JSON: what decides the values (a column's identity)."""

    def parse(self, text: str) -> Any:
        """The answer *text* as validated plain JSON data; raises :class:`SchemaViolation`."""
        if self._adapter is not None:
            from pydantic import ValidationError

            try:
                value = self._adapter.validate_json(text)
            except ValidationError as exc:
                raise SchemaViolation(_pydantic_summary(exc)) from None
            return self._adapter.dump_python(value, mode="json")
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise SchemaViolation(f"the answer is not JSON ({exc})") from None
        _check(self.json_schema, self.json_schema, value, "$")
        return value

    def __reduce__(self) -> tuple[Any, ...]:
        return (AnswerSchema, (self.source,))


def compile_schema(schema: Any) -> AnswerSchema:
    return schema if isinstance(schema, AnswerSchema) else AnswerSchema(schema)


def _is_pydantic_model(obj: Any) -> bool:
    return isinstance(obj, type) and hasattr(obj, "model_json_schema") and hasattr(obj, "model_validate_json")


def _pydantic_summary(exc: Any) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "the answer"
        parts.append(f"{where}: {error.get('msg')}")
    return "; ".join(parts)


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "null":
        return value is None
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(kind, (object,)))


def _check(root: Mapping[str, Any], schema: Any, value: Any, path: str) -> None:
    if not isinstance(schema, Mapping):
        return  # True/False schemas and the like: not checked here
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).lstrip("#/").split("/"):
            target = target[part]
        _check(root, target, value, path)
    if "const" in schema and value != schema["const"]:
        raise SchemaViolation(f"{path}: expected {schema['const']!r}, got {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaViolation(f"{path}: expected one of {schema['enum']!r}, got {value!r}")
    for sub in schema.get("allOf", ()):
        _check(root, sub, value, path)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        problems = []
        for sub in branches:
            try:
                _check(root, sub, value, path)
                break
            except SchemaViolation as exc:
                problems.append(str(exc))
        else:
            raise SchemaViolation(f"{path}: fits no allowed form ({'; '.join(problems)})")
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_type_ok(k, value) for k in kinds):
            raise SchemaViolation(
                f"{path}: expected {' or '.join(kinds)}, got {type(value).__name__} {value!r:.60}"
            )
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                raise SchemaViolation(f"{path}: the required field {name!r} is missing")
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(properties))
            if extra:
                raise SchemaViolation(f"{path}: unexpected field(s) {extra!r}")
        for name, sub in properties.items():
            if name in value:
                _check(root, sub, value[name], f"{path}.{name}")
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise SchemaViolation(f"{path}: expected at least {schema['minItems']} items, got {len(value)}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaViolation(f"{path}: expected at most {schema['maxItems']} items, got {len(value)}")
        items = schema.get("items")
        if items is not None:
            for k, item in enumerate(value):
                _check(root, items, item, f"{path}[{k}]")
    elif isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise SchemaViolation(f"{path}: expected at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaViolation(f"{path}: expected at most {schema['maxLength']} characters")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaViolation(f"{path}: {value!r} is below the minimum {schema['minimum']!r}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaViolation(f"{path}: {value!r} is above the maximum {schema['maximum']!r}")
