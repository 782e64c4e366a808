"""The settings of one test's deployment: its own topic and database prefixes, quick polls and retries."""

from __future__ import annotations

from shared.settings import Settings


def deployment_settings(kafka: str, mongodb: str, prefix: str) -> Settings:
    return Settings(
        kafka_bootstrap_servers=kafka,
        mongodb_url=mongodb,
        topic_prefix=f"{prefix}.",
        database_prefix=f"{prefix}_",
        relay_poll_seconds=0.2,
        retry_max_seconds=2.0,
    )
