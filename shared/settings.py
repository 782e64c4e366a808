"""Settings every service reads from the environment (defaults in one place)."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLINIC_", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
        description="Comma-separated Kafka bootstrap servers.",
    )
    mongodb_url: str = Field(
        "mongodb://127.0.0.1:27017/",
        validation_alias=AliasChoices("MONGODB_URL", "mongodb_url"),
        description="MongoDB (or FerretDB) connection string; each service uses its own database.",
    )
    topic_prefix: str = Field("", description="Prefix for every topic and consumer group (one deployment per prefix).")
    database_prefix: str = Field("clinic_", description="Each service's database is <prefix><service>.")
    topic_partitions: int = Field(3, ge=1, description="Partitions for topics the service creates.")
    topic_replication: int = Field(1, ge=1, description="Replication factor for topics the service creates (3 in production).")
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field("text", description="One line per record, key=value or JSON.")
    relay_poll_seconds: float = Field(0.5, gt=0, description="Outbox relay poll interval when idle.")
    relay_batch_size: int = Field(500, ge=1, description="Outbox rows published per relay round.")
    consume_batch_size: int = Field(200, ge=1, description="Records taken from Kafka at once; their inbox updates and offset commit are shared.")
    consume_wait_ms: int = Field(20, ge=1, description="How long the consumer waits for a batch to fill when records trickle in.")
    consume_concurrency: int = Field(16, ge=1, description="Patients handled at once within a batch (one patient's events stay in order).")
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
    retry_max_seconds: float = Field(30.0, gt=0, description="Cap of the backoff between retries of transient failures.")
    handler_attempts: int = Field(3, ge=1, description="Attempts for a non-transient handler error before it is dead-lettered.")
    http_host: str = Field("127.0.0.1", description="Address of the health and metrics endpoints.")
    http_port: int | None = Field(None, ge=0, le=65535, description="Port of the health and metrics endpoints (off when unset).")
    clock_offset_seconds: float = Field(0.0, description="Shifts the service clock (demos and end-to-end tests only).")
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
        return self

    def database(self, service: str) -> str:
        return f"{self.database_prefix}{service}"

    def group_id(self, service: str) -> str:
        return f"{self.topic_prefix}clinic.{service}"


def redact(url: str) -> str:
    """A connection string without its credentials, for logs and messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
