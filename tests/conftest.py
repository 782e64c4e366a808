"""Shared fixtures: real endpoints for the session, an isolated topic prefix and database per test."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from clinic.client import EventClient as Bus
from shared.settings import Settings
from tests.support.cleanup import drop_deployment
from tests.support.deployment import deployment_settings
from tests.support.endpoints import Endpoints
from tests.support.endpoints import endpoints as find_endpoints

TIERS = ("unit", "integration", "e2e", "contract")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
async def stuck_task_report(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """If a test is still running after CLINIC_TEST_STUCK_AFTER seconds, print every asyncio task's
    stack once, so a hang in CI says where it is instead of only timing out."""
    after = float(os.environ.get("CLINIC_TEST_STUCK_AFTER", "60"))

    async def report() -> None:
        await asyncio.sleep(after)
        print(f"\n--- {request.node.nodeid} still running after {after:.0f}s; asyncio tasks:", file=sys.stderr)
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                print(f"task {task.get_name()}:", file=sys.stderr)
                task.print_stack(file=sys.stderr)

    watchdog = asyncio.create_task(report())
    yield
    watchdog.cancel()


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    with find_endpoints() as found:
        yield found


@pytest.fixture
def run_id() -> str:
    """Random per test, so tests never see each other's topics, groups, databases or patients."""
    return secrets.token_hex(4)


@pytest.fixture
async def settings(endpoints: Endpoints, run_id: str) -> AsyncIterator[Settings]:
    settings = deployment_settings(endpoints.kafka, endpoints.mongodb, f"t{run_id}")
    yield settings
    await _cleanup(settings)


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    bus = Bus(settings.kafka_bootstrap_servers, settings.topic_prefix)
    await bus.start()
    yield bus
    await bus.stop()


async def _cleanup(settings: Settings) -> None:
    await drop_deployment(settings)
