"""What operators rely on, against the real broker and store: lag, dead letters, health, metrics."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request

from pydantic import SecretStr

from clinic import operations
from clinic.polling import eventually
from shared.runtime import Rejected
from shared.runtime.kafka_client import Kafka
from tests.support import probe
from tests.support.cli import clinic
from tests.support.proxy import Proxy


async def group_lag(settings) -> int | None:
    rows = await operations.consumer_lag(Kafka.of(settings), settings.topic_prefix, settings.group_id("probe"))
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
    code, _, err = await clinic(settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"}), "lag", "--threshold", "2")
    assert code == 3 and "did not answer" in err, "an unreachable broker is not a lag alert"

    async with probe.create(settings):
        await eventually(lambda: _equals(group_lag(settings), 0), what="caught up")
    code, _, _ = await clinic(settings, "lag", "--threshold", "0")
    assert code == 0


async def test_dead_letters_are_listed_and_replayed_once_each_as_selected_after_the_fix(settings, bus, run_id, monkeypatch):
    first, second = f"pt_REPLAYA{run_id}", f"pt_REPLAYB{run_id}"

    async def broken(event, deps):
        raise Rejected("handler-error", "simulated defect")

    monkeypatch.setitem(probe.handlers.by_type, probe.INBOUND.event_type, (probe.INBOUND, broken))
    sent = {patient: await bus.publish(probe.inbound(patient)) for patient in (first, second)}
    await bus.send(bus.topic(probe.INBOUND), b"not json", [], key=f"pt_BROKEN{run_id}")
    async with probe.create(settings):
        await eventually(lambda: _at_least(bus.dead_letters(probe.INBOUND), 3), what="three dead letters")

    headers_schema = asyncapi_validator("DeadLetterHeaders")
    for record in await bus.dead_letters(probe.INBOUND):
        headers_schema.validate({k: v.decode() for k, v in record.headers})  # what the runtime writes is what the AsyncAPI says
    code, out, _ = await clinic(settings, "dlq", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and sorted(letter["reason"] for letter in listed) == ["handler-error", "handler-error", "malformed"]
    assert {letter["event_id"] for letter in listed if letter["reason"] == "handler-error"} == {e.id for e in sent.values()}

    monkeypatch.undo()  # the fix is deployed
    replay = ("dlq", "replay", "side-effect-reported", "--json")
    assert await replayed(settings, *replay, "--reason", "handler-error", "--dry-run") == sorted(e.id for e in sent.values())
    assert await replayed(settings, *replay, "--event-id", sent[first].id) == [sent[first].id]
    assert await replayed(settings, *replay, "--event-id", sent[first].id) == [], "replayed once, even beyond the progress offset"
    assert await replayed(settings, *replay, "--reason", "handler-error") == [sent[second].id]
    assert await replayed(settings, *replay) == [None], "only the malformed one is left"
    assert await replayed(settings, *replay) == []
    assert await replayed(settings, *replay, "--event-id", sent[first].id, "--again", "--dry-run") == [sent[first].id]

    async with probe.create(settings) as service:
        for patient in (first, second):
            await bus.wait_for(probe.OUTBOUND, lambda d, patient=patient: d.patient_id == patient)
        await eventually(lambda: _equals(group_lag(settings), 0), what="replayed events handled")
        published = await bus.events(probe.OUTBOUND, lambda d: d.patient_id in (first, second))
        inbound = [r for r in await bus.records(bus.topic(probe.INBOUND)) if r.key and r.key.decode() in (first, second)]
        attention = service.attention()
    assert attention["dead_letter_replays_failed"] == 1, "the malformed record, replayed, failed again: counted, not silently dropped"
    code, out, _ = await clinic(settings, "dlq", "list", "--json")
    assert code == 0 and [letter["reason"] for letter in json.loads(out) if letter.get("replayed_from")] == ["malformed"]
    assert len(published) == 2
    assert len(inbound) == 4, "the originals and exactly one replay each"
    assert service.stats.handled == {probe.INBOUND.event_type: 2}


async def replayed(settings, *args: str) -> list[str | None]:
    code, out, err = await clinic(settings, *args)
    assert code == 0, err
    return sorted((letter["event_id"] for letter in json.loads(out)["replayed"]), key=str)


def asyncapi_validator(schema: str):
    import jsonschema

    from clinic.asyncapi import DOCUMENT

    return jsonschema.Draft202012Validator(json.loads(DOCUMENT.read_text())["components"]["schemas"][schema])


async def _at_least(awaitable, count: int):
    found = await awaitable
    return found if len(found) >= count else None


async def test_health_endpoints_answer_and_readiness_turns_false_when_the_store_is_unreachable(settings, bus):
    proxy = Proxy.for_url(settings.mongodb_url.get_secret_value())
    await proxy.open()
    settings = settings.model_copy(update={"mongodb_url": SecretStr(proxy.url_through(settings.mongodb_url.get_secret_value())), "http_port": free_port()})
    try:
        async with probe.create(settings):
            assert await get(settings, "/healthz") == (200, {"status": "alive", "service": "probe"})
            await eventually(lambda: _status(settings, "/readyz", 200), what="ready")

            await proxy.cut()
            _, body = await eventually(lambda: _status(settings, "/readyz", 503), what="not ready without the store")
            assert body["checks"]["store"] is False and body["checks"]["broker"] is True
            assert body["attention"] == {"outbox_set_aside": 0, "dead_letter_replays_failed": 0}, "shown, never gating"

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

    async def counted() -> str | None:  # counted once the batch's offsets are committed, just after its events are out
        text = await metrics_text(settings)
        return text if _sample(text, "clinic_events_dead_lettered_total", service="probe", topic=topic, reason="malformed") > before_dead else None

    async with probe.create(settings):
        await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)
        await eventually(lambda: bus.dead_letters(probe.INBOUND), what="dead letter")
        text = await eventually(counted, what="the batch counted")

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
