"""The services' batch subscriber polls again at once after an empty poll that waited its time out, and
pauses only after one that came back empty at once (shared/runtime/kafka.py, ``PromptBatches``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from faststream.kafka import KafkaBroker

from shared.runtime import kafka


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Consumer:
    """Answers each poll with the next of ``answers`` after ``takes`` seconds of the fake clock."""

    def __init__(self, clock: Clock, answers: list[dict[TopicPartition, list[Any]]], takes: float) -> None:
        self.clock, self.answers, self.takes = clock, answers, takes
        self.polls: list[dict[str, Any]] = []

    async def getmany(self, timeout_ms: int, max_records: int | None) -> dict[TopicPartition, list[Any]]:
        self.polls.append({"timeout_ms": timeout_ms, "max_records": max_records})
        self.clock.now += self.takes
        return self.answers.pop(0)


def record(topic: str, partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The module's own ``time`` and ``asyncio`` names only: the event loop keeps the real clock."""
    fake = Clock()
    monkeypatch.setattr(kafka, "time", SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(kafka, "asyncio", SimpleNamespace(sleep=fake.sleep))
    return fake


def subscriber(wait_ms: int = 500) -> kafka.PromptBatches:
    made = KafkaBroker("localhost:9092").subscriber("t.topic", group_id="g", batch=True, max_records=200, batch_timeout_ms=wait_ms)
    kafka.prompt(made)
    assert isinstance(made, kafka.PromptBatches)
    made.running = True
    return made


async def test_records_come_back_in_partition_order_with_no_pause(clock: Clock) -> None:
    first, second = TopicPartition("t.topic", 0), TopicPartition("t.topic", 1)
    answer = {first: [record("t.topic", 0, 7), record("t.topic", 0, 8)], second: [record("t.topic", 1, 3)]}
    consumer = Consumer(clock, [answer], takes=0.001)
    got = await subscriber().get_msg(consumer)  # type: ignore[arg-type]
    assert [(r.partition, r.offset) for r in got] == [(0, 7), (0, 8), (1, 3)]
    assert consumer.polls == [{"timeout_ms": 500, "max_records": 200}]
    assert clock.slept == []


async def test_a_poll_that_waited_its_time_out_is_followed_by_the_next_at_once(clock: Clock) -> None:
    consumer = Consumer(clock, [{}, {}], takes=0.5)
    batches = subscriber()
    assert await batches.get_msg(consumer) == ()  # type: ignore[arg-type]
    assert await batches.get_msg(consumer) == ()  # type: ignore[arg-type]
    assert clock.slept == []  # FastStream's own subscriber sleeps the wait again after each


async def test_a_poll_empty_at_once_is_followed_by_the_rest_of_the_wait_so_nothing_spins(clock: Clock) -> None:
    consumer = Consumer(clock, [{}], takes=0.1)
    assert await subscriber().get_msg(consumer) == ()  # type: ignore[arg-type]
    assert clock.slept == [pytest.approx(0.4)]


@pytest.mark.parametrize(("takes", "pause"), [(0.2, 0.3), (0.3, None)])
async def test_a_poll_pauses_only_when_it_came_back_before_half_its_wait(clock: Clock, takes: float, pause: float | None) -> None:
    assert await subscriber().get_msg(Consumer(clock, [{}], takes=takes)) == ()  # type: ignore[arg-type]
    assert clock.slept == ([] if pause is None else [pytest.approx(pause)])


async def test_a_stopping_subscriber_does_not_pause(clock: Clock) -> None:
    batches = subscriber()
    batches.running = False
    assert await batches.get_msg(Consumer(clock, [{}], takes=0.0)) == ()  # type: ignore[arg-type]
    assert clock.slept == []


def test_only_fastStreams_batch_subscriber_is_made_prompt() -> None:
    single = KafkaBroker("localhost:9092").subscriber("t.topic", group_id="g")
    with pytest.raises(TypeError, match="expected FastStream's BatchSubscriber"):
        kafka.prompt(single)
