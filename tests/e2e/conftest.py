"""The four services as separate OS processes on this test module's own topics and databases."""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from clinic import stack
from clinic.client import EventClient
from shared.settings import Settings
from tests.conftest import _cleanup
from tests.support.ports import free_ports


@dataclass
class Stack:
    settings: Settings
    processes: list[stack.ServiceProcess]
    client: AsyncMongoClient

    def db(self, service: str) -> AsyncDatabase:
        return self.client[self.settings.database(service)]


@pytest.fixture(scope="module")
def state_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="clinic-e2e-") as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
async def running(endpoints, state_dir) -> AsyncIterator[Stack]:
    run = secrets.token_hex(4)
    settings = Settings(
        kafka_bootstrap_servers=endpoints.kafka,
        mongodb_url=endpoints.mongodb,
        topic_prefix=f"e2e{run}.",
        database_prefix=f"e2e{run}_",
    )
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URL": settings.mongodb_url.get_secret_value(),
        "CLINIC_TOPIC_PREFIX": settings.topic_prefix,
        "CLINIC_DATABASE_PREFIX": settings.database_prefix,
        "CLINIC_RELAY_POLL_SECONDS": "0.2",
    }
    ports = dict(zip(stack.SERVICES, free_ports(len(stack.SERVICES)), strict=True))
    processes = stack.start(env, state_dir, http_ports=ports)
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value(), tz_aware=True)
    try:
        await asyncio.to_thread(stack.wait_ready, processes, 120)
        yield Stack(settings, processes, client)
    finally:
        await asyncio.to_thread(stack.stop, state_dir)
        await client.close()
        await _cleanup(settings)


@pytest.fixture
async def events(running: Stack) -> AsyncIterator[EventClient]:
    async with EventClient(running.settings.kafka_bootstrap_servers, running.settings.topic_prefix) as client:
        yield client
