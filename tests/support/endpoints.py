"""Where the tests find Kafka and MongoDB, in the order architecture.md gives.

1. ``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URL`` from the environment (``make test`` sets them);
2. containers via testcontainers when a Docker engine answers (Confluent cp-kafka 8 in KRaft mode,
   carrying Kafka 4.x, and mongo:8);
3. otherwise the local processes of ``clinic infra up``, started once for the test session.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

KAFKA_IMAGE = "confluentinc/cp-kafka:8.1.0"
MONGO_IMAGE = "mongo:8"


@dataclass(frozen=True)
class Endpoints:
    kafka: str
    mongodb: str
    mode: str


def docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def endpoints() -> Iterator[Endpoints]:
    kafka, mongodb = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URL")
    if kafka and mongodb:
        yield Endpoints(kafka, mongodb, "environment")
    elif docker_answers():
        with _containers() as found:
            yield found
    else:
        with _local() as found:
            yield found


@contextlib.contextmanager
def _containers() -> Iterator[Endpoints]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mongodb import MongoDbContainer

    # like the local broker: no automatic topic creation, every topic is created by whoever needs it
    kafka_container = KafkaContainer(KAFKA_IMAGE).with_kraft().with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    with kafka_container as kafka, MongoDbContainer(MONGO_IMAGE) as mongo:
        yield Endpoints(kafka.get_bootstrap_server(), mongo.get_connection_url(), "testcontainers")


@contextlib.contextmanager
def _local() -> Iterator[Endpoints]:
    from infra import local

    layout = local.Layout.from_env()
    already = all(state.startswith("running") for state in local.status(layout).values())
    local.up(layout)
    try:
        yield Endpoints(layout.bootstrap, layout.mongodb_url, "local processes")
    finally:
        if not already:
            local.down(layout)
