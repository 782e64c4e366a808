"""CloudEvents 1.0 over Kafka: the one place where events are encoded and decoded.

Binary content mode is what we publish: the data is the record value (JSON) and every attribute is a
``ce_``-prefixed header. Structured mode (``content-type: application/cloudevents+json``, the whole
event as the value) is accepted on input, so other clinic systems can use whichever their SDK does.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from shared.contracts import REGISTRY, EventData, Registry, UnknownEventType
from shared.contracts.base import MAX_EVENT_BYTES

SPECVERSION = "1.0"
JSON = "application/json"
STRUCTURED = "application/cloudevents+json"
_CORE = ("id", "source", "type", "specversion", "time", "subject")
_EXTENSIONS = {"correlationid": "correlation_id", "causationid": "causation_id"}
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
Headers = Sequence[tuple[str, bytes]]


class InvalidEvent(ValueError):
    """A record that is not a valid event of ours; ``reason`` is a stable code for the DLQ header."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


T = TypeVar("T", covariant=True)
M = TypeVar("M", bound=EventData)
A = TypeVar("A")
"""The payload's type: a contract model once decoded (``CloudEvent[SessionCompleted]``)."""


@dataclass(frozen=True)
class CloudEvent(Generic[T]):
    id: str
    source: str
    type: str
    data: T
    time: datetime
    subject: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    specversion: str = SPECVERSION

    @property
    def key(self) -> str | None:
        return self.data.key() if isinstance(self.data, EventData) else None

    def caused(self, data: M, *, source: str, id: str | None = None, time: datetime, traceparent: str | None = None) -> CloudEvent[M]:
        """An event caused by this one: same correlation, this one as the cause, same trace.

        ``traceparent``: the context of the span handling this event when spans are recorded
        (shared/runtime/tracing.py); without it, this event's trace with a new span id."""
        return new_event(
            data,
            source=source,
            id=id,
            time=time,
            correlation_id=self.correlation_id or self.id,
            causation_id=self.id,
            traceparent=traceparent or child_traceparent(self.traceparent),
        )


def new_event(
    data: M,
    *,
    source: str,
    id: str | None = None,
    time: datetime | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    traceparent: str | None = None,
) -> CloudEvent[M]:
    event_id = id or str(uuid.uuid4())
    return CloudEvent(
        id=event_id,
        source=source,
        type=data.event_type,
        data=data,
        time=time or datetime.now(UTC),
        subject=data.subject(),
        correlation_id=correlation_id or event_id,
        causation_id=causation_id,
        traceparent=traceparent or child_traceparent(None),
    )


def child_traceparent(parent: str | None) -> str:
    """W3C trace context: keep the trace id, new span id; start a trace when there is none."""
    match = _TRACEPARENT.match(parent or "")
    trace_id = match.group(1) if match else secrets.token_hex(16)
    flags = match.group(3) if match else "01"
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


