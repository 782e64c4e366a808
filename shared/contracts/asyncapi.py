"""AsyncAPI 3.0 documents, built from the contract registry and what each service consumes.

Written for client generators: one channel per Kafka topic (and one per dead-letter topic), each
message with its CloudEvents headers (binary content mode), its Kafka key and where its correlation id
is, operations naming which service sends or receives, and the listeners a deployment may offer.

The whole system's document is written by ``python -m clinic.asyncapi`` (make asyncapi); a running service
serves its own part at ``/asyncapi.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic.json_schema import models_json_schema

from shared.contracts import REGISTRY, EventData, dead_letters, dlq_topic, examples, topic_of
from shared.contracts.base import MAX_EVENT_BYTES
from shared.versions import KAFKA_VERSION

VERSION = "1.1.0"
KAFKA_BINDING = "0.5.0"
CORRELATION = "#/components/correlationIds/ce_correlationid"
DLQ_HEADERS = {
    "dlq_reason": dead_letters.describe(),
    "dlq_error": "What failed, without event data (field locations and messages, or an exception class); at most 1000 characters.",
    "dlq_topic": "The topic the record was read from.",
    "dlq_partition": "Its partition there (decimal).",
    "dlq_offset": "Its offset there (decimal).",
    "dlq_group": "Consumer group of the service that dead-lettered it.",
    "dlq_service": "The service that dead-lettered it.",
    "dlq_failed_at": "When it was dead-lettered (ISO 8601, UTC).",
}
_NUMERIC = ("dlq_partition", "dlq_offset")


def specification(consumed: Mapping[str, Sequence[type[EventData]]], bootstrap: str = "kafka:9092") -> dict[str, Any]:
    """The whole system's document, or one service's (what it consumes, publishes and dead-letters).

    ``consumed`` names each service of the document with the event types its handlers take."""
    services = tuple(consumed)
    whole = len(services) > 1
    consumers = {service: list(models) for service, models in consumed.items()}
    producers = {service: REGISTRY.produced_by(service) for service in (*services, "external") if whole or service != "external"}
    models = sorted({m for ms in (*consumers.values(), *producers.values()) for m in ms}, key=lambda m: m.event_type)
    dead_lettered = sorted({m for ms in consumers.values() for m in ms}, key=lambda m: m.event_type)

    channels: dict[str, Any] = {}
    for model in models:
        channels[model.event_type] = _channel(model, consumers)
    for model in dead_lettered:
        channels[dlq_topic(model.event_type)] = _dlq_channel(model, consumers)
    operations: dict[str, Any] = {}
    for service, published in producers.items():
        for model in published:
            operations[f"{service}.to_{_snake(model)}"] = _operation("send", service, model.event_type, model.__name__, _sends(service, model))
    for service, receives in consumers.items():
        for model in receives:
            operations[f"{service}.on_{_snake(model)}"] = _operation(
                "receive", service, model.event_type, model.__name__, f"{service} reacts to {model.__name__}.", group=f"clinic.{service}"
            )
            operations[f"{service}.dead_letter_{_snake(model)}"] = _operation(
                "send", service, dlq_topic(model.event_type), "DeadLetter",
                f"{service} moves a {model.event_type} record it cannot decode, validate or handle to {dlq_topic(model.event_type)}.",
            )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Clinic workflow backbone" if whole else f"Clinic {services[0]} service",
            "version": VERSION,
            "description": _INFO,
        },
        "defaultContentType": "application/json",
        "servers": _servers(bootstrap),
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {**_payload_schemas(models), **{f"{m.__name__}Headers": _headers_schema(m) for m in models}, **(
                {"DeadLetterHeaders": _dlq_headers_schema(), "DeadLetterValue": _DLQ_VALUE} if dead_lettered else {}
            )},
            "messages": {**{m.__name__: _message(m) for m in models}, **({"DeadLetter": _DLQ_MESSAGE} if dead_lettered else {})},
            "correlationIds": {
                "ce_correlationid": {
                    "description": "The CloudEvents extension attribute `correlationid` (Kafka header `ce_correlationid`): the id of the "
                    "first event of the flow, carried unchanged by every event it caused.",
                    "location": "$message.header#/ce_correlationid",
                }
            },
            "securitySchemes": _SECURITY,
        },
    }


def _snake(model: type[EventData]) -> str:
    return model.event_name().replace("-", "_")


def _summary(model: type[EventData]) -> str:
    return (model.__doc__ or model.__name__).strip().split("\n\n")[0].replace("\n", " ")


def _sends(service: str, model: type[EventData]) -> str:
    if service == "external":
        return f"Other clinic systems publish {model.__name__}: {_summary(model)}"
    return f"{service} publishes {model.__name__}: {_summary(model)}"


def _channel(model: type[EventData], consumers: dict[str, list[type[EventData]]]) -> dict[str, Any]:
    readers = [service for service, consumed in consumers.items() if model in consumed]
    who = f"Published by {model.producer}" + (f"; consumed by {', '.join(readers)}." if readers else ".")
    return {
        "address": topic_of(model),
        "title": model.__name__,
        "summary": _summary(model),
        "description": f"{who} Kafka key: {model.key_field}. A deployment may put a prefix before every topic name (CLINIC_TOPIC_PREFIX).",
        "messages": {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}},
        "bindings": {"kafka": {"topic": topic_of(model), "bindingVersion": KAFKA_BINDING}},
    }


def _dlq_channel(model: type[EventData], consumers: dict[str, list[type[EventData]]]) -> dict[str, Any]:
    readers = [service for service, consumed in consumers.items() if model in consumed]
    return {
        "address": dlq_topic(topic_of(model)),
        "title": f"{model.__name__} dead letters",
        "summary": f"Records of {topic_of(model)} that {', '.join(readers)} could not decode, validate or handle.",
        "description": "The original record (value, key and headers) plus dlq_* headers naming the error and where it was read. "
        "`clinic dlq list` shows them; `clinic dlq replay` re-publishes them to their original topic after a fix.",
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
        "bindings": {"kafka": {"topic": dlq_topic(topic_of(model)), "bindingVersion": KAFKA_BINDING}},
    }


def _operation(action: str, service: str, channel: str, message: str, summary: str, group: str | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}],
        "tags": [{"name": service}],
    }
    if group:
        operation["bindings"] = {"kafka": {"groupId": {"type": "string", "enum": [group]}, "bindingVersion": KAFKA_BINDING}}
    return operation


def _message(model: type[EventData]) -> dict[str, Any]:
    return {
        "name": model.__name__,
        "title": model.__name__,
        "summary": _summary(model),
        "description": (model.__doc__ or "").strip() + "\n\nCloudEvents 1.0 in Kafka binary content mode: the value is the JSON data, "
        "the attributes are `ce_` headers. Structured mode (`content-type: application/cloudevents+json`, the whole event as the value) is accepted too. "
        + _LIMITS,
        "contentType": "application/json",
        "headers": {"$ref": f"#/components/schemas/{model.__name__}Headers"},
        "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        "correlationId": {"$ref": CORRELATION},
        "bindings": {"kafka": {"key": _field_schema(model, model.key_field, "Kafka key: "), "bindingVersion": KAFKA_BINDING}},
        "examples": [_example(model, data, i) for i, data in enumerate(examples(model))],
    }


def _example(model: type[EventData], data: dict[str, Any], index: int) -> dict[str, Any]:
    from shared.envelope import encode, new_event

    event = new_event(
        model.model_validate(data),
        source=f"/clinic/{model.producer}",
        id=f"00000000-0000-4000-8000-{index:012d}",
        time=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    _, headers = encode(event)
    return {"name": f"{model.event_name()}-{index + 1}", "headers": {k: v.decode() for k, v in headers}, "payload": data}


def _field_schema(model: type[EventData], field: str, prefix: str) -> dict[str, Any]:
    schema = {k: v for k, v in model.model_json_schema()["properties"][field].items() if k != "title"}
    schema["description"] = prefix + schema.get("description", f"the event's {field}")
    return schema


def _headers_schema(model: type[EventData]) -> dict[str, Any]:
    subject = (
        _field_schema(model, model.subject_field, f"CloudEvents subject: the data's {model.subject_field}. ")
        if model.subject_field else {"type": "string", "description": "CloudEvents subject (unused by this event)."}
    )
    return {
        "type": "object",
        "description": f"Kafka headers of {model.__name__}: the CloudEvents attributes (binary content mode) and the W3C trace context. "
        "Other `ce_` headers are CloudEvents extensions and are kept.",
        "required": ["ce_specversion", "ce_id", "ce_source", "ce_type"],
        "properties": {
            "ce_specversion": {"type": "string", "const": "1.0", "description": "CloudEvents specversion."},
            "ce_id": {"type": "string", "minLength": 1, "description": "CloudEvents id, unique per source; consumers handle each (source, id) once.",
                      "examples": ["0b9a1c52-6c1e-4c1b-9d0f-3f6f4c1e2a10"]},
            "ce_source": {"type": "string", "format": "uri-reference", "minLength": 1, "description": "CloudEvents source: the system that published it.",
                          "examples": [f"/clinic/{model.producer}"]},
            "ce_type": {"type": "string", "const": model.event_type, "description": "CloudEvents type; also the topic name."},
            "ce_time": {"type": "string", "format": "date-time", "description": "CloudEvents time (RFC 3339, UTC) when it happened."},
            "ce_subject": subject,
            "content-type": {"type": "string", "const": "application/json", "description": "CloudEvents datacontenttype of the value (always sent by the services)."},
            "ce_correlationid": {"type": "string", "description": "Extension: id of the first event of the flow (its own id when it starts one)."},
            "ce_causationid": {"type": "string", "description": "Extension: id of the event that caused this one."},
            "traceparent": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$", "description": "W3C trace context of the span that published it."},
            "dlq_replayed_from": {"type": "string", "pattern": "^.+:[0-9]+:[0-9]+$",
                                  "description": "Set by `clinic dlq replay`: the dead letter (topic:partition:offset) this record re-publishes."},
        },
        "additionalProperties": {"type": "string"},
    }


def _dlq_headers_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {name: {"type": "string", "description": text} for name, text in DLQ_HEADERS.items()}
    for name in _NUMERIC:
        properties[name]["pattern"] = "^[0-9]+$"
    properties["dlq_failed_at"]["format"] = "date-time"
    properties["dlq_value_dropped"] = {"type": "string", "description": "Present when the broker refused the dead letter with its value: "
                                       "the error class; the value is then empty and only the dlq_* and ce_id/ce_type/ce_source headers are kept."}
    return {
        "type": "object",
        "description": "The original record's headers (its ce_* CloudEvents attributes, when it had any) plus these dlq_* headers.",
        "required": list(DLQ_HEADERS),
        "properties": properties,
        "additionalProperties": {"type": "string"},
    }


_DLQ_VALUE = {"type": "string", "format": "binary", "description": "The original record value, byte for byte (it may not be JSON: that may be why it failed)."}
_DLQ_MESSAGE = {
    "name": "DeadLetter",
    "title": "Dead letter",
    "summary": "A record a service could not decode, validate or handle, with the reason.",
    "contentType": "application/octet-stream",
    "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
    "payload": {"$ref": "#/components/schemas/DeadLetterValue"},
    "bindings": {"kafka": {"key": {"type": "string", "description": "The original record's key, unchanged."}, "bindingVersion": KAFKA_BINDING}},
}
_SECURITY = {
    "scramSha512": {
        "type": "scramSha512",
        "description": "SASL/SCRAM-SHA-512 (Kafka sasl.mechanism=SCRAM-SHA-512) with a username and password issued per system.",
    },
    "mutualTls": {
        "type": "X509",
        "description": "TLS with a client certificate (Kafka security.protocol=SSL with ssl.client.auth=required).",
    },
}
_INFO = (
    "Events exchanged by the consultation, scheduling, inventory and aftercare services and the clinic's other systems "
    "(EHR, front desk, treatment room, patient app, supplier). Every event is a CloudEvents 1.0 event in Kafka binary content mode, "
    "one topic per event type (major version in the name), keyed by the pseudonymous patient id (lot and ingredient events by lot "
    "number or ingredient code). Records a service cannot accept go to `<topic>.dlq`. JSON Schemas of every payload are also in "
    "the repository's schemas/ folder. "
)
_LIMITS = (
    f"Limits: a record (value plus headers) above {MAX_EVENT_BYTES} bytes ({MAX_EVENT_BYTES // 1024} KiB, CLINIC_MAX_EVENT_BYTES) is "
    "dead-lettered as `oversized` before it is parsed; a field the contract does not have is refused (`additionalProperties: false`) "
    "and dead-lettered as `schema-invalid`."
)
_INFO += _LIMITS


def _servers(bootstrap: str) -> dict[str, Any]:
    variable = {"bootstrap": {"default": "kafka.clinic.example:9093", "description": "host:port of the broker listener with this security protocol."}}
    return {
        "compose": {
            "host": bootstrap, "protocol": "kafka", "protocolVersion": KAFKA_VERSION,
            "description": "security.protocol=PLAINTEXT: docker compose's internal listener (localhost:9094 from the host), and `clinic infra up` on 127.0.0.1:9092. For development only.",
        },
        "sasl-plaintext": {
            "host": "{bootstrap}", "protocol": "kafka", "protocolVersion": KAFKA_VERSION, "variables": variable,
            "description": "security.protocol=SASL_PLAINTEXT with sasl.mechanism=SCRAM-SHA-512: authenticated, not encrypted; a private network only.",
            "security": [{"$ref": "#/components/securitySchemes/scramSha512"}],
        },
        "ssl": {
            "host": "{bootstrap}", "protocol": "kafka-secure", "protocolVersion": KAFKA_VERSION, "variables": variable,
            "description": "security.protocol=SSL: TLS, the client authenticated by its certificate.",
            "security": [{"$ref": "#/components/securitySchemes/mutualTls"}],
        },
        "sasl-ssl": {
            "host": "{bootstrap}", "protocol": "kafka-secure", "protocolVersion": KAFKA_VERSION, "variables": variable,
            "description": "security.protocol=SASL_SSL with sasl.mechanism=SCRAM-SHA-512: TLS and a password. What a production deployment should offer other systems.",
            "security": [{"$ref": "#/components/securitySchemes/scramSha512"}],
        },
    }


def _payload_schemas(models: list[type[EventData]]) -> dict[str, Any]:
    if not models:
        return {}
    _, top = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = top.get("$defs", {})
    return defs
