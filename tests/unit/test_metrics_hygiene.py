"""Metrics hygiene: lag series of partitions taken away disappear; the handler histogram's new name."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from shared.runtime import Handlers, Service, metrics
from shared.settings import Settings


class FakeConsumer:
    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = set(assigned)

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def highwater(self, tp: TopicPartition) -> int:
        return 10

    async def position(self, tp: TopicPartition) -> int:
        return 4


def lag(service: str, tp: TopicPartition) -> float | None:
    return REGISTRY.get_sample_value("clinic_consumer_lag", {"service": service, "topic": tp.topic, "partition": str(tp.partition)})


async def _nothing(runtime):
    return None


async def test_lag_series_of_revoked_partitions_are_removed():
    a0, a1, a2 = (TopicPartition("lagtopic", p) for p in range(3))
    consumer = FakeConsumer({a0, a1, a2})
    service = Service(Handlers("lagprobe"), _nothing, settings=Settings())
    service._subscriber = SimpleNamespace(consumer=consumer)

    await service.refresh_gauges()
    assert [lag("lagprobe", tp) for tp in (a0, a1, a2)] == [6, 6, 6]

    await service._on_revoked({a2})  # the rebalance listener: before the partition goes
    assert lag("lagprobe", a2) is None
    assert lag("lagprobe", a0) == 6

    consumer.assigned = {a0}  # gone without a listener call (a reset member): the next refresh drops it
    await service.refresh_gauges()
    assert lag("lagprobe", a1) is None and lag("lagprobe", a0) == 6

    service._on_assigned({TopicPartition("lagtopic", 5)})  # a new assignment without a0
    assert lag("lagprobe", a0) is None


def test_handler_duration_has_its_new_name_and_the_old_one_is_deprecated():
    metrics.HANDLER_DURATION.labels("histprobe", "t").observe(0.01)
    metrics.HANDLER_SECONDS.labels("histprobe", "t").observe(0.01)
    assert REGISTRY.get_sample_value("clinic_handler_duration_seconds_count", {"service": "histprobe", "type": "t"}) == 1
    assert REGISTRY.get_sample_value("clinic_handler_seconds_count", {"service": "histprobe", "type": "t"}) == 1
    assert "DEPRECATED" in metrics.HANDLER_SECONDS._documentation
