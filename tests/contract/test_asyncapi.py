"""The system's AsyncAPI document is generated from the code, kept current, and says what a client
generator needs: headers, key, correlation, one channel per topic, dead letters, security.

The official parser validates it too (`make lint-asyncapi`, part of `make test`)."""

from __future__ import annotations

import json

import jsonschema
import pytest
from referencing import Registry, Resource

from clinic import operations
from clinic.asyncapi import DOCUMENT, SERVICES, consumed_by, render, specification
from shared.contracts import REGISTRY, dlq_topic, examples
from shared.envelope import encode, new_event

DOC = json.loads(DOCUMENT.read_text())
CLOUDEVENTS_HEADERS = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "content-type", "ce_correlationid", "ce_causationid", "traceparent"}


def resolve(ref: str) -> dict:
    node = DOC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def validator(schema: dict) -> jsonschema.Validator:
    registry = Registry().with_resource("urn:clinic-asyncapi", Resource.opaque(DOC))
    return jsonschema.Draft202012Validator({**schema, "$id": "urn:clinic-asyncapi"} if "$ref" not in schema else {"$ref": "urn:clinic-asyncapi" + schema["$ref"]}, registry=registry)


def test_the_checked_in_asyncapi_document_is_current():
    assert DOCUMENT.read_text() == render(), "run `make asyncapi` and commit asyncapi/clinic.asyncapi.json"


def test_one_channel_per_topic_and_one_per_dead_letter_topic():
    addresses = [channel["address"] for channel in DOC["channels"].values()]
    consumed = {m for service in SERVICES for m in consumed_by(service)}
    assert len(addresses) == len(set(addresses))
    assert set(addresses) == {m.event_type for m in REGISTRY} | {dlq_topic(m.event_type) for m in consumed}
    for channel in DOC["channels"].values():
        assert channel["bindings"]["kafka"]["topic"] == channel["address"]


def test_every_consumer_receives_and_every_producer_sends_on_its_topics_channel():
    operations_by = {(op["action"], op["tags"][0]["name"], resolve(op["channel"]["$ref"])["address"]) for op in DOC["operations"].values()}
    for service in SERVICES:
        assert consumed_by(service), f"{service} consumes nothing?"
        for model in consumed_by(service):
            assert ("receive", service, model.event_type) in operations_by, (service, model.__name__)
            assert ("send", service, dlq_topic(model.event_type)) in operations_by, (service, model.__name__)
    for model in REGISTRY:
        assert ("send", model.producer, model.event_type) in operations_by, model.__name__
    for name, op in DOC["operations"].items():
        if op["action"] == "receive":
            assert op["bindings"]["kafka"]["groupId"]["enum"] == [f"clinic.{op['tags'][0]['name']}"], name


@pytest.mark.parametrize("model", list(REGISTRY), ids=lambda m: m.__name__)
def test_each_message_declares_its_cloudevents_headers_key_and_correlation(model):
    message = DOC["components"]["messages"][model.__name__]
    headers = resolve(message["headers"]["$ref"])
    assert CLOUDEVENTS_HEADERS <= set(headers["properties"])
    assert set(headers["required"]) == {"ce_specversion", "ce_id", "ce_source", "ce_type"}
    assert headers["properties"]["ce_type"]["const"] == model.event_type
    assert resolve(message["correlationId"]["$ref"])["location"] == "$message.header#/ce_correlationid"
    key = message["bindings"]["kafka"]["key"]
    assert key["pattern"] == model.model_json_schema()["properties"][model.key_field]["pattern"]
    if model.key_field == "patient_id":
        assert key["pattern"].startswith("^pt_")
    assert resolve(message["payload"]["$ref"])["properties"].keys() == model.model_json_schema()["properties"].keys()


@pytest.mark.parametrize("model", list(REGISTRY), ids=lambda m: m.__name__)
def test_what_the_envelope_really_sends_matches_the_documented_headers_and_payload(model):
    message = DOC["components"]["messages"][model.__name__]
    assert len(message["examples"]) == len(examples(model)) > 0
    for data in examples(model):
        value, headers = encode(new_event(model.model_validate(data), source="/clinic/contract-test", causation_id="cause-1"))
        validator(message["headers"]).validate({k: v.decode() for k, v in headers})
        validator(message["payload"]).validate(json.loads(value))
    for example in message["examples"]:
        validator(message["headers"]).validate(example["headers"])
        validator(message["payload"]).validate(example["payload"])


def test_dead_letter_headers_are_the_ones_the_runtime_writes_and_replay_strips():
    headers = resolve(DOC["components"]["messages"]["DeadLetter"]["headers"]["$ref"])
    assert set(headers["required"]) == set(operations.DLQ_HEADERS)
    assert "dlq_value_dropped" in headers["properties"]
    for channel in DOC["channels"].values():
        if channel["address"].endswith(".dlq"):
            assert list(channel["messages"]) == ["DeadLetter"]


def test_servers_cover_every_kafka_security_protocol_a_deployment_may_use():
    servers = DOC["servers"]
    described = {s["description"].split(":")[0].split(" with ")[0] for s in servers.values()}
    assert described == {"security.protocol=PLAINTEXT", "security.protocol=SASL_PLAINTEXT", "security.protocol=SSL", "security.protocol=SASL_SSL"}
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["scramSha512"]["type"] == "scramSha512" and schemes["mutualTls"]["type"] == "X509"
    assert {s["protocol"] for s in servers.values() if "SSL" in s["description"].split(":")[0]} == {"kafka-secure"}
    assert "security" not in servers["compose"]


def test_a_service_document_holds_only_that_services_channels():
    document = specification(("scheduling",))
    addresses = {c["address"] for c in document["channels"].values()}
    expected = {m.event_type for m in consumed_by("scheduling")} | {m.event_type for m in REGISTRY.produced_by("scheduling")}
    assert addresses == expected | {dlq_topic(m.event_type) for m in consumed_by("scheduling")}
    assert document["info"]["title"] == "Clinic scheduling service"
    assert specification(("probe",))["channels"] == {}
