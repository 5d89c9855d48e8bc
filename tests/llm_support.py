"""Helpers shared by the model-column tests: J12-LLM's columns, a self-signed certificate, runners.

J12-LLM is J12 with each of its seven cell columns a chat completion to its own model id
(``j12lat-model-<column>``), the upstream values filled into a template; every answer is the
fake endpoint's formula, so the output is known cell by cell (:func:`j12_llm_expected`).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cellfrontier.testing import fake_answers
from cellfrontier.testing.j12 import J12_COLUMNS, j12_expected_columns, j12_generators

T = TypeVar("T")

J12_LLM_TEMPLATES = {
    "h": "Hash the row key {row_key} into 0..999.",
    "bucket": "Which bucket holds {h}?",
    "code": "Write the code for {row_key}-{bucket}-{h}.",
    "label": "Label region {region} with bucket {bucket}.",
    "total": "Price {price} times bucket {bucket} plus one.",
    "sig": "Sign code {code} with {h}.",
    "final": "Join {summary}|{sig}|{order_id}.",
}


def j12_llm_model_id(column: str) -> str:
    return f"j12lat-model-{column}"


def j12_llm_generators(base_url: str, max_concurrency: int = 256, **model_options: Any) -> dict[str, Any]:
    """J12's generators with every cell column a ``ChatModel.text`` column (one model per column)."""
    from cellfrontier.llm import ChatModel

    generators: dict[str, Any] = j12_generators()
    for column, template in J12_LLM_TEMPLATES.items():
        model = ChatModel(
            j12_llm_model_id(column), base_url=base_url, max_concurrency=max_concurrency, **model_options
        )
        generators[column] = model.text(template)
    return generators


def j12_llm_expected(rows: int) -> dict[str, list[Any]]:
    """Every J12-LLM column for rows 0..rows-1: J12's roots, the endpoint's answers, the summary formula."""
    columns = {
        name: values
        for name, values in j12_expected_columns(rows).items()
        if name in ("region", "price", "order_id", "row_key")
    }
    for name, strategy, upstream in J12_COLUMNS:
        if name in columns:
            continue
        if strategy == "full_column":  # summary
            columns[name] = [
                f"{len(code)}:{label}:{total}"
                for code, label, total in zip(
                    columns["code"], columns["label"], columns["total"], strict=True
                )
            ]
            continue
        template = J12_LLM_TEMPLATES[name]
        values = []
        for k in range(rows):
            prompt = template.format(**{up: columns[up][k] for up in upstream})
            values.append(fake_answers.expected_text(j12_llm_model_id(name), prompt))
        columns[name] = values
    return columns


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """Await *fn()* in a new event loop (as a job's shard does), then close that loop's connections."""
    from cellfrontier.llm.transport import close_loop_pools

    async def main() -> T:
        try:
            return await fn()
        finally:
            close_loop_pools()

    return asyncio.run(main())


async def gather_settled(calls: list[Awaitable[Any]]) -> list[Any]:
    """Every call's value or the exception it raised, in order."""
    return list(await asyncio.gather(*calls, return_exceptions=True))


def self_signed_certificate(directory: Path) -> tuple[str, str]:
    """A self-signed certificate for IP 127.0.0.1 and its key, as PEM files in *directory*."""
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cellfrontier test endpoint")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(certfile), str(keyfile)


def values_by_row(results: Mapping[int, Any]) -> list[Any]:
    return [results[k] for k in sorted(results)]
