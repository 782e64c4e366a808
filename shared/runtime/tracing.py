"""OpenTelemetry traces: one trace follows a patient's journey from service to service.

Spans, per service:

- ``<service> process <type>`` (CONSUMER), one per handled record; its parent is the producer span
  whose context came in the event's W3C ``traceparent`` (a ``ce_``-less header in binary mode, an
  attribute in structured mode).
- ``<command> <database>.<collection>`` (CLIENT), one per store command sent while an event is handled
  (a PyMongo ``CommandListener``), children of the consumer span; a statement written for a group of
  events handled at once (``GroupCommit``) is a child of the first of them.
- ``<service> publish <type>`` (PRODUCER), one per publication, inline (due at once) or by the outbox
  relay (delayed events, retries). Its context is what goes out in the event's ``traceparent``, so the
  next service's consumer span is its child. Events a handler decides on are recorded (inbox, outbox)
  with the consumer span's context; the relay, which publishes later and outside any span, parents its
  producer span on that recorded context.

Why by hand and not FastStream's ``KafkaTelemetryMiddleware``: our subscriber takes whole batches
(``batch=True``, a tuple of records), groups them by patient and handles each record in its own task
with its own inbox/outbox unit of work, and publishes from the outbox relay long after the message that
caused it; the middleware would make one span per batch (parented on the first record at best) and know
nothing of the relay. So the runtime uses the SDK's API itself: ``start_as_current_span`` per record and
per publication, ``propagate.extract``/``inject`` over the CloudEvents headers.

Export is off by default: no SDK provider, the API's no-op tracer (a few hundred nanoseconds per span)
and no store listener. ``CLINIC_OTEL_EXPORTER_OTLP_ENDPOINT`` (or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT``), the collector's OTLP/HTTP base URL, turns it on: an SDK provider per
service (``service.name`` = ``clinic-<service>``) with a batching OTLP exporter. The SDK's own
environment variables (``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_HEADERS``...) apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from pymongo import monitoring

from shared.settings import Settings

log = logging.getLogger("clinic.tracing")
SCOPE = "clinic.runtime"


class _RecordHeaders(Getter[Sequence[tuple[str, bytes | None]]]):
    """Kafka record headers (name, bytes) as a propagation carrier."""

    def get(self, carrier: Sequence[tuple[str, bytes | None]], key: str) -> list[str] | None:
        found = [(value or b"").decode("utf-8", "replace") for name, value in carrier or () if name.lower() == key]
        return found or None

    def keys(self, carrier: Sequence[tuple[str, bytes | None]]) -> list[str]:
        return [name for name, _ in carrier or ()]


RECORD_HEADERS = _RecordHeaders()


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector's base URL (``http://collector:4318``)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


class Tracing:
    """A service's tracer. ``processors``: extra span processors (tests use an in-memory exporter)."""

    def __init__(self, service: str, settings: Settings, processors: Sequence[Any] = ()) -> None:
        self.service = service
        self.provider: Any = None
        endpoint = settings.otel_exporter_otlp_endpoint
        if endpoint or processors:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider

            resource = Resource.create({"service.name": f"clinic-{service}", "service.namespace": "clinic", "service.instance.id": settings.instance_id})
            self.provider = TracerProvider(resource=resource)
            if endpoint:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
                from opentelemetry.sdk.trace.export import BatchSpanProcessor

                self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))))
            for processor in processors:
                self.provider.add_span_processor(processor)
            self.tracer = self.provider.get_tracer(SCOPE)
        else:  # the process-wide provider: the API's no-op one unless the embedding program set one
            self.tracer = trace.get_tracer(SCOPE)
        self.enabled = self.provider is not None or _global_sdk()
        """Spans are recorded: worth listening to the store's commands and re-stamping traceparents."""

    @contextlib.contextmanager
    def consuming(self, record: Any, traceparent: str | None, group: str) -> Iterator[Span]:
        """The CONSUMER span of one record, current while it is handled; parented on ``traceparent``
        (the decoded event's, which covers structured mode) or else the record's own headers."""
        carrier: Any = {"traceparent": traceparent} if traceparent else list(record.headers or ())
        parent = propagate.extract(carrier, getter=RECORD_HEADERS) if not traceparent else propagate.extract(carrier)
        attributes = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
            "messaging.consumer.group.name": group,
        }
        with self.tracer.start_as_current_span(f"{self.service} process {record.topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes) as span:
            yield span

    def producing(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Span | None, dict[str, str]]]:
        """A started PRODUCER span per outgoing row and the headers to send: the row's, with the span's
        ``traceparent``. Parent: the span handling the cause (inline), or else the context recorded
        with the row (the relay). Without recording spans, the rows' headers go out as recorded."""
        current = trace.get_current_span()
        inline = current.is_recording()
        result: list[tuple[Span | None, dict[str, str]]] = []
        for row in rows:
            headers = dict(row["headers"])
            if not self.enabled:
                result.append((None, headers))
                continue
            parent = None if inline else propagate.extract(headers)
            span = self.tracer.start_span(
                f"{self.service} publish {row.get('type') or row['topic']}",
                context=parent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.operation.name": "publish",
                    "messaging.destination.name": row["topic"],
                    "messaging.message.id": row["_id"],
                    "cloudevents.event_id": row["_id"],
                    "cloudevents.event_type": row.get("type") or "",
                },
            )
            headers.pop("tracestate", None)
            propagate.inject(headers, context=trace.set_span_in_context(span))
            result.append((span, headers))
        return result

    async def flush(self) -> None:
        """Export what the batch processor holds (a stopping service); the SDK shuts down at exit."""
        if self.provider is not None:
            await asyncio.to_thread(self.provider.force_flush, 5000)

    def listener(self) -> monitoring.CommandListener | None:
        return _StoreSpans(self.tracer) if self.enabled else None


