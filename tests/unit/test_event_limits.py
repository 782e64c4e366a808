"""Size and shape limits at decode: unknown fields are refused as schema-invalid (naming the field), and a
record above the size limit is refused as oversized before it is parsed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from shared.contracts import REGISTRY, examples
from shared.contracts.base import MAX_EVENT_BYTES
from shared.contracts.consultation import ConsultationRecorded
from shared.contracts.dead_letters import REASONS
from shared.envelope import InvalidEvent, decode, encode, new_event, record_size, to_structured
from shared.settings import Settings
from tests.unit.consultation.factories import recorded

PADDING = 900 * 1024


def consultation() -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    value, headers = encode(new_event(recorded(), source="/clinic/ehr"))
    return json.loads(value), headers


def refusal(value: bytes, headers: list[tuple[str, bytes]], **options: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as refused:
        decode(value, headers, **options)
    return refused.value


def test_a_consultation_padded_with_a_900_kb_unknown_field_is_refused_as_oversized():
    data, headers = consultation()
    padded = json.dumps({**data, "notes": "x" * PADDING}).encode()
    refused = refusal(padded, headers)
    assert refused.reason == "oversized"
    assert str(MAX_EVENT_BYTES) in refused.detail and "CLINIC_MAX_EVENT_BYTES" in refused.detail
    assert "x" * 10 not in refused.detail


def test_without_the_size_limit_the_same_padding_is_still_refused_as_an_unknown_field():
    data, headers = consultation()
    refused = refusal(json.dumps({**data, "notes": "x" * PADDING}).encode(), headers, max_bytes=None)
    assert refused.reason == "schema-invalid"
    assert refused.detail.startswith("notes: unknown field") and "x" * 10 not in refused.detail


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d | {"nickname": "Jo"}, "nickname"),
        (lambda d: d | {"medical_history": d["medical_history"] | {"blood_type": "A+"}}, "medical_history.blood_type"),
        (lambda d: d | {"lab_results": [d["lab_results"][0] | {"lab": "north"}, *d["lab_results"][1:]]}, "lab_results.0.lab"),
    ],
    ids=["top-level", "nested", "in-a-list"],
)
def test_an_unknown_field_anywhere_in_the_data_is_schema_invalid_and_named(change, where):
    data, headers = consultation()
    refused = refusal(json.dumps(change(data)).encode(), headers)
    assert refused.reason == "schema-invalid"
    assert refused.detail.split(":")[0] == where, refused.detail
    assert "unknown field" in refused.detail and "Jo" not in refused.detail and "A+" not in refused.detail


def test_an_unknown_field_is_refused_in_structured_mode_too_while_unknown_attributes_stay_extensions():
    event = new_event(recorded(), source="/clinic/ehr")
    document = json.loads(to_structured(event))
    structured = [("content-type", b"application/cloudevents+json")]
    with_extension = decode(json.dumps({**document, "clinicsite": "north"}).encode(), structured)
    assert with_extension.extensions == {"clinicsite": "north"} and with_extension.data == event.data
    document["data"]["nickname"] = "Jo"
    refused = refusal(json.dumps(document).encode(), structured)
    assert refused.reason == "schema-invalid" and refused.detail.startswith("nickname: unknown field")


def test_a_huge_unknown_field_name_is_shortened_in_the_error():
    data, headers = consultation()
    refused = refusal(json.dumps({**data, "n" * 5000: 1}).encode(), headers)
    assert refused.reason == "schema-invalid" and len(refused.detail) < 200


def test_the_limit_counts_value_and_headers_and_allows_exactly_the_limit():
    data, headers = consultation()
    value = json.dumps(data).encode()
    size = record_size(value, headers)
    assert size == len(value) + sum(len(k) + len(v) for k, v in headers)
    assert decode(value, headers, max_bytes=size).data == recorded()
    assert refusal(value, headers, max_bytes=size - 1).reason == "oversized"
    big_header = [*headers, ("x-padding", b"y" * 2048)]
    assert refusal(value, big_header, max_bytes=size + 2047).reason == "oversized"


def test_oversized_is_checked_before_parsing_so_garbage_is_oversized_not_malformed():
    assert refusal(b"{" * (MAX_EVENT_BYTES + 1), [("content-type", b"application/json")]).reason == "oversized"
    assert refusal(b"{" * 1000, [("content-type", b"application/json")]).reason == "malformed"


@pytest.mark.parametrize("model", list(REGISTRY), ids=lambda m: m.__name__)
def test_every_example_fits_well_within_the_limit(model):
    for data in examples(model):
        value, headers = encode(new_event(model.model_validate(data), source="/x"))
        assert record_size(value, headers) < MAX_EVENT_BYTES / 10


def test_the_setting_defaults_to_the_documented_limit_and_is_read_from_the_environment(monkeypatch):
    assert Settings().max_event_bytes == MAX_EVENT_BYTES == 256 * 1024
    monkeypatch.setenv("CLINIC_MAX_EVENT_BYTES", "65536")
    assert Settings().max_event_bytes == 65536


def test_oversized_is_a_documented_dead_letter_reason():
    assert "oversized" in REASONS and "schema-invalid" in REASONS


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for field in model.model_fields.values():
        for candidate in _types(field.annotation):
            _models(candidate, seen)


def _types(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [t for arg in getattr(annotation, "__args__", ()) for t in _types(arg)]


def test_every_contract_model_and_value_object_forbids_unknown_fields():
    seen: set[type[BaseModel]] = set()
    for model in REGISTRY:
        _models(model, seen)
    assert len(seen) > len(REGISTRY)  # value objects found too
    assert [m.__name__ for m in seen if m.model_config.get("extra") != "forbid"] == []
    assert ConsultationRecorded.model_json_schema()["additionalProperties"] is False
