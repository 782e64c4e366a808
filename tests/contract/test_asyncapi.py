"""The system's AsyncAPI document is generated from the code and kept current in the repository."""

from __future__ import annotations

import json

from shared.asyncapi import DOCUMENT, SERVICES, consumed_by, render
from shared.contracts import REGISTRY


def test_the_checked_in_asyncapi_document_is_current():
    assert DOCUMENT.read_text() == render(), "run `make asyncapi` and commit asyncapi/clinic.asyncapi.json"


def test_every_event_has_a_channel_and_every_consumer_an_operation():
    document = json.loads(DOCUMENT.read_text())
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {model.event_type for model in REGISTRY} <= addresses
    titles = {operation.get("summary", "") + name for name, operation in document["operations"].items()}
    for service in SERVICES:
        assert consumed_by(service), f"{service} consumes nothing?"
        for model in consumed_by(service):
            assert any(service in t and model.event_name().replace("-", "_") in t for t in titles), (service, model.__name__)


def test_message_payloads_carry_the_contract_schemas():
    document = json.loads(DOCUMENT.read_text())
    schemas = document["components"]["schemas"]
    for model in REGISTRY:
        assert model.__name__ in schemas, model.__name__
        assert schemas[model.__name__].get("properties"), model.__name__
