"""Tracing pieces without a broker: settings, propagation through the outgoing headers, log lines."""

from __future__ import annotations

import logging
import re

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.runtime import logs
from shared.runtime.tracing import Tracing, current_traceparent, finish, traces_url
from shared.settings import Settings

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_export_is_off_by_default_and_follows_either_endpoint_variable(monkeypatch):
    for name in ("CLINIC_OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    off = Tracing("probe", Settings())
    assert off.provider is None and not off.enabled and off.listener() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert Settings().otel_exporter_otlp_endpoint == "http://collector:4318"
    monkeypatch.setenv("CLINIC_OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4318/")
    assert Settings().otel_exporter_otlp_endpoint == "http://other:4318/"
    assert traces_url("http://other:4318/") == "http://other:4318/v1/traces"
    assert traces_url("http://other:4318/v1/traces") == "http://other:4318/v1/traces"


def test_without_recording_spans_the_recorded_traceparent_goes_out_unchanged():
    off = Tracing("probe", Settings())
    [(span, headers)] = off.producing([{"_id": "e1", "topic": "t", "type": "x", "headers": {"traceparent": PARENT}}])
    assert span is None and headers == {"traceparent": PARENT}
    assert current_traceparent() is None


def test_a_relayed_row_gets_a_producer_span_under_its_recorded_context_and_sends_that_span():
    exporter = InMemorySpanExporter()
    tracing = Tracing("probe", Settings(), [SimpleSpanProcessor(exporter)])
    row = {"_id": "e1", "topic": "p.clinic.x.v1", "type": "clinic.x.v1", "headers": {"traceparent": PARENT, "ce_id": "e1"}}
    [(span, headers)] = tracing.producing([row])
    finish(span, None)
    [done] = exporter.get_finished_spans()
    assert done.kind == SpanKind.PRODUCER and done.name == "probe publish clinic.x.v1"
    assert done.parent.span_id == 0x00F067AA0BA902B7 and done.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert headers["traceparent"] == f"00-{done.context.trace_id:032x}-{done.context.span_id:016x}-01"
    assert row["headers"]["traceparent"] == PARENT, "the stored row keeps what was recorded"
    assert done.attributes["messaging.message.id"] == "e1" and done.attributes["messaging.system"] == "kafka"
    assert done.resource.attributes["service.name"] == "clinic-probe"


def test_log_lines_have_utc_milliseconds_and_the_current_span_ids():
    formatter = logs._Fields(False)
    record = logging.makeLogRecord({"msg": "hello", "levelname": "INFO", "name": "clinic.x", "created": 0.5})
    assert formatter.format(record).startswith("1970-01-01T00:00:00.500Z INFO")

    tracing = Tracing("probe", Settings(), [SimpleSpanProcessor(InMemorySpanExporter())])
    with tracing.tracer.start_as_current_span("s") as span:
        record = logging.makeLogRecord({"msg": "in span", "levelname": "INFO", "name": "clinic.x"})
        logs.TraceIds().filter(record)
        line = formatter.format(record)
        context = span.get_span_context()
        assert f"trace_id={context.trace_id:032x}" in line and f"span_id={context.span_id:016x}" in line
        assert re.match(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$", current_traceparent())
    record = logging.makeLogRecord({"msg": "outside"})
    logs.TraceIds().filter(record)
    assert "trace_id" not in formatter.format(record)
