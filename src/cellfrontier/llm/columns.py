"""Model columns: the generator objects :meth:`ChatModel.text` and :meth:`ChatModel.json` return.

A column is what a job already accepts as an async cell generator: ``await column(row)`` with
``row`` mapping the column's upstream columns (and ``"_row"``) to values.  The request body
is prepared once, up to the user message's text, so a call encodes only the prompt (one
``encode_basestring_ascii``: the one JSON encode per call) and decodes the answer once.

Hooks for a runner (``cellfrontier.Job`` calls them by name; another runner may too):

- ``check_inputs(column, inputs)``: before any call, refuse a template field that is not among
  the column's *inputs* (its upstream columns and their aliases); :func:`check_model_columns`
  does it for every model column of a graph;
- ``usage``: this column's :class:`~cellfrontier.llm.usage.Usage` in this process
  (``as_dict()`` to save, ``add()`` to restore a checkpoint's counts), and ``usage_group``:
  the model its counts add up under;
- ``share_caps(share)``: the part of the model's ``max_concurrency`` this process may use
  (a job on several processes divides it; None: all of it);
- ``aclose_loop()``: close the running loop's connections when a loop's work is done;
- ``identity()``: what decides the column's values, as canonical JSON (model, kind, template,
  system message, parameters, schema), never the endpoint or the key: a fingerprint input;
- ``timeout``: seconds one call may take for a whole answer.

A column pickles without its usage and compiled parts (a worker counts its own calls) and
rebuilds them when unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, Protocol

from cellfrontier.llm.errors import InvalidAnswerError, TemplateError
from cellfrontier.llm.schema import AnswerSchema, SchemaViolation, compile_schema
from cellfrontier.llm.template import ROW_FIELD, PromptTemplate
from cellfrontier.llm.usage import Usage

__all__ = ["CallingModel", "JsonColumn", "ModelColumn", "TextColumn", "check_model_columns"]


class CallingModel(Protocol):
    """What a column needs of the model that made it (:class:`~cellfrontier.llm.model.ChatModel`).

    A protocol rather than an import, so that the model module (which makes columns) and this
    one (whose columns call the model) do not import each other.
    """

    model: str
    timeout: float

    async def call(self, body: bytes, usage: Usage, timeout: float) -> str: ...

    def register(self, column: ModelColumn) -> None: ...

    def share_caps(self, share: Callable[[int], int] | None) -> None: ...

    async def aclose(self) -> None: ...


RESPONSE_FORMATS = ("json_schema", "json_object", "none")
REASK = "That answer is not valid: {error}. Answer again with only the JSON value, matching the schema."
SCHEMA_INSTRUCTION = "Answer with only a JSON value matching this JSON schema: {schema}"


class ModelColumn:
    """What text and JSON columns share: the template, the prepared request, usage and the hooks."""

    kind = "text"

    def __init__(
        self,
        model: CallingModel,
        template: str,
        *,
        system: str | None,
        params: Mapping[str, Any],
        timeout: float | None,
    ) -> None:
        if system is not None and not isinstance(system, str):
            raise TemplateError(f"{self.kind}() needs system as a str, got {type(system).__name__}")
        if timeout is not None and (not isinstance(timeout, (int, float)) or not timeout > 0):
            raise ValueError(f"{self.kind}() needs timeout as seconds > 0, got {timeout!r}")
        self.model = model
        self.template = PromptTemplate(template)
        self.system = system
        self.params = dict(params)
        self.timeout = float(timeout) if timeout is not None else model.timeout
        self._prepare()

    def _prepare(self) -> None:
        """Compile the request's fixed parts; register with the model; start counting."""
        self.usage = Usage()
        self._render = self.template._render
        self._request = self._request_fields()
        messages = self._fixed_messages()
        head = json.dumps({**self._request, "messages": messages})  # ...}]} : cut before the last "]}"
        opening = head[: -len("]}")] + (", " if messages else "") + '{"role": "user", "content": '
        self._prefix = opening.encode()
        self.model.register(self)

    def _request_fields(self) -> dict[str, Any]:
        return {"model": self.model.model, **self.params}

    def _fixed_messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}] if self.system is not None else []

    def _prompt(self, row: Mapping[str, Any]) -> str:
        try:
            return self._render(row)
        except KeyError:
            return self.template.render(row)  # raises TemplateFieldError naming the field

    async def __call__(self, row: Mapping[str, Any]) -> Any:
        body = self._prefix + encode_basestring_ascii(self._prompt(row)).encode() + b"}]}"
        return await self.model.call(body, self.usage, self.timeout)

    # -- hooks

    @property
    def fields(self) -> tuple[str, ...]:
        """The template's fields, in order of first appearance."""
        return self.template.fields

    def check_inputs(self, column: str, inputs: Collection[str]) -> None:
        """Refuse, before any call, a template field that *column* does not get among its *inputs*."""
        self.template.check_inputs(column, inputs)

    @property
    def usage_group(self) -> str:
        """The model whose usage this column's counts add up to."""
        return self.model.model

    def share_caps(self, share: Callable[[int], int] | None) -> None:
        """Use ``share(cap)`` of the model's ``max_concurrency`` in this process (None: all of it)."""
        self.model.share_caps(share)

    async def aclose_loop(self) -> None:
        """Close the running loop's connections of the model (the column stays usable)."""
        await self.model.aclose()

    def identity(self) -> str:
        """What decides this column's values, as canonical JSON (no endpoint, no key)."""
        return json.dumps(self._identity_fields(), sort_keys=True, separators=(",", ":"))

    def _identity_fields(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model.model,
            "template": self.template.source,
            "system": self.system,
            "params": self.params,
        }

    # -- pickling and display

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in ("usage", "_render", "_request", "_prefix"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._prepare()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model.model!r}, template={self.template.source!r})"


