import json
from datetime import UTC, datetime

import pytest

from shared.contracts import REGISTRY, examples
from shared.envelope import InvalidEvent, child_traceparent, decode, encode, new_event, to_structured

MODEL = REGISTRY.by_name("SideEffectReported")


def event(**attributes):
    data = MODEL.model_validate(examples(MODEL)[0])
    return new_event(data, source="/clinic/patient-app", time=datetime(2026, 3, 3, 10, tzinfo=UTC), **attributes)


def test_binary_mode_round_trips_every_attribute():
    sent = event(correlation_id="corr-1", causation_id="cause-1", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    assert decode(*encode(sent)) == sent


def test_binary_mode_puts_attributes_in_ce_headers_and_data_in_the_value():
    value, headers = encode(event())
    names = dict(headers)
    assert names["ce_type"] == MODEL.event_type.encode()
    assert names["ce_time"] == b"2026-03-03T10:00:00Z"
    assert names["content-type"] == b"application/json"
    assert json.loads(value)["patient_id"].startswith("pt_")


def test_structured_mode_is_accepted_on_input():
    sent = event(correlation_id="corr-2")
    received = decode(to_structured(sent), [("content-type", b"application/cloudevents+json")])
    assert received == sent


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"{oops", [("content-type", b"application/json"), ("ce_type", MODEL.event_type.encode())], "malformed"),
        (b"", [], "malformed"),
        (b"{}", [("ce_id", b"1"), ("ce_source", b"/x"), ("ce_specversion", b"1.0")], "missing-attribute"),
        (b"{}", [("ce_id", b"1"), ("ce_source", b"/x"), ("ce_type", b"x"), ("ce_specversion", b"0.3")], "unsupported-specversion"),
        (b"{}", [("ce_id", b"1"), ("ce_source", b"/x"), ("ce_type", b"clinic.nothing.happened.v1"), ("ce_specversion", b"1.0")], "unknown-type"),
        (b"[]", [("ce_id", b"1"), ("ce_source", b"/x"), ("ce_type", MODEL.event_type.encode()), ("ce_specversion", b"1.0")], "schema-invalid"),
        (b"{}", [("ce_id", b"1"), ("ce_source", b"/x"), ("ce_type", MODEL.event_type.encode()), ("ce_specversion", b"1.0")], "schema-invalid"),
        (b"<xml/>", [("content-type", b"application/xml")], "malformed"),
        (b"[" * 200_000, [("content-type", b"application/json")], "malformed"),
    ],
)
def test_invalid_records_are_refused_with_a_stable_reason(value, headers, reason):
    with pytest.raises(InvalidEvent) as refused:
        decode(value, headers)
    assert refused.value.reason == reason


def test_a_schema_error_names_fields_but_never_echoes_their_values():
    value, headers = encode(event())
    data = json.loads(value) | {"patient_id": "Jane Example"}
    with pytest.raises(InvalidEvent) as refused:
        decode(json.dumps(data).encode(), headers)
    assert "patient_id" in refused.value.detail
    assert "Jane" not in refused.value.detail


def test_a_caused_event_keeps_the_correlation_and_the_trace():
    cause = event(correlation_id="corr-3", traceparent="00-" + "c" * 32 + "-" + "d" * 16 + "-01")
    effect = cause.caused(cause.data, source="/clinic/aftercare", time=cause.time)
    assert effect.correlation_id == "corr-3"
    assert effect.causation_id == cause.id
    assert effect.traceparent.split("-")[1] == "c" * 32
    assert effect.traceparent.split("-")[2] != "d" * 16


def test_a_new_trace_is_started_when_none_came_in():
    assert child_traceparent("garbage").startswith("00-") and len(child_traceparent(None)) == 55
