"""What operators rely on, against the real broker and store: lag, dead letters, health, metrics."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request

from shared import operations
from shared.runtime import Rejected
from tests.support import probe
from tests.support.polling import eventually
from tests.support.cli import clinic
from tests.support.proxy import Proxy


async def group_lag(settings) -> int | None:
    rows = await operations.consumer_lag(settings.kafka_bootstrap_servers, settings.topic_prefix, settings.group_id("probe"))
    return sum(row.lag for row in rows) if rows else None


async def test_lag_is_reported_for_a_stopped_consumer_and_is_zero_once_it_catches_up(settings, bus, run_id):
    patient = f"pt_LAG{run_id}"
    async with probe.create(settings):
        await bus.publish(probe.inbound(patient))
        await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)
        await eventually(lambda: _equals(group_lag(settings), 0), what="committed after the first event")
    for _ in range(3):
        await bus.publish(probe.inbound(patient))

    assert await group_lag(settings) == 3
    code, out, err = await clinic(settings, "lag", "--threshold", "2", "--json")
    assert code == 1 and json.loads(out)["groups"] == {settings.group_id("probe"): 3}
    assert "lag above threshold" in err

    async with probe.create(settings):
        await eventually(lambda: _equals(group_lag(settings), 0), what="caught up")
    code, _, _ = await clinic(settings, "lag", "--threshold", "0")
    assert code == 0


async def test_a_dead_letter_is_listed_and_replayed_exactly_once_after_the_fix(settings, bus, run_id, monkeypatch):
    patient = f"pt_REPLAY{run_id}"

    async def broken(event, deps):
        raise Rejected("handler-error", "simulated defect")

    monkeypatch.setitem(probe.handlers.by_type, probe.INBOUND.event_type, (probe.INBOUND, broken))
    sent = await bus.publish(probe.inbound(patient))
    async with probe.create(settings):
        await eventually(lambda: bus.dead_letters(probe.INBOUND), what="dead letter")

    code, out, _ = await clinic(settings, "dlq", "list", "--json")
    [listed] = json.loads(out)
    assert code == 0 and listed["event_id"] == sent.id and listed["reason"] == "handler-error"

    monkeypatch.undo()  # the fix is deployed
    code, out, _ = await clinic(settings, "dlq", "replay", "side-effect-reported", "--dry-run")
    assert code == 0 and "would replay 1 dead letter" in out
    code, out, _ = await clinic(settings, "dlq", "replay", "side-effect-reported")
    assert code == 0 and "replayed 1 dead letter" in out
    code, out, _ = await clinic(settings, "dlq", "replay", "side-effect-reported")
    assert code == 0 and "replayed 0 dead letter" in out

    async with probe.create(settings) as service:
        await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)
        await eventually(lambda: _equals(group_lag(settings), 0), what="replayed event handled")
        published = await bus.events(probe.OUTBOUND, lambda d: d.patient_id == patient)
        inbound = await bus.events(probe.INBOUND, lambda d: d.patient_id == patient)
    assert len(published) == 1
    assert len(inbound) == 2, "the original and exactly one replay"
    assert service.stats.handled == {probe.INBOUND.event_type: 1}


async def test_health_endpoints_answer_and_readiness_turns_false_when_the_store_is_unreachable(settings, bus):
    proxy = Proxy.for_url(settings.mongodb_url)
    await proxy.open()
    settings = settings.model_copy(update={"mongodb_url": proxy.url_through(settings.mongodb_url), "http_port": free_port()})
    try:
        async with probe.create(settings):
            assert await get(settings, "/healthz") == (200, {"status": "alive", "service": "probe"})
            await eventually(lambda: _status(settings, "/readyz", 200), what="ready")

            await proxy.cut()
            status, body = await eventually(lambda: _status(settings, "/readyz", 503), what="not ready without the store")
            assert body["checks"]["store"] is False and body["checks"]["broker"] is True

            await proxy.open()
            await eventually(lambda: _status(settings, "/readyz", 200), timeout=45, what="ready again")
            assert (await get(settings, "/asyncapi.json"))[1]["info"]["title"] == "Clinic probe service"
    finally:
        await proxy.cut()


async def test_metrics_count_handled_and_dead_lettered_events(settings, bus, run_id):
    settings = settings.model_copy(update={"http_port": free_port()})
    patient = f"pt_METRIC{run_id}"
    await bus.publish(probe.inbound(patient))
    await bus.send(bus.topic(probe.INBOUND), b"not json", [], key=patient)
    topic = bus.topic(probe.INBOUND)
    before_handled = _sample(await metrics_text(None), "clinic_events_handled_total", service="probe", type=probe.INBOUND.event_type, outcome="applied")
    before_dead = _sample(await metrics_text(None), "clinic_events_dead_lettered_total", service="probe", topic=topic, reason="malformed")

    async with probe.create(settings):
        await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)
        await eventually(lambda: bus.dead_letters(probe.INBOUND), what="dead letter")
        text = await metrics_text(settings)

    assert _sample(text, "clinic_events_handled_total", service="probe", type=probe.INBOUND.event_type, outcome="applied") == before_handled + 1
    assert _sample(text, "clinic_events_dead_lettered_total", service="probe", topic=topic, reason="malformed") == before_dead + 1
    assert 'clinic_handler_seconds_count{service="probe"' in text
    assert "clinic_outbox_backlog" in text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def get(settings, path: str) -> tuple[int, dict]:
    def fetch() -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{settings.http_port}{path}", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    return await asyncio.to_thread(fetch)


async def metrics_text(settings) -> str:
    if settings is None:
        from prometheus_client import generate_latest

        return generate_latest().decode()

    def fetch() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.http_port}/metrics", timeout=10) as response:
            return response.read().decode()

    return await asyncio.to_thread(fetch)


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    assert wanted, "no labels"
    return 0.0


async def _status(settings, path: str, expected: int):
    status, body = await get(settings, path)
    return (status, body) if status == expected else None


async def _equals(awaitable, expected) -> bool:
    return (await awaitable) == expected