def finish(span: Span | None, error: BaseException | None) -> None:
    if span is None:
        return
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error.__class__.__name__))
        span.set_attribute("error.type", error.__class__.__name__)
    span.end()


def describe(span: Span, event_type: str, event_id: str, source: str) -> None:
    """Once the record is decoded: the span's name and the CloudEvents attributes (no patient, no data)."""
    if not span.is_recording():
        return
    name: str = getattr(span, "name", "")  # the API's Span has no name; a recording one (the SDK's) has
    span.update_name(f"{name.split(' process ')[0]} process {event_type}")
    span.set_attributes({"messaging.message.id": event_id, "cloudevents.event_id": event_id, "cloudevents.event_type": event_type, "cloudevents.event_source": source})


def ids() -> dict[str, str]:
    """trace_id and span_id of the current span, for log lines; empty when there is none."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


def current_traceparent() -> str | None:
    """The ``traceparent`` of the current span when it is recorded (what events caused now carry)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


class _StoreSpans(monitoring.CommandListener):
    """A CLIENT span per store command sent while a span is current (an event being handled): command,
    database and collection only, never a filter or a document."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer
        self.open: dict[tuple[Any, int], Span] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not trace.get_current_span().is_recording():
            return
        collection = event.command.get(event.command_name)
        attributes: dict[str, Any] = {"db.system.name": "mongodb", "db.system": "mongodb", "db.operation.name": event.command_name, "db.namespace": event.database_name}
        target = event.database_name
        if isinstance(collection, str):
            attributes["db.collection.name"] = collection
            target = f"{event.database_name}.{collection}"
        host, port = event.connection_id if isinstance(event.connection_id, tuple) else (None, None)
        if host and port is not None:
            attributes.update({"server.address": str(host), "server.port": int(port)})
        self.open[(event.connection_id, event.request_id)] = self.tracer.start_span(f"{event.command_name} {target}", kind=SpanKind.CLIENT, attributes=attributes)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        span = self.open.pop((event.connection_id, event.request_id), None)
        if span is not None:
            span.end()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        span = self.open.pop((event.connection_id, event.request_id), None)
        if span is not None:
            code = event.failure.get("codeName") or event.failure.get("code") or "failed"  # never errmsg: it may quote values
            span.set_status(Status(StatusCode.ERROR, str(code)))
            span.set_attribute("db.response.status_code", str(event.failure.get("code", "")))
            span.end()


def _global_sdk() -> bool:
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:  # pragma: no cover
        return False
    return isinstance(trace.get_tracer_provider(), TracerProvider)

