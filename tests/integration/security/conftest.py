"""A Kafka broker of this test session's own that enforces SASL/SCRAM and ACLs (infra/security.py),
on free ports, started once and stopped at the end; each test gets its own deployment (topic prefix,
databases) with every topic and ACL applied by the admin, as `clinic acl apply` would."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError

from clinic import access
from clinic.polling import eventually
from infra import local, security
from shared.runtime.kafka_client import Kafka
from shared.settings import Settings
from tests.support.cleanup import drop_deployment
from tests.support.deployment import deployment_settings
from tests.support.ports import free_ports


@dataclass(frozen=True)
class SecureKafka:
    bootstrap: str
    credentials: security.Credentials


@dataclass(frozen=True)
class Deployment:
    settings: Settings
    """Connects as nobody (PLAINTEXT); ``as_`` gives a principal's settings."""
    credentials: security.Credentials

    def as_(self, role: str) -> Settings:
        return self.credentials.settings(role, self.settings)


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[SecureKafka]:
    with tempfile.TemporaryDirectory(prefix="clinic-sasl-") as folder:
        kafka_port, controller_port = free_ports(2)
        layout = local.Layout(cache=local.Layout.from_env().cache, state=Path(folder), kafka_port=kafka_port, controller_port=controller_port)
        try:
            credentials = security.up(layout, say=lambda message: None)
            yield SecureKafka(layout.bootstrap, credentials)
        finally:
            local.down(layout, say=lambda message: None)


@pytest.fixture
async def deployment(secure_kafka: SecureKafka, endpoints, run_id: str) -> AsyncIterator[Deployment]:
    settings = deployment_settings(secure_kafka.bootstrap, endpoints.mongodb, f"s{run_id}")
    found = Deployment(settings, secure_kafka.credentials)
    admin = found.as_(access.ADMIN)

    async def applied() -> bool:  # the first requests after a start may come before the broker is ready for them
        try:
            await access.apply(Kafka.of(admin), admin)
        except KafkaError:
            return False
        return True

    await eventually(applied, timeout=60, what="topics and ACLs applied by the admin")
    yield found
    await drop_deployment(admin)
