"""A TLS failure on the way to Kafka (an expired or unknown certificate) is one line naming what to check."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from shared.runtime.kafka_client import connection_refusal
from tests.support.cli import clinic


def certificate(folder: Path, days: int) -> Path:
    """A self-signed certificate for 127.0.0.1 with its key in one PEM file; ``days`` -1 has expired."""
    key, request, pem = folder / f"key{days}.pem", folder / f"req{days}.csr", folder / f"cert{days}.pem"
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request), "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    extensions = folder / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(request), "-signkey", str(key), "-out", str(pem), "-days", str(days), "-extfile", str(extensions)],
                   check=True, capture_output=True)
    pem.write_text(pem.read_text() + key.read_text())
    return pem


@pytest.fixture
async def tls_listener(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[int, Path]]:
    """A TLS server on a free port presenting a certificate valid for ``request.param`` days; it closes
    every connection after the handshake (it is not Kafka)."""
    pem = certificate(tmp_path, request.param)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem)

    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1], pem
    finally:
        server.close()


def through_tls(settings, port: int, cafile: Path):
    return settings.model_copy(update={
        "kafka_bootstrap_servers": f"127.0.0.1:{port}", "kafka_security_protocol": "SASL_SSL", "kafka_ssl_cafile": cafile,
        "kafka_username": "clinic-operator", "kafka_password": SecretStr("tls-Password-3d2c"),
    })


@pytest.mark.parametrize("tls_listener", [-1], indirect=True)
async def test_an_expired_broker_certificate_is_named_with_the_setting_to_check(settings, tls_listener):
    port, pem = tls_listener
    settings = through_tls(settings, port, pem)
    expected = f"TLS with Kafka at 127.0.0.1:{port} failed: certificate has expired; check CLINIC_KAFKA_SSL_CAFILE and the broker's certificate"
    assert await connection_refusal(settings) == expected
    code, out, err = await clinic(settings, "lag")
    assert code == 4 and err.strip() == f"clinic lag: {expected}" and "tls-Password-3d2c" not in out + err


@pytest.mark.parametrize("tls_listener", [30], indirect=True)
async def test_a_valid_certificate_is_not_taken_for_the_reason(settings, tls_listener):
    port, pem = tls_listener
    assert await connection_refusal(through_tls(settings, port, pem)) is None
