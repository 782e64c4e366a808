"""How every Kafka client of the project connects: one place turns the settings into client options.

The runtime's broker (FastStream's ``security=``), its admin client, the CLI's readers and writers, the
event client, the benchmarks and the tests all get their aiokafka clients from ``Kafka``, so a
deployment that sets ``CLINIC_KAFKA_SECURITY_PROTOCOL=SASL_SSL`` (and a user, password and CA) reaches
every one of them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.contracts import DLQ_SUFFIX
from shared.settings import Settings

DAY_MS = 24 * 60 * 60 * 1000


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A verifying TLS context for SSL and SASL_SSL (the system's CAs unless a CA file is given)."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    if settings.kafka_ssl_certfile:
        password = settings.kafka_ssl_key_password.get_secret_value() if settings.kafka_ssl_key_password else None
        keyfile = str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None
        context.load_cert_chain(str(settings.kafka_ssl_certfile), keyfile, password)
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured security protocol (nothing for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        options["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL_"):
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_username,
            sasl_plain_password=settings.kafka_password.get_secret_value() if settings.kafka_password else None,
        )
    return options


_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def broker_security(settings: Settings) -> BaseSecurity | None:
    """The same options as FastStream's ``security=`` object for ``KafkaBroker``."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if not protocol.startswith("SASL_"):
        return BaseSecurity(ssl_context=context, use_ssl=True)
    password = settings.kafka_password.get_secret_value() if settings.kafka_password else ""
    return _SASL[settings.kafka_sasl_mechanism](settings.kafka_username or "", password, ssl_context=context, use_ssl=context is not None)


@dataclass(frozen=True)
class Kafka:
    """Where Kafka is and how to connect to it; makes every aiokafka client of the project."""

    bootstrap: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, settings: Settings | str) -> Kafka:
        """From the settings; a bare bootstrap string means PLAINTEXT (local development and tests)."""
        if isinstance(settings, str):
            return cls(settings)
        return cls(settings.kafka_bootstrap_servers, MappingProxyType(client_options(settings)))

    def producer(self, **kwargs: Any) -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers=self.bootstrap, **self.options, **kwargs)

    def consumer(self, *topics: str, **kwargs: Any) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(*topics, bootstrap_servers=self.bootstrap, **self.options, **kwargs)

    def admin(self, **kwargs: Any) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.options, **kwargs)

    def __str__(self) -> str:
        return self.bootstrap


log = logging.getLogger("clinic.kafka")

CLOSE_SECONDS = 10.0
"""How long closing a short-lived Kafka client may take before it is abandoned (see ``close_within``)."""


async def close_within(client: Any, what: str, seconds: float | None = None) -> None:
    """Close (``close()``) or stop (``stop()``) a short-lived aiokafka client, giving up after ``seconds``.

    aiokafka's client close waits, without a timeout, for every connection it ever opened to report
    itself closed; a connection whose attempt never completed (a broker slow to accept while it
    creates topics under load) never does, and the caller hung with it: a fresh-clone test run saw a
    publish wait 300 s in the event client's topic check, on ``asyncio.gather`` of those closes. Its
    sockets are closed either way; only the wait is abandoned, with a warning."""
    try:
        async with asyncio.timeout(CLOSE_SECONDS if seconds is None else seconds):
            await (client.close() if hasattr(client, "close") else client.stop())
    except TimeoutError:
        log.warning("kafka client close abandoned", extra={"client": what, "seconds": CLOSE_SECONDS if seconds is None else seconds})


async def check_group(kafka: Kafka, group: str) -> None:
    """Raise ``GroupAuthorizationFailedError(group)`` when this principal may not use the consumer group.
    Checked at start-up: a consumer refused its group only logs it in the background, and stays idle."""
    admin = kafka.admin(client_id="clinic-group-check")
    try:
        await admin.start()
        await admin.find_coordinator(group)
    except GroupAuthorizationFailedError:
        raise GroupAuthorizationFailedError(group) from None
    finally:
        await close_within(admin, "group check")


def topic_configs(settings: Settings, topics: list[str]) -> dict[str, dict[str, str]]:
    """Explicit retention (dead letters kept longer, for an operator to act) and min.insync.replicas:
    with three replicas an acks=all write survives the loss of one broker without going unacknowledged."""
    isr = "2" if settings.topic_replication >= 3 else "1"
    configs = {}
    for topic in topics:
        days = settings.dlq_retention_days if topic.endswith(DLQ_SUFFIX) else settings.topic_retention_days
        configs[topic] = {"retention.ms": str(int(days * DAY_MS)), "min.insync.replicas": isr}
    return configs


def refusal(error: BaseException, settings: Settings | None = None) -> str | None:
    """One line saying which setting or grant is missing when Kafka refused us; None for other errors.
    Never contains a secret (the password is not known to the error, the user name is not a secret)."""
    user = (settings.kafka_username if settings else None) or "?"
    principal = f"User:{user}"
    mechanism = settings.kafka_sasl_mechanism if settings else "SASL"
    detail = _detail(error)
    if isinstance(error, (AuthenticationFailedError, SaslAuthenticationFailed)):
        return f"Kafka refused the credentials of {principal} ({mechanism}): check CLINIC_KAFKA_USERNAME and CLINIC_KAFKA_PASSWORD"
    if isinstance(error, UnsupportedSaslMechanismError):
        return f"Kafka does not accept CLINIC_KAFKA_SASL_MECHANISM={mechanism} on this listener"
    if isinstance(error, TopicAuthorizationFailedError):
        return f"Kafka denied {principal} access to topic {detail or '(see the ACLs)'}: no grant for it (clinic acl list shows what each principal may do)"
    if isinstance(error, GroupAuthorizationFailedError):
        return f"Kafka denied {principal} the consumer group {detail or '(see the ACLs)'}: no READ grant on it (clinic acl list)"
    if isinstance(error, ClusterAuthorizationFailedError):
        return f"Kafka denied {principal} a cluster operation: that needs the admin principal (clinic acl list)"
    if isinstance(error, TransactionalIdAuthorizationFailed):
        return f"Kafka denied {principal} a transactional or idempotent write: no WRITE grant on any topic (clinic acl list)"
    return None


async def denial(error: BaseException, settings: Settings) -> str | None:
    """``refusal``, and for a connection that failed, whether the broker refused to let us in."""
    return refusal(error, settings) or (await connection_refusal(settings) if isinstance(error, KafkaConnectionError) else None)


async def connection_refusal(settings: Settings) -> str | None:
    """Why Kafka would not let us in, when bootstrapping failed: aiokafka logs the broker's answer (bad
    credentials, a TLS failure) and raises only "Unable to bootstrap". One connection to the first
    bootstrap server, made the same way, tells. None when that is not the reason."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    host, _, port = settings.kafka_bootstrap_servers.split(",")[0].strip().rpartition(":")
    try:
        connection = await create_conn(host, int(port), client_id="clinic-diagnosis", request_timeout_ms=5000, **client_options(settings))
    except ssl.SSLCertVerificationError as error:
        return f"TLS with Kafka at {host}:{port} failed: {error.verify_message}; check CLINIC_KAFKA_SSL_CAFILE and the broker's certificate"
    except ssl.SSLError as error:
        return f"TLS with Kafka at {host}:{port} failed ({error.reason}); check CLINIC_KAFKA_SSL_* and that the listener speaks TLS"
    except Exception as error:
        return refusal(error, settings)
    connection.close()
    return None


def _detail(error: BaseException) -> str:
    text = " ".join(str(a) for a in error.args if a).strip()
    return text.split(":", 1)[-1].strip() if text else ""
