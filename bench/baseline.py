"""The yardstick: a bare aiokafka + PyMongo loop doing the same writes as the services did.

Adapted from the baseline of bench/runtime_bench.py. Given how many store round trips and how many
published events the services needed per handled event (measured from their /metrics in the same run),
the loop takes the same number of events off a topic and for each one: decodes it (shared.envelope,
as the services do), makes that many store round trips (`_id` reads and writes: insert, read, upsert,
update, delete, in that order, cycling), commits the offset and publishes that many events, one message
at a time. Fractional averages are spread exactly (e.g. 7.4 round trips: 7 or 8 per event, 7.4 on
average). Its own topics and database are dropped afterwards.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from dataclasses import dataclass

from pymongo import AsyncMongoClient

from bench.system import drop, ensure_topics, infra_pid, own_cpu_seconds, tree_cpu
from bench.traffic import approvable_consultation
from shared.envelope import decode, encode, new_event
from shared.runtime.kafka_client import Kafka
from shared.settings import Settings


@dataclass
class BaselineResult:
    events: int
    round_trips_per_event: float
    published_per_event: float
    seconds: float
    events_per_second: float
    cpu: dict[str, float | None]

    def as_dict(self) -> dict:
        return {
            "events": self.events,
            "round_trips_per_event": round(self.round_trips_per_event, 2),
            "published_per_event": round(self.published_per_event, 2),
            "seconds": round(self.seconds, 2),
            "events_per_second": round(self.events_per_second, 1),
            "cpu_seconds": self.cpu,
            "cpu_seconds_per_1000_events": {k: (None if v is None else round(v / self.events * 1000, 2)) for k, v in self.cpu.items()},
        }


def spread(average: float, index: int) -> int:
    """How many of something event `index` gets so that the running average is exactly `average`."""
    return math.floor(average * (index + 1) + 1e-9) - math.floor(average * index + 1e-9)


async def _round_trip(db, step: int, key: str, event_id: str, payload: dict) -> None:
    kind = step % 5
    collection = db[f"c{step // 5}"]
    if kind == 0:
        await collection.insert_one({"_id": f"{key}|{step}", "event": event_id, "status": "recorded"})
    elif kind == 1:
        await collection.find_one({"_id": key})
    elif kind == 2:
        await collection.replace_one({"_id": key}, {"last": event_id, **payload}, upsert=True)
    elif kind == 3:
        await collection.update_one({"_id": f"{key}|{step - 3}"}, {"$set": {"status": "applied"}})
    else:
        await collection.delete_one({"_id": f"{key}|{step - 4}"})


async def run(base: Settings, events: int, round_trips: float, published: float, say=print) -> BaselineResult:
    prefix = f"benchbase{secrets.token_hex(3)}"
    settings = base.model_copy(update={"topic_prefix": f"{prefix}.", "database_prefix": f"{prefix}_"})
    inbound, outbound = f"{settings.topic_prefix}in", f"{settings.topic_prefix}out"
    await ensure_topics(settings, [inbound, outbound])
    template = approvable_consultation("pt_BASELINE0", "cons_BASELINE0")
    producer = Kafka.of(settings).producer(enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    try:
        sends = []
        for i in range(events):
            data = template.model_copy(update={"patient_id": f"pt_BASE{i:07d}", "consultation_id": f"cons_BASE{i:07d}"})
            value, headers = encode(new_event(data, source="/bench/baseline"))
            sends.append(await producer.send(inbound, value, key=data.patient_id.encode(), headers=headers))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()

    client = AsyncMongoClient(settings.mongodb_url.get_secret_value())
    db = client[f"{settings.database_prefix}baseline"]
    consumer = Kafka.of(settings).consumer(
        inbound, group_id=f"{settings.topic_prefix}baseline", enable_auto_commit=False, auto_offset_reset="earliest"
    )
    producer = Kafka.of(settings).producer(enable_idempotence=True, acks="all")
    await consumer.start()
    await producer.start()
    await db.command("ping")
    try:
        first = await consumer.getone()  # the group is joined before the clock starts
        cpu_before = _cpu()
        started = time.perf_counter()
        told = started
        record, done = first, 0
        while True:
            event = decode(record.value, record.headers)
            key = event.data.patient_id
            payload = {"patient_id": key, "type": event.type}
            for step in range(spread(round_trips, done)):
                await _round_trip(db, step, key, event.id, payload)
            await consumer.commit()
            for n in range(spread(published, done)):
                outgoing = new_event(event.data, source="/bench/baseline", id=f"{event.id}-{n}")
                value, headers = encode(outgoing)
                await producer.send_and_wait(outbound, value, key=key.encode(), headers=headers)
            done += 1
            if done >= events:
                break
            if time.perf_counter() - told >= 5:
                told = time.perf_counter()
                say(f"  baseline: {done:,}/{events:,} events, {done / (told - started):.1f}/s")
            record = await consumer.getone()
        seconds = time.perf_counter() - started
        cpu_after = _cpu()
    finally:
        await consumer.stop()
        await producer.stop()
        await client.close()
        await drop(settings)
    cpu = {k: (None if cpu_before[k] is None or cpu_after[k] is None else round(cpu_after[k] - cpu_before[k], 3)) for k in cpu_before}
    return BaselineResult(events, round_trips, published, seconds, events / seconds, cpu)


def _cpu() -> dict[str, float | None]:
    return {"loop": own_cpu_seconds(), "ferretdb": tree_cpu(infra_pid("ferretdb")), "kafka": tree_cpu(infra_pid("kafka"))}

