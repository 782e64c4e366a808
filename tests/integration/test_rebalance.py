"""Rebalances while records are in hand: nothing stalls, nothing is lost, nothing is handled twice.

The probe service's handler is slowed down so that a batch is still being worked through when a second
instance joins the group and the partitions are revoked from the first (docs/liveness.md).
"""

from __future__ import annotations

import asyncio
import time

from aiokafka.partitioner import murmur2

from clinic.polling import eventually
from shared.runtime.store import INBOX
from tests.support import probe

EVENTS = 32
DELAY = 0.25  # seconds per record, handled one at a time: a batch of EVENTS takes about 8 s


async def test_a_second_instance_joining_mid_batch_takes_over_without_a_stall_a_loss_or_a_second_handling(settings, bus, run_id, monkeypatch):
    settings = settings.model_copy(update={"consume_concurrency": 1})
    original = probe.on_inbound

    async def slow(event, deps):
        await asyncio.sleep(DELAY)
        return await original(event, deps)

    monkeypatch.setitem(probe.handlers.by_type, probe.INBOUND.event_type, (probe.INBOUND, slow))
    # all on the last partition, which the range assignor gives to the second instance ("reb-b" sorts
    # after "reb-a"): the first instance is still working through them when it has to hand them over
    patients = on_partition(run_id, settings.topic_partitions - 1, settings.topic_partitions, EVENTS)
    sent = [await bus.publish(probe.inbound(patient)) for patient in patients]
    ids = {event.id for event in sent}

    one = probe.create(settings.model_copy(update={"instance_id": f"reb-a-{run_id}"}))
    two = probe.create(settings.model_copy(update={"instance_id": f"reb-b-{run_id}"}))
    async with one:
        await eventually(lambda: _called(ids, 2), what="the first instance is working through its batch")
        joined = time.monotonic()
        async with two:
            # the revocation lets the record in hand finish (DELAY), not the whole batch (EVENTS x DELAY)
            await eventually(lambda: _both_assigned(one, two), timeout=20, what="both instances own partitions")
            settled_after = time.monotonic() - joined
            escalated = await eventually(lambda: _patients(bus, set(patients)), timeout=60, what="every patient escalated")
            await eventually(lambda: _counted(EVENTS, one, two), what="every event counted once committed")
            handled = (sum(one.stats.handled.values()), sum(two.stats.handled.values()))
            applied = await one.db[INBOX].count_documents({"status": "applied"})

    calls = [call for call in probe.calls if call in ids]
    assert escalated == set(patients)
    assert sorted(calls) == sorted(ids), "every event's handler ran exactly once"
    assert applied == EVENTS
    assert all(handled), f"both instances must have handled events, got {handled}"
    assert handled[0] < EVENTS - 1, "the first instance finished the batch before the second joined: the test proved nothing"
    assert settled_after < EVENTS * DELAY, f"the group took {settled_after:.1f}s to settle: the revocation waited for the whole batch"


def on_partition(run_id: str, partition: int, partitions: int, count: int) -> list[str]:
    found = (f"pt_REB{n}X{run_id}" for n in range(100 * count))
    return [p for p in found if (murmur2(p.encode()) & 0x7FFFFFFF) % partitions == partition][:count]


async def _called(ids: set[str], count: int) -> bool:
    return sum(1 for call in probe.calls if call in ids) >= count


async def _both_assigned(*services) -> bool:
    return all([(await s.readiness())["consumer_assigned"] for s in services])


async def _counted(count: int, *services) -> bool:
    return sum(sum(s.stats.handled.values()) for s in services) >= count


async def _patients(bus, wanted: set[str]) -> set[str] | None:
    found = {e.data.patient_id for e in await bus.events(probe.OUTBOUND)} & wanted
    return found if found == wanted else None
