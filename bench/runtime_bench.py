"""Throughput and latency of the service runtime against the real broker and store.

    make bench                       # or: python -m bench.runtime_bench --events 2000

Three measurements, each on fresh topics and databases:
1. runtime throughput: N events already on the topic, one service instance drains them
   (decode, inbox, handler, effects, commit, outbox relay publishes the resulting event);
2. baseline: a bare aiokafka loop doing the same store writes per message (inbox insert, state write,
   outbox insert, inbox update, commit, publish), to show what the runtime costs on top;
3. end-to-end latency: events published one at a time, time until the resulting event is on its topic.
Results go to stdout and bench/results/<timestamp>.json. Nothing here is asserted: it is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pymongo import AsyncMongoClient

from shared.envelope import decode, encode, new_event
from shared.runtime.kafka import ensure_topics
from shared.runtime.kafka_client import Kafka
from shared.runtime.logs import configure
from shared.settings import Settings
from tests.support import probe
from tests.support.cleanup import drop_deployment

RESULTS = Path(__file__).resolve().parent / "results"


def fresh_settings() -> Settings:
    run = secrets.token_hex(3)
    return Settings(topic_prefix=f"bench{run}.", database_prefix=f"bench{run}_", relay_poll_seconds=0.05)


async def preload(settings: Settings, count: int) -> str:
    topic = f"{settings.topic_prefix}{probe.INBOUND.event_type}"
    kafka = Kafka.of(settings)
    await ensure_topics(kafka.bootstrap, [topic, f"{settings.topic_prefix}{probe.OUTBOUND.event_type}"], settings.topic_partitions, options=kafka.options)
    producer = kafka.producer(enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for i in range(count):
            event = new_event(probe.inbound(f"pt_BENCH{i:06d}"), source="/bench")
            value, headers = encode(event)
            futures.append(await producer.send(topic, value, key=event.key.encode(), headers=headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return topic


async def runtime_throughput(count: int) -> dict:
    settings = fresh_settings()
    await preload(settings, count)
    started = time.perf_counter()
    async with probe.create(settings) as service:
        while sum(service.stats.handled.values()) < count:
            await asyncio.sleep(0.05)
        handled_at = time.perf_counter()
        while service.relay.published < count:
            await asyncio.sleep(0.05)
        published_at = time.perf_counter()
    await cleanup(settings)
    return {
        "events": count,
        "handled_per_second": round(count / (handled_at - started), 1),
        "published_per_second": round(count / (published_at - started), 1),
        "seconds_including_start": round(published_at - started, 2),
    }


async def baseline_throughput(count: int) -> dict:
    """The same work without the runtime: what a hand-written aiokafka consumer would do."""
    settings = fresh_settings()
    topic = await preload(settings, count)
    out_topic = f"{settings.topic_prefix}{probe.OUTBOUND.event_type}"
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value())
    db = client[f"{settings.database_prefix}baseline"]
    kafka = Kafka.of(settings)
    consumer = kafka.consumer(topic, group_id=f"{settings.topic_prefix}baseline", enable_auto_commit=False, auto_offset_reset="earliest")
    producer = kafka.producer(enable_idempotence=True, acks="all")
    await consumer.start()
    await producer.start()
    started = time.perf_counter()
    try:
        done = 0
        while done < count:
            record = await consumer.getone()
            event = decode(record.value, record.headers)
            outgoing = new_event(probe.outbound(event.data.patient_id), source="/bench")
            value, headers = encode(outgoing)
            await db.inbox.insert_one({"_id": event.id, "status": "recorded"})
            await db.notes.replace_one({"_id": event.id}, {"patient_id": event.data.patient_id}, upsert=True)
            await db.outbox.insert_one({"_id": outgoing.id, "value": value, "status": "pending"})
            await db.inbox.update_one({"_id": event.id}, {"$set": {"status": "applied"}})
            await consumer.commit()
            await producer.send_and_wait(out_topic, value, key=outgoing.key.encode(), headers=headers)
            await db.outbox.update_one({"_id": outgoing.id}, {"$set": {"status": "published"}})
            done += 1
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
        await producer.stop()
        await client.close()
    await cleanup(settings)
    return {"events": count, "handled_per_second": round(count / elapsed, 1)}


async def end_to_end_latency(count: int) -> dict:
    settings = fresh_settings()
    in_topic = await preload(settings, 0)
    out_topic = f"{settings.topic_prefix}{probe.OUTBOUND.event_type}"
    latencies: list[float] = []
    async with probe.create(settings):
        kafka = Kafka.of(settings)
        producer = kafka.producer(enable_idempotence=True, acks="all")
        consumer = kafka.consumer(out_topic, group_id=f"{settings.topic_prefix}latency", auto_offset_reset="earliest")
        await producer.start()
        await consumer.start()
        try:
            for i in range(count):
                event = new_event(probe.inbound(f"pt_LATENCY{i:05d}"), source="/bench")
                value, headers = encode(event)
                sent = time.perf_counter()
                await producer.send_and_wait(in_topic, value, key=event.key.encode(), headers=headers)
                while True:
                    record = await consumer.getone()
                    if decode(record.value, record.headers).causation_id == event.id:
                        latencies.append((time.perf_counter() - sent) * 1000)
                        break
        finally:
            await producer.stop()
            await consumer.stop()
    await cleanup(settings)
    latencies.sort()
    return {
        "events": count,
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "max_ms": round(latencies[-1], 1),
    }


async def cleanup(settings: Settings) -> None:
    await drop_deployment(settings)


async def main(events: int, latency_events: int) -> dict:
    runtime = await runtime_throughput(events)
    baseline = await baseline_throughput(events)
    latency = await end_to_end_latency(latency_events)
    return {
        "at": datetime.now(UTC).isoformat(),
        "runtime": runtime,
        "baseline_bare_aiokafka": baseline,
        "runtime_to_baseline_ratio": round(runtime["handled_per_second"] / baseline["handled_per_second"], 2),
        "end_to_end_latency": latency,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events for the throughput runs (default 1000)")
    parser.add_argument("--latency-events", type=int, default=200, help="events for the latency run (default 200)")
    args = parser.parse_args()
    if args.events < 1 or args.latency_events < 1:
        parser.error("--events and --latency-events must be at least 1")
    configure("WARNING")
    result = asyncio.run(main(args.events, args.latency_events))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{result['at'][:19].replace(':', '')}.json").write_text(json.dumps(result, indent=2))
    json.dump(result, sys.stdout, indent=2)
    print()
