"""Settings every service reads from the environment (defaults in one place)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contracts.base import MAX_EVENT_BYTES

KafkaProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
# Docker and Kubernetes mount secrets as files; a file named like a setting's environment variable
# (e.g. /run/secrets/CLINIC_KAFKA_PASSWORD or MONGODB_URL) is read as that setting.
SECRETS_DIR = os.environ.get("CLINIC_SECRETS_DIR") or ("/run/secrets" if os.path.isdir("/run/secrets") else None)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLINIC_", extra="ignore", populate_by_name=True, secrets_dir=SECRETS_DIR, hide_input_in_errors=True
    )

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
        description="Comma-separated Kafka bootstrap servers.",
    )
    kafka_security_protocol: KafkaProtocol = Field(
        "PLAINTEXT", description="How Kafka clients connect: PLAINTEXT (local only), SASL_PLAINTEXT, SSL or SASL_SSL (production)."
    )
    kafka_sasl_mechanism: SaslMechanism = Field("SCRAM-SHA-512", description="SASL mechanism for the SASL_* protocols.")
    kafka_username: str | None = Field(None, description="SASL user name: this process's Kafka principal (User:<name>).")
    kafka_password: SecretStr | None = Field(None, description="SASL password of that user.")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle (PEM) that signed the brokers' certificates; the system's CAs when unset.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (PEM) for brokers that require mutual TLS.")
    kafka_ssl_keyfile: Path | None = Field(None, description="Private key (PEM) of the client certificate.")
    kafka_ssl_key_password: SecretStr | None = Field(None, description="Password of that private key, if it is encrypted.")
    mongodb_url: SecretStr = Field(
        SecretStr("mongodb://127.0.0.1:27017/"),
        validation_alias=AliasChoices("MONGODB_URL", "mongodb_url"),
        description="MongoDB (or FerretDB) connection string with this service's own user, e.g. "
        "mongodb://clinic-inventory:<password>@host/clinic_inventory?authSource=clinic_inventory&tls=true; each service uses its own database.",
    )
    topic_prefix: str = Field("", description="Prefix for every topic and consumer group (one deployment per prefix).")
    database_prefix: str = Field("clinic_", description="Each service's database is <prefix><service>.")
    topic_partitions: int = Field(3, ge=1, description="Partitions for topics the service creates.")
    topic_replication: int = Field(1, ge=1, description="Replication factor for topics the service creates (3 in production).")
    topic_retention_days: float = Field(7.0, gt=0, description="How long event topics keep records (retention.ms of the topics created).")
    dlq_retention_days: float = Field(30.0, gt=0, description="How long dead-letter topics keep records: time for an operator to act.")
    log_patient_key: SecretStr | None = Field(
        None, description="When set, logs carry a keyed hash (HMAC-SHA256) of the patient id instead of the id (patient=h:<hex>)."
    )
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field("text", description="One line per record, key=value or JSON.")
    relay_poll_seconds: float = Field(0.5, gt=0, description="Outbox relay poll interval when idle.")
    relay_batch_size: int = Field(500, ge=1, description="Outbox rows published per relay round.")
    consume_batch_size: int = Field(200, ge=1, description="Records taken from Kafka at once; their inbox updates and offset commit are shared.")
    consume_wait_ms: int = Field(
        500, ge=1, description="How long one poll of the consumer waits when no record is there (a record that arrives is taken without waiting for the poll to end)."
    )
    consume_concurrency: int | None = Field(
        None, ge=1,
        description="Patients handled at once within a batch (one patient's events stay in order). Unset: the service's own choice "
        "(scheduling 1: its placements race for the same calendar cells; the others 8).",
    )
    kafka_metadata_max_age_ms: int = Field(
        30_000, ge=1000, description="How often Kafka clients refresh topic metadata even when nothing forces it (aiokafka's default is 5 minutes)."
    )
    consumer_session_timeout_ms: int = Field(10_000, ge=1000, description="A consumer not heard from for this long (a killed process) is removed from its group.")
    consumer_heartbeat_interval_ms: int = Field(3_000, ge=100, description="Consumer heartbeat interval (a third of the session timeout or less).")
    consumer_rebalance_timeout_ms: int = Field(
        60_000, ge=1000, description="How long the group waits for its members to rejoin a rebalance (time for them to finish and commit the records in hand)."
    )
    consumer_max_poll_interval_ms: int = Field(300_000, ge=1000, description="A consumer whose batch takes longer than this leaves the group (its partitions go to the others).")
    consumer_revoke_wait_seconds: float = Field(
        20.0, gt=0, description="On a rebalance, how long the records already started may take to finish before the partitions are given up uncommitted."
    )
    consumer_stall_seconds: float = Field(
        60.0, gt=0, description="Readiness turns false when one batch or one rebalance has taken longer than this (the consumer is not making progress)."
    )
    max_event_bytes: int = Field(
        MAX_EVENT_BYTES, ge=1024, le=16 * 1024 * 1024,
        description="Largest record (value plus headers, in bytes) a service accepts; larger ones are dead-lettered as `oversized` before they are parsed.",
    )
    retry_max_seconds: float = Field(30.0, gt=0, description="Cap of the backoff between retries of transient failures.")
    handler_attempts: int = Field(3, ge=1, description="Attempts for a non-transient handler error before it is dead-lettered.")
    http_host: str = Field("127.0.0.1", description="Address of the health and metrics endpoints.")
    http_port: int | None = Field(None, ge=0, le=65535, description="Port of the health and metrics endpoints (off when unset).")
    clock_offset_seconds: float = Field(0.0, description="Shifts the service clock (demos and end-to-end tests only).")
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices("CLINIC_OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "otel_exporter_otlp_endpoint"),
        description="OTLP/HTTP base URL of an OpenTelemetry collector (e.g. http://collector:4318): traces are exported there. Off when unset.",
    )
    instance_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        description="Names this process in logs and Kafka client ids.",
    )

    @model_validator(mode="after")
    def _consumer_timing(self) -> Settings:
        if self.consumer_heartbeat_interval_ms >= self.consumer_session_timeout_ms:
            raise ValueError("CLINIC_CONSUMER_HEARTBEAT_INTERVAL_MS must be below CLINIC_CONSUMER_SESSION_TIMEOUT_MS")
        if self.consumer_revoke_wait_seconds * 1000 >= self.consumer_rebalance_timeout_ms:
            raise ValueError("CLINIC_CONSUMER_REVOKE_WAIT_SECONDS must be shorter than CLINIC_CONSUMER_REBALANCE_TIMEOUT_MS, or the group drops the member that waits")
        problem = kafka_security_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    def database(self, service: str) -> str:
        return f"{self.database_prefix}{service}"

    def group_id(self, service: str) -> str:
        return f"{self.topic_prefix}clinic.{service}"


def kafka_security_problem(settings: Settings) -> str | None:
    """The one missing or contradictory Kafka security setting, named as its environment variable."""
    protocol = settings.kafka_security_protocol
    sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
    if sasl and not settings.kafka_username:
        return f"CLINIC_KAFKA_USERNAME is required with CLINIC_KAFKA_SECURITY_PROTOCOL={protocol}"
    if sasl and not (settings.kafka_password and settings.kafka_password.get_secret_value()):
        return f"CLINIC_KAFKA_PASSWORD is required with CLINIC_KAFKA_SECURITY_PROTOCOL={protocol}"
    if not sasl and (settings.kafka_username or settings.kafka_password):
        return f"CLINIC_KAFKA_USERNAME/CLINIC_KAFKA_PASSWORD are set but CLINIC_KAFKA_SECURITY_PROTOCOL={protocol} sends no credentials; use SASL_SSL (or SASL_PLAINTEXT)"
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        path = getattr(settings, name)
        if path is None:
            continue
        if not tls:
            return f"CLINIC_{name.upper()} is set but CLINIC_KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS; use SASL_SSL (or SSL)"
        if not path.is_file():
            return f"CLINIC_{name.upper()}: no readable file at {path}"
    if settings.kafka_ssl_keyfile and not settings.kafka_ssl_certfile:
        return "CLINIC_KAFKA_SSL_KEYFILE is set without CLINIC_KAFKA_SSL_CERTFILE"
    return None


_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@")


def redact(text: str | SecretStr) -> str:
    """Text (a connection string, an error message) without the credentials of any URL in it: the one
    helper for every log line, error and CLI output that may hold a URL. A SecretStr is revealed only
    to be redacted."""
    if isinstance(text, SecretStr):
        text = text.get_secret_value()
    return _USERINFO.sub(r"\g<scheme>***@", text)


def explain(error: ValidationError) -> str:
    """The first problem of invalid settings in one line, naming the environment variable; never the value."""
    first = error.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    return f"invalid setting {env_name(str(first['loc'][0]))}: {message}" if first.get("loc") else f"invalid settings: {message}"


def env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias if field in Settings.model_fields else None
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else f"{Settings.model_config.get('env_prefix', '')}{field}".upper()
