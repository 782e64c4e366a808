"""Readiness says whether a service instance can make progress, and says so again once it can.

The store going away is covered in test_operations.py (through a TCP proxy). Here: a consume loop stuck
in a batch, an instance with no partitions, and a broker that is stopped and started again -- a broker
of the test's own (Kafka from the cached jars, on free ports), so the session's broker is never touched.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clinic.client import EventClient
from clinic.polling import eventually
from tests.support import probe
from tests.support.ports import free_ports

READY = {"store": True, "broker": True, "consumer_assigned": True, "consumer_progressing": True}


async def test_a_consume_loop_stuck_in_a_batch_is_not_ready_and_ready_again_once_the_batch_moves_on(settings, bus, run_id, monkeypatch):
    settings = settings.model_copy(update={"consumer_stall_seconds": 1.0})
    release = asyncio.Event()
    original = probe.on_inbound

    async def hanging(event, deps):
        await release.wait()
        return await original(event, deps)

    monkeypatch.setitem(probe.handlers.by_type, probe.INBOUND.event_type, (probe.INBOUND, hanging))
    patient = f"pt_STUCK{run_id}"
    async with probe.create(settings) as service:
        await eventually(lambda: _checks_are(service, READY), what="ready")
        await bus.publish(probe.inbound(patient))
        stuck = await eventually(lambda: _checks_are(service, {**READY, "consumer_progressing": False}), what="not ready while the batch hangs")
        release.set()
        await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)
        await eventually(lambda: _checks_are(service, READY), what="ready again")

    assert stuck == {**READY, "consumer_progressing": False}


async def test_an_instance_without_partitions_is_not_ready_until_the_owner_goes_and_it_takes_over(settings, bus, run_id):
    settings = settings.model_copy(update={"topic_partitions": 1})
    # the range assignor gives the one partition to the member whose id sorts first ("rdy-a")
    one = probe.create(settings.model_copy(update={"instance_id": f"rdy-a-{run_id}"}))
    two = probe.create(settings.model_copy(update={"instance_id": f"rdy-b-{run_id}"}))
    await one.start()
    try:
        await eventually(lambda: _checks_are(one, READY), what="the first instance ready")
        async with two:
            idle = await eventually(lambda: _checks_are(two, {**READY, "consumer_assigned": False}), what="the second instance owns nothing")
            await eventually(lambda: _checks_are(one, READY), what="the first instance ready again after the rebalance")
            await one.stop()
            await eventually(lambda: _checks_are(two, READY), what="the second instance took the partition over")
            patient = f"pt_TAKEOVER{run_id}"
            await bus.publish(probe.inbound(patient))
            await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)
    finally:
        await one.stop()

    assert idle == {**READY, "consumer_assigned": False}


async def test_a_service_is_not_ready_while_its_broker_is_down_and_ready_again_and_working_once_it_is_back(settings, run_id, own_broker):
    settings = settings.model_copy(update={"kafka_bootstrap_servers": own_broker.layout.bootstrap})
    async with EventClient(own_broker.layout.bootstrap, settings.topic_prefix) as client, probe.create(settings) as service:
        before = f"pt_BEFORE{run_id}"
        await client.publish(probe.inbound(before))
        await client.wait_for(probe.OUTBOUND, lambda d: d.patient_id == before)
        await eventually(lambda: _checks_are(service, READY), what="ready")

        await own_broker.stop()
        down = await eventually(lambda: _broker_down(service), timeout=30, what="not ready without the broker")
        await own_broker.start()
        await eventually(lambda: _checks_are(service, READY), timeout=90, what="ready again with the broker back")

        after = f"pt_AFTER{run_id}"
        await client.publish(probe.inbound(after))
        await client.wait_for(probe.OUTBOUND, lambda d: d.patient_id == after, timeout=60)

    assert down["broker"] is False and down["store"] is True


class OwnBroker:
    """A Kafka broker of one test: the project's local infrastructure on free ports and a temporary folder."""

    def __init__(self, state: Path) -> None:
        from infra import local

        self.local = local
        kafka, controller = free_ports(2)
        base = local.Layout.from_env()
        self.layout = local.Layout(cache=base.cache, state=state, kafka_port=kafka, controller_port=controller, mongo_port=0)

    async def start(self) -> None:
        await asyncio.to_thread(self.local.up, self.layout, lambda *_: None, store=False)

    async def stop(self) -> None:
        await asyncio.to_thread(self.local.down, self.layout, lambda *_: None, names=("kafka",))


@pytest.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[OwnBroker]:
    from infra import local

    layout = local.Layout.from_env()
    if shutil.which("java") is None or not (layout.kafka_libs / ".complete").exists():
        pytest.skip("needs java and the Kafka jars of `clinic infra up` (not there when the broker runs in a container)")
    broker = OwnBroker(tmp_path / "own-kafka")
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def _checks_are(service, expected: dict[str, bool]) -> dict[str, bool] | None:
    checks = await service.readiness()
    return checks if checks == expected else None


async def _broker_down(service) -> dict[str, bool] | None:
    checks = await service.readiness()
    return checks if not checks["broker"] else None


