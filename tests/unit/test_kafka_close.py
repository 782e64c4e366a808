"""A short-lived Kafka client whose close never finishes does not hang its caller (shared/runtime/kafka_client.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.runtime import kafka, kafka_client

DEADLINE = 60.0
"""Fails the test instead of hanging it; the close under test is abandoned after 0.05 s."""


class StuckAdmin:
    """Serves the topic check, then never finishes closing (a connection that never reported itself closed)."""

    def __init__(self) -> None:
        self.close_started = asyncio.Event()

    async def start(self) -> None:
        return None

    async def list_topics(self) -> list[str]:
        return ["t.clinic.consultation.recorded.v1"]

    async def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        return [{"topic": t, "error_code": 0, "partitions": [{"partition": 0, "error_code": 0, "leader": 1}]} for t in topics]

    async def close(self) -> None:
        self.close_started.set()
        await asyncio.Event().wait()


async def test_a_topic_check_returns_although_its_admin_client_never_finishes_closing(monkeypatch, caplog):
    stuck = StuckAdmin()
    monkeypatch.setattr(kafka_client.Kafka, "admin", lambda self, **_: stuck)
    monkeypatch.setattr(kafka_client, "CLOSE_SECONDS", 0.05)

    created = await asyncio.wait_for(kafka.ensure_topics("127.0.0.1:1", ["t.clinic.consultation.recorded.v1"], 3), DEADLINE)

    assert created == [] and stuck.close_started.is_set()
    assert "kafka client close abandoned" in caplog.text


async def test_a_close_that_finishes_is_waited_for():
    closed = []

    class Quick:
        async def stop(self) -> None:
            await asyncio.sleep(0)
            closed.append(True)

    await kafka_client.close_within(Quick(), "reader", seconds=DEADLINE)
    assert closed == [True]


@pytest.mark.parametrize("seconds", [0.01])
async def test_close_within_gives_up_on_a_stop_that_never_returns(seconds):
    class Stuck:
        async def stop(self) -> None:
            await asyncio.Event().wait()

    await asyncio.wait_for(kafka_client.close_within(Stuck(), "reader", seconds=seconds), DEADLINE)
