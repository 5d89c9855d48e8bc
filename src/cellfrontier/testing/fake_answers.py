"""What the fake model endpoint answers: pure functions of (model, content).

Every answer, latency, token count and failure of :mod:`cellfrontier.testing.fake_endpoint`
is computed here from the request alone, so a test (or a benchmark's checker) knows each
output in advance and two runs that send the same prompts get the same dataset::

    d = blake2b(model.encode() + b"\\0" + content.encode(), digest_size=12).digest()
    latency = scale * 0.050 * (0.5 + int.from_bytes(d[:8], "big") / 2**64)   # 25-75 ms
    answer  = "v" + d[8:].hex()

``content`` is the request's *key content*: the last message's text, except in a conversation
that already holds an assistant turn (a structured-output column asking again after an
invalid answer), where it is the user message before that first assistant turn, so that a
re-ask counts as another attempt of the same request.

Which requests the failure switches hit is decided by :func:`switch_fraction`, a second
digest of the same pair, uniform in [0, 1): the switches take disjoint bands of it
(``[0, fail_share)`` fail with 500, the next ``hang_share`` hang, the next
``invalid_json_share`` answer invalid JSON), so a test can list the affected requests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "MEAN_LATENCY",
    "answer_digest",
    "completion_tokens",
    "expected_json",
    "expected_latency",
    "expected_text",
    "key_content",
    "message_text",
    "prompt_tokens",
    "switch_band",
    "switch_fraction",
]

MEAN_LATENCY = 0.050
"""Mean latency of an answer at latency scale 1 (seconds): 25-75 ms, like J12-LAT's."""

_TWO_64 = float(2**64)


def answer_digest(model: str, content: str) -> bytes:
    """The 12-byte digest every answer of *model* to *content* derives from."""
    return hashlib.blake2b(model.encode() + b"\0" + content.encode(), digest_size=12).digest()


def expected_text(model: str, content: str) -> str:
    """The text answer: ``"v"`` and the digest's last four bytes in hex."""
    return "v" + answer_digest(model, content)[8:].hex()


def expected_latency(model: str, content: str, scale: float = 1.0) -> float:
    """Seconds the endpoint waits before answering: ``scale * 0.050 * (0.5 + u)``."""
    d = answer_digest(model, content)
    return scale * MEAN_LATENCY * (0.5 + int.from_bytes(d[:8], "big") / _TWO_64)


def switch_fraction(model: str, content: str) -> float:
    """A second uniform draw in [0, 1) from the request, which picks the requests a switch hits."""
    d = hashlib.blake2b(model.encode() + b"\0" + content.encode(), digest_size=8, person=b"switch").digest()
    return int.from_bytes(d, "big") / _TWO_64


def switch_band(fraction: float, fail_share: float, hang_share: float, invalid_json_share: float) -> str:
    """Which switch a request with *fraction* falls under: ``fail``, ``hang``, ``invalid`` or ``""``."""
    if fraction < fail_share:
        return "fail"
    if fraction < fail_share + hang_share:
        return "hang"
    if fraction < fail_share + hang_share + invalid_json_share:
        return "invalid"
    return ""


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one chat message (a string, or the text parts of a list of content parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return ""


def key_content(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text the answer derives from (see the module docstring): a re-ask keeps its request's key."""
    for k, message in enumerate(messages):
        if message.get("role") == "assistant":
            for earlier in reversed(messages[:k]):
                if earlier.get("role") == "user":
                    return message_text(earlier)
            break
    return message_text(messages[-1]) if messages else ""


def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Prompt tokens reported: the whitespace-separated words of every message."""
    return sum(len(message_text(m).split()) for m in messages)


def completion_tokens(answer: str) -> int:
    """Completion tokens reported: one per four characters of the answer, at least one."""
    return max(1, (len(answer) + 3) // 4)


def expected_json(model: str, content: str, schema: Mapping[str, Any] | None) -> Any:
    """The JSON value answered for a JSON request: fits *schema* (None: ``{"answer": text}``).

    Values derive from the request's digest and the field's path, so each field differs and
    is known in advance.  The supported schema words are the ones JSON-schema generators emit
    for plain records: ``type`` (object, array, string, integer, number, boolean, null),
    ``properties``, ``items``, ``minItems``/``maxItems``, ``enum``, ``const``,
    ``minimum``/``maximum``, ``anyOf``/``oneOf``/``allOf`` (the first branch) and local
    ``$ref`` into ``$defs``/``definitions``.
    """
    seed = answer_digest(model, content)
    if schema is None:
        return {"answer": "v" + seed[8:].hex()}
    return _fit(schema, schema, seed, "")


def _draw(seed: bytes, path: str) -> int:
    return int.from_bytes(hashlib.blake2b(seed + path.encode(), digest_size=8).digest(), "big")


def _resolve(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _fit(root: Mapping[str, Any], schema: Mapping[str, Any], seed: bytes, path: str) -> Any:
    if "$ref" in schema:
        return _fit(root, _resolve(root, schema["$ref"]), seed, path)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        choices = list(schema["enum"])
        return choices[_draw(seed, path) % len(choices)]
    for combiner in ("anyOf", "oneOf", "allOf"):
        if combiner in schema:
            return _fit(root, schema[combiner][0], seed, path)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    draw = _draw(seed, path)
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _fit(root, sub, seed, f"{path}/{name}") for name, sub in properties.items()}
    if kind == "array":
        low = int(schema.get("minItems", 3 if "maxItems" not in schema else 1))
        high = int(schema.get("maxItems", max(low, 3)))
        count = min(max(low, 3), high)
        items = schema.get("items", {"type": "string"})
        return [_fit(root, items, seed, f"{path}/{k}") for k in range(count)]
    if kind == "integer":
        low = int(schema.get("minimum", 0))
        high = int(schema.get("maximum", low + 999))
        return low + draw % (high - low + 1)
    if kind == "number":
        bottom = float(schema.get("minimum", 0.0))
        top = float(schema.get("maximum", bottom + 1.0))
        return bottom + (top - bottom) * (draw / _TWO_64)
    if kind == "boolean":
        return bool(draw & 1)
    if kind == "null":
        return None
    return f"v{draw:016x}"