def encode(event: CloudEvent[Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Binary content mode: (record value, headers). The key is ``event.key``."""
    data = event.data
    value = data.model_dump_json().encode() if isinstance(data, EventData) else json.dumps(data).encode()
    attributes: dict[str, str | None] = {
        "specversion": event.specversion,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": _format_time(event.time),
        "subject": event.subject,
        "correlationid": event.correlation_id,
        "causationid": event.causation_id,
        **event.extensions,
    }
    headers = [(f"ce_{name}", v.encode()) for name, v in attributes.items() if v is not None]
    headers.append(("content-type", JSON.encode()))
    if event.traceparent:
        headers.append(("traceparent", event.traceparent.encode()))
    return value, headers


def decode(value: bytes | None, headers: Headers, registry: Registry = REGISTRY, *, max_bytes: int | None = MAX_EVENT_BYTES) -> CloudEvent[Any]:
    """Binary or structured mode to a CloudEvent whose data is the validated contract model.

    Raises InvalidEvent with a stable reason code (shared/contracts/dead_letters.py): ``oversized``
    (value plus headers above ``max_bytes``; checked first, before anything is parsed; None: no limit),
    ``malformed``, ``missing-attribute``, ``unsupported-specversion``, ``unknown-type`` or
    ``schema-invalid`` (which includes fields the contract does not have).
    """
    if max_bytes is not None and (size := record_size(value, headers)) > max_bytes:
        raise InvalidEvent("oversized", f"record is {size} bytes (value and headers); the limit is {max_bytes} (CLINIC_MAX_EVENT_BYTES)")
    header_map = _header_map(headers)
    content_type = header_map.get("content-type", "")
    if content_type.startswith(STRUCTURED) or _unlabelled_structured(header_map, value):
        attributes, data = _structured(value)
    else:
        attributes = {k[3:]: v for k, v in header_map.items() if k.startswith("ce_")}
        if content_type and not content_type.startswith(JSON):
            raise InvalidEvent("malformed", f"content-type {content_type!r} is not {JSON}")
        data = _json(value)
    if "traceparent" in header_map and "traceparent" not in attributes:
        attributes["traceparent"] = header_map["traceparent"]
    return _event(attributes, data, registry)


def record_size(value: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> int:
    """What a record weighs against the limit: its value plus every header's name and value, in bytes."""
    size = len(value or b"")
    for name, raw in headers or ():
        size += len(name.encode("utf-8", "replace")) + len(raw or b"")
    return size


def _event(attributes: dict[str, Any], data: Any, registry: Registry) -> CloudEvent[Any]:
    missing = [name for name in ("id", "source", "type", "specversion") if not attributes.get(name)]
    if missing:
        raise InvalidEvent("missing-attribute", f"CloudEvents attribute(s) {', '.join(missing)} missing")
    if attributes["specversion"] != SPECVERSION:
        raise InvalidEvent("unsupported-specversion", f"specversion {attributes['specversion']!r} is not 1.0")
    try:
        model = registry.by_type(str(attributes["type"]))
    except UnknownEventType as error:
        raise InvalidEvent("unknown-type", str(error)) from None
    if not isinstance(data, dict):
        raise InvalidEvent("schema-invalid", f"data of {model.event_type} must be a JSON object")
    try:
        parsed = model.model_validate(data)
    except ValidationError as error:
        raise InvalidEvent("schema-invalid", _summarise(error)) from None
    except (RecursionError, ValueError, TypeError) as error:
        raise InvalidEvent("schema-invalid", f"data of {model.event_type} could not be validated ({error.__class__.__name__})") from None
    extensions = {
        str(k): str(v)
        for k, v in attributes.items()
        if k not in _CORE and k not in _EXTENSIONS and k not in ("traceparent", "datacontenttype", "data")
    }
    return CloudEvent(
        id=str(attributes["id"]),
        source=str(attributes["source"]),
        type=model.event_type,
        data=parsed,
        time=_parse_time(attributes.get("time")),
        subject=attributes.get("subject"),
        correlation_id=attributes.get("correlationid"),
        causation_id=attributes.get("causationid"),
        traceparent=attributes.get("traceparent"),
        extensions=extensions,
    )


def to_structured(event: CloudEvent[Any]) -> bytes:
    """Structured mode JSON (what ``clinic tail --json`` prints and what structured producers send)."""
    value, headers = encode(event)
    document: dict[str, Any] = {k[3:]: v.decode() for k, v in headers if k.startswith("ce_")}
    if event.traceparent:
        document["traceparent"] = event.traceparent
    document["datacontenttype"] = JSON
    document["data"] = json.loads(value)
    return json.dumps(document).encode()


def with_extensions(event: CloudEvent[A], **extensions: str) -> CloudEvent[A]:
    return replace(event, extensions={**event.extensions, **extensions})


def _structured(value: bytes | None) -> tuple[dict[str, Any], Any]:
    document = _json(value)
    if not isinstance(document, dict):
        raise InvalidEvent("malformed", "structured CloudEvent must be a JSON object")
    data = document.pop("data", None)
    if data is None and "data_base64" in document:
        raise InvalidEvent("malformed", "data_base64 is not supported; send JSON data")
    return document, data


def _unlabelled_structured(header_map: dict[str, str], value: bytes | None) -> bool:
    """A structured event sent with its data's content type, or none (what the CloudEvents SDK for Python
    1.x, and its ``cloudevents.v1`` layer, does): no ``ce_specversion`` header, so it cannot be binary mode,
    and a JSON object value that names a ``specversion``."""
    if "ce_specversion" in header_map or not value or not value.lstrip().startswith(b"{") or b'"specversion"' not in value:
        return False
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, RecursionError, ValueError):
        return False
    return isinstance(document, dict) and "specversion" in document


def _json(value: bytes | None) -> Any:
    if not value:
        raise InvalidEvent("malformed", "record has no value")
    try:
        return json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidEvent("malformed", f"value is not JSON ({error.__class__.__name__} at {getattr(error, 'pos', '?')})") from None
    except (RecursionError, ValueError) as error:  # absurdly deep nesting, numbers too long to convert
        raise InvalidEvent("malformed", f"value is not usable JSON ({error.__class__.__name__})") from None


def _header_map(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    result = {}
    for name, raw in headers or ():
        try:
            result[name.lower()] = (raw or b"").decode()
        except UnicodeDecodeError:
            raise InvalidEvent("malformed", f"header {name!r} is not UTF-8") from None
    return result


def _summarise(error: ValidationError) -> str:
    # Field locations and messages only: input values may hold clinical data and must not reach headers.
    # Unknown field names are the sender's words: shortened, so a huge name cannot fill the header.
    parts = [f"{_location(e['loc'])}: {_UNKNOWN_FIELD if e['type'] == 'extra_forbidden' else e['msg']}" for e in error.errors()[:5]]
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


_UNKNOWN_FIELD = "unknown field: the contract has no such field (unknown fields are refused)"


def _location(loc: tuple[int | str, ...]) -> str:
    path = ".".join(str(part) if len(str(part)) <= 64 else f"{str(part)[:61]}..." for part in loc)
    return path or "<data>"


def _parse_time(value: Any) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent("malformed", f"time {value!r} is not RFC 3339") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
