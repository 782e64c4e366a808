"""Interop with the CNCF CloudEvents SDK for Python, both ways, in Kafka binary and structured mode.

An integrator may use the SDK's v2 API (``cloudevents.core.bindings.kafka``) or its v1 API (``cloudevents.kafka``
in SDK 1.x, ``cloudevents.v1.kafka`` in 2.x); what either produces is decoded by our envelope and
validated by the contract model, and what we publish is read back by both with the same attributes and data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cloudevents.core.bindings import kafka as sdk
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from cloudevents.v1 import kafka as sdk_v1
from cloudevents.v1.http import CloudEvent as SdkV1Event

from shared.contracts import REGISTRY, EventData, examples
from shared.envelope import CloudEvent, decode, encode, new_event, to_structured

MODELS = list(REGISTRY)
WHEN = datetime(2026, 3, 2, 9, 15, 30, 123000, tzinfo=UTC)


def example(model: type[EventData]) -> dict:
    return examples(model)[0]


def attributes(model: type[EventData], data: dict, **extra: str) -> dict:
    parsed = model.model_validate(data)
    return {
        "id": f"sdk-{model.event_name()}",
        "source": "/ehr/sdk-producer",
        "type": model.event_type,
        "time": WHEN,
        "subject": parsed.subject(),
        "datacontenttype": "application/json",
        "correlationid": "flow-SDK42",
        "partitionkey": parsed.key(),
        **extra,
    }


def v1_attributes(model: type[EventData], data: dict) -> dict:
    found = attributes(model, data)
    found["time"] = WHEN.isoformat().replace("+00:00", "Z")
    return {k: v for k, v in found.items() if v is not None}


def ours(message) -> CloudEvent:
    headers = list(message.headers.items())
    return decode(message.value if isinstance(message.value, bytes) else message.value.encode(), headers)


def assert_accepted(event: CloudEvent, model: type[EventData], data: dict) -> None:
    assert isinstance(event.data, model)
    assert event.data == model.model_validate(data)
    assert (event.id, event.source, event.type) == (f"sdk-{model.event_name()}", "/ehr/sdk-producer", model.event_type)
    assert event.time == WHEN
    assert event.correlation_id == "flow-SDK42"
    assert event.subject == event.data.subject()
    assert event.key == event.data.key()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_an_sdk_event_in_binary_mode_is_decoded_and_validated(model):
    data = example(model)
    message = sdk.to_binary(SdkEvent(attributes(model, data), data), JSONFormat())
    assert message.headers["content-type"] == b"application/json" and "ce_id" in message.headers
    assert_accepted(ours(message), model, data)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_an_sdk_event_in_structured_mode_is_decoded_and_validated(model):
    data = example(model)
    message = sdk.to_structured(SdkEvent(attributes(model, data), data), JSONFormat())
    assert message.headers["content-type"].startswith(b"application/cloudevents+json")
    assert_accepted(ours(message), model, data)


@pytest.mark.parametrize("mode", ["binary", "structured"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_an_event_from_the_sdks_v1_api_is_decoded_and_validated(model, mode):
    data = example(model)
    event = SdkV1Event(v1_attributes(model, data), data)
    message = sdk_v1.to_binary(event) if mode == "binary" else sdk_v1.to_structured(event)
    assert message.key == model.model_validate(data).key()
    assert_accepted(ours(message), model, data)


def test_a_v1_structured_event_without_any_content_type_is_still_recognised():
    model = REGISTRY.by_name("session-completed")
    data = example(model)
    attrs = {k: v for k, v in v1_attributes(model, data).items() if k != "datacontenttype"}
    message = sdk_v1.to_structured(SdkV1Event(attrs, data))
    assert "content-type" not in message.headers
    assert_accepted(ours(message), model, data)


def published(model: type[EventData]) -> tuple[CloudEvent, bytes, dict[str, bytes]]:
    cause = new_event(model.model_validate(example(model)), source="/clinic/cause", time=WHEN)
    event = cause.caused(model.model_validate(example(model)), source=f"/clinic/{model.producer}", time=WHEN)
    value, headers = encode(event)
    return event, value, dict(headers)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_what_we_publish_is_read_back_by_the_sdk_with_the_same_attributes_and_data(model):
    event, value, headers = published(model)
    message = sdk.KafkaMessage(headers=headers, key=event.key.encode(), value=value)
    read = sdk.from_binary(message, JSONFormat())
    assert (read.get_id(), read.get_source(), read.get_type(), read.get_specversion()) == (event.id, event.source, event.type, "1.0")
    assert read.get_time() == WHEN and read.get_subject() == event.subject
    assert read.get_datacontenttype() == "application/json"
    assert read.get_extension("correlationid") == event.correlation_id and read.get_extension("causationid") == event.causation_id
    assert read.get_extension("partitionkey") == event.key
    assert read.get_data() == event.data.model_dump(mode="json")

    legacy = sdk_v1.from_binary(sdk_v1.KafkaMessage(headers, event.key.encode(), value))
    assert (legacy["id"], legacy["type"], legacy["correlationid"]) == (event.id, event.type, event.correlation_id)
    assert legacy.get_data() == event.data.model_dump(mode="json")


def test_what_clinic_tail_json_prints_is_a_structured_event_the_sdk_reads():
    model = REGISTRY.by_name("adverse-event-escalated")
    event, _, _ = published(model)
    message = sdk.KafkaMessage(headers={"content-type": b"application/cloudevents+json"}, key=None, value=to_structured(event))
    read = sdk.from_structured(message, JSONFormat())
    assert (read.get_id(), read.get_type(), read.get_time()) == (event.id, event.type, WHEN)
    assert read.get_extension("traceparent") == event.traceparent
    assert read.get_data() == event.data.model_dump(mode="json")