class TextColumn(ModelColumn):
    """A column whose value is the model's text answer (see :meth:`ChatModel.text`)."""

    kind = "text"


class JsonColumn(ModelColumn):
    """A column whose value is the model's JSON answer, validated (see :meth:`ChatModel.json`)."""

    kind = "json"

    def __init__(
        self,
        model: CallingModel,
        template: str,
        schema: Any,
        *,
        system: str | None,
        params: Mapping[str, Any],
        timeout: float | None,
        max_validation_retries: int,
        response_format: str,
    ) -> None:
        if response_format not in RESPONSE_FORMATS:
            raise ValueError(f"json() needs response_format in {RESPONSE_FORMATS!r}, got {response_format!r}")
        if (
            isinstance(max_validation_retries, bool)
            or not isinstance(max_validation_retries, int)
            or max_validation_retries < 0
        ):
            raise ValueError(
                f"json() needs max_validation_retries as an int >= 0, got {max_validation_retries!r}"
            )
        self.schema: AnswerSchema = compile_schema(schema)
        self.response_format = response_format
        self.max_validation_retries = max_validation_retries
        super().__init__(model, template, system=system, params=params, timeout=timeout)

    def _request_fields(self) -> dict[str, Any]:
        fields = super()._request_fields()
        if self.response_format == "json_schema":
            fields["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": _schema_name(self.schema.name), "schema": self.schema.json_schema},
            }
        elif self.response_format == "json_object":
            fields["response_format"] = {"type": "json_object"}
        return fields

    def _fixed_messages(self) -> list[dict[str, str]]:
        if self.response_format == "json_schema":
            return super()._fixed_messages()
        instruction = SCHEMA_INSTRUCTION.format(schema=self.schema.canonical)
        system = instruction if self.system is None else f"{self.system}\n\n{instruction}"
        return [{"role": "system", "content": system}]

    async def __call__(self, row: Mapping[str, Any]) -> Any:
        prompt = self._prompt(row)
        body = self._prefix + encode_basestring_ascii(prompt).encode() + b"}]}"
        model, usage = self.model, self.usage
        answer = await model.call(body, usage, self.timeout)
        try:
            return self.schema.parse(answer)
        except SchemaViolation as exc:
            error = exc
        messages = [*self._fixed_messages(), {"role": "user", "content": prompt}]
        for _ in range(self.max_validation_retries):
            usage.invalid_answers += 1
            messages += [
                {"role": "assistant", "content": answer},
                {"role": "user", "content": REASK.format(error=error)},
            ]
            body = json.dumps({**self._request, "messages": messages}).encode()
            answer = await model.call(body, usage, self.timeout)
            try:
                return self.schema.parse(answer)
            except SchemaViolation as exc:
                error = exc
        usage.invalid_answers += 1
        raise InvalidAnswerError(
            f"model {model.model!r}: the answer stayed invalid after {self.max_validation_retries} "
            f"re-ask(s): {error}"
        )

    def _identity_fields(self) -> dict[str, Any]:
        fields = super()._identity_fields()
        fields.update(
            schema=self.schema.canonical,
            response_format=self.response_format,
            max_validation_retries=self.max_validation_retries,
        )
        return fields


def _schema_name(name: str) -> str:
    """OpenAI wants ``[a-zA-Z0-9_-]{1,64}`` as the schema's name."""
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64]
    return cleaned or "answer"


def check_model_columns(graph: Any, generators: Mapping[str, Any]) -> None:
    """Call ``check_inputs`` of every generator that has one with its column's inputs in *graph*.

    A column's inputs are its upstream columns and their side-effect aliases (what a job puts
    in the row), so a template naming anything else is refused before any call.
    """
    aliases: dict[str, list[str]] = {}
    for alias, producer in graph.side_effects.items():
        aliases.setdefault(producer, []).append(alias)
    for column, generator in generators.items():
        check = getattr(generator, "check_inputs", None)
        if check is None:
            continue
        upstream = graph.get_upstream_columns(column)
        inputs = {ROW_FIELD, *upstream}
        for name in upstream:
            inputs.update(aliases.get(name, ()))
        check(column, inputs)
