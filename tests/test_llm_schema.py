"""Structured answers: JSON-schema dicts checked here, pydantic models by pydantic; plain data out."""

from __future__ import annotations

import pickle

import pytest

from cellfrontier.llm.schema import AnswerSchema, SchemaViolation
from cellfrontier.testing import fake_answers

FACTS = {
    "title": "Facts",
    "type": "object",
    "properties": {
        "topic": {"type": "string", "minLength": 1},
        "facts": {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 3},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "kind": {"enum": ["a", "b"]},
        "extra": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Note"}]},
    },
    "required": ["topic", "facts", "score"],
    "additionalProperties": False,
    "$defs": {"Note": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
}


def test_a_valid_answer_is_returned_as_plain_data() -> None:
    schema = AnswerSchema(FACTS)
    text = '{"topic": "t", "facts": ["a", "b", "c"], "score": 3, "kind": "b", "extra": {"text": "x"}}'
    assert schema.parse(text) == {
        "topic": "t",
        "facts": ["a", "b", "c"],
        "score": 3,
        "kind": "b",
        "extra": {"text": "x"},
    }
    assert schema.name == "Facts"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"topic": "t", "facts": ["a"', "not JSON"),
        ("[]", "expected object"),
        ('{"facts": ["a", "b", "c"], "score": 1}', "'topic' is missing"),
        ('{"topic": "t", "facts": ["a", "b"], "score": 1}', "at least 3"),
        ('{"topic": "t", "facts": ["a", "b", 3], "score": 1}', r"\$.facts\[2\]"),
        ('{"topic": "t", "facts": ["a", "b", "c"], "score": 11}', "maximum"),
        ('{"topic": "t", "facts": ["a", "b", "c"], "score": true}', "expected integer"),
        ('{"topic": "t", "facts": ["a", "b", "c"], "score": 1, "kind": "z"}', "one of"),
        ('{"topic": "t", "facts": ["a", "b", "c"], "score": 1, "more": 1}', "unexpected"),
        ('{"topic": "t", "facts": ["a", "b", "c"], "score": 1, "extra": {"no": 1}}', "no allowed form"),
        ('{"topic": "", "facts": ["a", "b", "c"], "score": 1}', "at least 1 characters"),
    ],
)
def test_an_invalid_answer_says_where(text: str, where: str) -> None:
    with pytest.raises(SchemaViolation, match=where):
        AnswerSchema(FACTS).parse(text)


def test_the_fake_endpoint_answers_fit_the_schema() -> None:
    for k in range(50):
        value = fake_answers.expected_json("m", f"prompt {k}", FACTS)
        import json

        assert AnswerSchema(FACTS).parse(json.dumps(value)) == value


def test_pydantic_models_validate_and_dump_plain_data() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Note(pydantic.BaseModel):
        text: str

    class Facts(pydantic.BaseModel):
        topic: str
        facts: list[str]
        note: Note | None = None

    schema = AnswerSchema(Facts)
    assert schema.name == "Facts" and schema.json_schema["required"] == ["topic", "facts"]
    assert schema.parse('{"topic": "t", "facts": ["x"], "note": {"text": "n"}}') == {
        "topic": "t",
        "facts": ["x"],
        "note": {"text": "n"},
    }
    with pytest.raises(SchemaViolation, match="facts"):
        schema.parse('{"topic": "t"}')
    with pytest.raises(SchemaViolation):
        schema.parse("not json")
    value = fake_answers.expected_json("m", "p", schema.json_schema)
    import json

    assert schema.parse(json.dumps(value))["topic"] == value["topic"]


def test_a_schema_is_copied_and_pickles() -> None:
    source = {"type": "object", "properties": {"a": {"type": "string"}}}
    schema = AnswerSchema(source)
    source["properties"]["a"]["type"] = "integer"  # the caller's dict changing later changes nothing
    assert schema.parse('{"a": "x"}') == {"a": "x"}
    assert pickle.loads(pickle.dumps(schema)).canonical == AnswerSchema(source).canonical != schema.canonical


def test_other_schema_types_are_refused() -> None:
    with pytest.raises(TypeError, match="pydantic model class or a JSON-schema dict"):
        AnswerSchema(str)
