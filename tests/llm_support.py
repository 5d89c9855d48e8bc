"""Helpers shared by the model-column tests: a self-signed certificate, runners.

J12-LLM itself (its columns, generators and expected output) is
:mod:`cellfrontier.testing.j12_llm`.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


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
