"""Model columns: chat-completion calls to OpenAI-compatible endpoints as a job's cell generators.

    from cellfrontier.llm import ChatModel

    model = ChatModel("meta/llama-3.1-8b-instruct", base_url="http://localhost:8000/v1",
                      max_concurrency=512)           # key: api_key=... or $OPENAI_API_KEY
    generators = {
        "answer": model.text("Answer briefly: {question}", temperature=0.7, max_tokens=256),
        "facts": model.json("List three facts about {topic}", schema=Facts),
    }

Needs the ``llm`` extra (``pip install 'cellfrontier[llm]'``: httptools; pydantic for
pydantic schemas).  :mod:`cellfrontier.testing.fake_endpoint` is an endpoint for tests.
"""

from cellfrontier.llm.columns import JsonColumn, ModelColumn, TextColumn, check_model_columns
from cellfrontier.llm.errors import (
    InvalidAnswerError,
    ModelCallError,
    ModelConnectionError,
    ModelRequestError,
    ModelServerError,
    ModelTimeoutError,
    RateLimitTimeoutError,
    RetryableModelError,
    TemplateError,
    TemplateFieldError,
)
from cellfrontier.llm.limiter import AdaptiveLimiter
from cellfrontier.llm.model import ChatModel
from cellfrontier.llm.template import PromptTemplate
from cellfrontier.llm.usage import USAGE_FIELDS, Usage

__all__ = [
    "USAGE_FIELDS",
    "AdaptiveLimiter",
    "ChatModel",
    "InvalidAnswerError",
    "JsonColumn",
    "ModelCallError",
    "ModelColumn",
    "ModelConnectionError",
    "ModelRequestError",
    "ModelServerError",
    "ModelTimeoutError",
    "PromptTemplate",
    "RateLimitTimeoutError",
    "RetryableModelError",
    "TemplateError",
    "TemplateFieldError",
    "TextColumn",
    "Usage",
    "check_model_columns",
]
