"""No event is lost between a state change and its publication, even when the process is killed."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from pymongo import AsyncMongoClient

from tests.support import probe


async def run_probe_until_killed(settings, crash_point: str) -> int:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URL": settings.mongodb_url.get_secret_value(),
        "CLINIC_TOPIC_PREFIX": settings.topic_prefix,
        "CLINIC_DATABASE_PREFIX": settings.database_prefix,
        "CLINIC_PROBE_CRASH": crash_point,
    }
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.support.probe", env=env)
    try:
        return await asyncio.wait_for(process.wait(), 60)
    finally:
        if process.returncode is None:
            process.kill()


@pytest.mark.parametrize("crash_point", ["before-publish", "mid-apply"])
async def test_an_event_decided_before_a_kill_is_published_after_restart_once(settings, bus, run_id, crash_point):
    patient = f"pt_CRASH{run_id}"
    sent = await bus.publish(probe.inbound(patient))
    assert await run_probe_until_killed(settings, crash_point) == -9

    assert await bus.events(probe.OUTBOUND, lambda d: d.patient_id == patient) == []
    db = AsyncMongoClient(settings.mongodb_url.get_secret_value())[settings.database("probe")]
    try:
        async with probe.create(settings):
            await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)
            published = await bus.events(probe.OUTBOUND, lambda d: d.patient_id == patient)
            note = await db["notes"].find_one({"_id": sent.id})
    finally:
        await db.client.close()

    assert len(published) == 1
    assert sent.id not in probe.calls, "recorded effects must be re-applied, not recomputed"
    assert published[0].causation_id == sent.id
    assert note == {"_id": sent.id, "patient_id": patient}
