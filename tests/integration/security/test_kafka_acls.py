"""Least privilege on a real broker with SASL/SCRAM and the StandardAuthorizer: who cannot connect,
who cannot write or read what, and the four services completing a journey each as its own principal."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError
from pydantic import SecretStr

from clinic import access
from clinic.client import EventClient
from clinic.journey import Journey
from clinic.polling import eventually
from services.aftercare.app import create_service as aftercare
from services.consultation.app import create_service as consultation
from services.inventory.app import create_service as inventory
from services.scheduling.app import create_service as scheduling
from shared.contracts import REGISTRY, examples, topic_of
from shared.envelope import encode, new_event
from shared.runtime.kafka_client import Kafka, check_group
from shared.runtime.metrics import HANDLED
from tests.support.cli import clinic

APPROVED = REGISTRY.by_name("ConsultationApproved")
SCHEDULED = REGISTRY.by_name("SessionScheduled")
RECORDED = REGISTRY.by_name("ConsultationRecorded")


async def publish(settings, model, **fields) -> None:
    event = new_event(model.model_validate({**examples(model)[0], **fields}), source="/clinic/tests")
    value, headers = encode(event)
    producer = Kafka.of(settings).producer(enable_idempotence=True, acks="all", request_timeout_ms=10000)
    try:
        await producer.start()
        await producer.send_and_wait(topic_of(model, settings.topic_prefix), value, key=event.key.encode(), headers=headers)
    finally:
        await producer.stop()


async def records(settings, model, seconds: float = 3.0) -> list:
    """What a group-less reader with these settings gets from every partition of the topic within ``seconds``."""
    topic = topic_of(model, settings.topic_prefix)
    consumer = Kafka.of(settings).consumer(enable_auto_commit=False, request_timeout_ms=10000)
    found = []
    try:
        await consumer.start()
        consumer.assign([TopicPartition(topic, p) for p in range(settings.topic_partitions)])
        await consumer.seek_to_beginning()
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(batch)
    finally:
        await consumer.stop()
    return found


async def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(deployment):
    with pytest.raises(KafkaConnectionError):
        await publish(deployment.settings, RECORDED)

    wrong = deployment.as_("operator").model_copy(update={"kafka_password": SecretStr("wrong-Password-0c4e")})
    code, out, err = await clinic(wrong, "lag")
    assert code == 4, err
    assert err.strip() == "clinic lag: Kafka refused the credentials of User:clinic-operator (SCRAM-SHA-512): check CLINIC_KAFKA_USERNAME and CLINIC_KAFKA_PASSWORD"
    assert "wrong-Password-0c4e" not in out + err

    code, _, err = await clinic(deployment.settings, "lag")
    assert code == 3 and "with a PLAINTEXT listener there (CLINIC_KAFKA_SECURITY_PROTOCOL)" in err and len(err.strip().splitlines()) == 1


async def test_the_scheduling_principal_cannot_publish_a_consultation_approval(deployment):
    with pytest.raises(TopicAuthorizationFailedError):
        await publish(deployment.as_("scheduling"), APPROVED)
    await publish(deployment.as_("scheduling"), SCHEDULED)  # its own event it may

    assert len(await records(deployment.as_("operator"), SCHEDULED)) == 1
    assert await records(deployment.as_("operator"), APPROVED, seconds=1) == []


async def test_an_integrator_publishes_input_events_but_cannot_read_patient_events(deployment):
    await publish(deployment.as_("consultation"), APPROVED)
    await publish(deployment.as_("integrator"), RECORDED)
    assert len(await records(deployment.as_("operator"), APPROVED)) == 1

    assert await records(deployment.as_("integrator"), APPROVED) == []  # not even its metadata: nothing is ever fetched
    with pytest.raises(TopicAuthorizationFailedError):
        await records(deployment.as_("integrator"), RECORDED, seconds=1)  # its own input topic: it may write it, not read it back
    code, out, err = await clinic(deployment.as_("integrator"), "tail", "consultation-approved", "--from-beginning", "--exit-at-end")
    assert code == 4 and out == ""
    assert err.strip() == (
        f"clinic tail: Kafka denied User:clinic-integrator access to topic {topic_of(APPROVED, deployment.settings.topic_prefix)}: "
        "no grant for it (clinic acl list shows what each principal may do)"
    )
    with pytest.raises(TopicAuthorizationFailedError):
        await publish(deployment.as_("integrator"), SCHEDULED)


def handled() -> Counter[tuple[str, ...]]:
    """Events the services in this process have handled, by service, type and outcome (clinic_events_handled_total)."""
    return Counter({
        (sample.labels["service"], sample.labels["type"], sample.labels["outcome"]): int(sample.value)
        for metric in HANDLED.collect() for sample in metric.samples if sample.name.endswith("_total")
    })


class Integrator:
    """Another clinic system: publishes as the integrator; what the services answer is read by the operator."""

    def __init__(self, deployment) -> None:
        prefix = deployment.settings.topic_prefix
        self.writer = EventClient(Kafka.of(deployment.as_("integrator")), prefix)
        self.reader = EventClient(Kafka.of(deployment.as_("operator")), prefix)

    async def publish(self, data, **attributes):
        return await self.writer.publish(data, **attributes)

    async def events(self, model, where=lambda data: True):
        return await self.reader.events(model, where)


async def test_the_four_services_complete_a_journey_each_as_its_own_principal(deployment):
    services = [create(deployment.as_(name)) for name, create in
                (("consultation", consultation), ("scheduling", scheduling), ("inventory", inventory), ("aftercare", aftercare))]
    hands = Integrator(deployment)
    async with contextlib.AsyncExitStack() as stack:
        for client in (hands.writer, hands.reader):
            await stack.enter_async_context(client)
        for service in services:
            await stack.enter_async_context(service)
        before = handled()
        try:
            seen = await Journey(hands, timeout=90).play()
        except AssertionError as failure:  # say what the services did meanwhile, not only what was missing
            done = {" ".join(key): count for key, count in sorted((handled() - before).items())}
            raise AssertionError(f"{failure}; handled meanwhile: {done}; dead-lettered: {[s.stats.dead_lettered for s in services]}") from failure
    assert seen["ConsultationApproved"] and seen["AdverseEventEscalated"] and seen["TreatmentPaused"]
    assert not any(service.stats.dead_lettered for service in services), [s.stats.dead_lettered for s in services]


@pytest.mark.parametrize(
    ("name", "create", "principal", "password", "expected"),
    [
        ("inventory", inventory, "inventory", "wrong-Password-5b1a",
         "Kafka refused the credentials of User:clinic-inventory (SCRAM-SHA-512): check CLINIC_KAFKA_USERNAME and CLINIC_KAFKA_PASSWORD, retrying"),
        ("consultation", consultation, "aftercare", None, "Kafka denied User:clinic-aftercare access to topic s"),
    ],
    ids=["wrong password", "another service's principal"],
)
async def test_a_refused_service_is_not_ready_and_retries_saying_what_is_missing(deployment, caplog, name, create, principal, password, expected):
    settings = deployment.as_(principal).model_copy(update={"retry_max_seconds": 1.0})
    if password:
        settings = settings.model_copy(update={"kafka_password": SecretStr(password)})
    service = create(settings)
    starting = asyncio.create_task(service.start())
    try:
        await eventually(lambda: _logged(caplog, f"clinic.{name}", expected), timeout=30, what="the refusal logged")
        assert not starting.done(), "a refused service keeps retrying"
        assert service.broker is None
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await service.stop()
    assert password is None or password not in caplog.text


async def _logged(caplog, logger: str, text: str) -> bool:
    return any(r.name == logger and text in r.getMessage() and r.getMessage().endswith(", retrying") for r in caplog.records)


async def test_a_principal_may_use_only_its_own_consumer_group(deployment):
    own = deployment.as_("inventory")
    await check_group(Kafka.of(own), own.group_id("inventory"))
    with pytest.raises(GroupAuthorizationFailedError):
        await check_group(Kafka.of(own), own.group_id("scheduling"))
    with pytest.raises(GroupAuthorizationFailedError):
        await check_group(Kafka.of(deployment.as_("integrator")), own.group_id("inventory"))


async def test_clinic_acl_apply_is_idempotent_for_the_admin_and_refused_to_anyone_else(deployment):
    code, out, err = await clinic(deployment.as_("admin"), "acl", "apply")
    grants = access.grants(deployment.settings.topic_prefix)
    assert code == 0, err
    assert out.strip() == f"created 0 topic(s); {len(grants)} ACLs in place for {len({g.principal for g in grants})} principals on Kafka at {deployment.settings.kafka_bootstrap_servers}"
    code, _, err = await clinic(deployment.as_("operator"), "acl", "apply")
    assert code == 4 and err.startswith("clinic acl apply: Kafka denied User:clinic-operator") and len(err.strip().splitlines()) == 1


async def test_clinic_acl_apply_says_so_when_the_broker_enforces_nothing(settings):
    code, _, err = await clinic(settings, "acl", "apply")
    assert code == 1 and "the broker has no authorizer (authorizer.class.name): the topics exist, no ACL was applied" in err
    assert len(err.strip().splitlines()) == 1
