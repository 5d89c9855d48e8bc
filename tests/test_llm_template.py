"""Prompt templates: compiled once, fields checked against a column's inputs before any call."""

from __future__ import annotations

import pickle

import pytest
from conftest import make_graph

from cellfrontier import CellFrontierError
from cellfrontier.llm import PromptTemplate, TemplateError, TemplateFieldError, check_model_columns

pytest.importorskip("httptools")


def test_render_fills_fields_with_str_of_each_value() -> None:
    template = PromptTemplate("Q{{literal}}: {question} ({n}) {question}")
    assert template.fields == ("question", "n")
    assert template.render({"question": "why?", "n": 3, "_row": 7}) == "Q{literal}: why? (3) why?"
    assert template.render({"question": None, "n": 1.5}) == "Q{literal}: None (1.5) None"


def test_literal_text_is_never_code() -> None:
    text = "quotes ' \" and f'{{x}}' and a newline\n and backslash \\ and {{}}"
    assert PromptTemplate(text).render({}) == text.replace("{{", "{").replace("}}", "}")


def test_a_field_missing_from_the_row_names_it() -> None:
    with pytest.raises(TemplateFieldError, match="'topic'") as caught:
        PromptTemplate("About {topic}").render({"question": 1})
    assert isinstance(caught.value, (KeyError, ValueError, CellFrontierError))


@pytest.mark.parametrize("bad", ["{a.b}", "{a[0]}", "{}", "{a!r}", "{a:>4}", "{a", "a}"])
def test_fields_that_are_not_plain_names_are_refused(bad: str) -> None:
    with pytest.raises(TemplateError, match=r"PromptTemplate\(\)"):
        PromptTemplate(bad)


def test_check_inputs_refuses_a_field_that_is_not_upstream() -> None:
    template = PromptTemplate("{question} and {topic} at {_row}")
    template.check_inputs("answer", ["question", "topic"])  # _row is always there
    with pytest.raises(TemplateFieldError) as caught:
        template.check_inputs("answer", ["question"])
    message = str(caught.value)
    assert "'answer'" in message and "'topic'" in message and "['question']" in message


def test_check_model_columns_uses_the_graph_upstreams_and_their_aliases() -> None:
    from cellfrontier.llm import ChatModel

    graph = make_graph(
        [("seed", "full_column"), ("question", "cell_by_cell"), ("answer", "cell_by_cell")],
        [("seed", "question"), ("question", "answer")],
        [("question__meta", "question")],
    )
    model = ChatModel("m", base_url="http://127.0.0.1:9/v1")
    ok = {"seed": lambda b: b, "question": lambda r: r, "answer": model.text("{question} {question__meta}")}
    check_model_columns(graph, ok)
    bad = dict(ok, answer=model.text("{question} {seed} {topic}"))  # seed is two steps up
    with pytest.raises(TemplateFieldError, match="'seed', 'topic'"):
        check_model_columns(graph, bad)


def test_a_template_pickles_and_compares_by_source() -> None:
    template = PromptTemplate("About {topic}")
    copy = pickle.loads(pickle.dumps(template))
    assert copy == template and hash(copy) == hash(template)
    assert copy.render({"topic": "x"}) == "About x"
