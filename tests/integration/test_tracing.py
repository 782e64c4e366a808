"""One trace follows a patient's journey: consultation -> scheduling -> inventory.

The three services run in this process, each with its own tracer provider exporting to one in-memory
exporter. The EHR's ConsultationRecorded (approvable at once) starts the trace; each service's CONSUMER
span must be the child of the PRODUCER span of the service before it, through the ``traceparent`` the
event carried.
"""

from __future__ import annotations

import contextlib

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from bench.traffic import approvable_consultation, stock_delivery
from clinic.polling import eventually
from services.consultation.app import create_service as consultation_service
from services.inventory.app import create_service as inventory_service
from services.scheduling.app import create_service as scheduling_service
from shared.contracts import REGISTRY
from shared.runtime.tracing import Tracing

RECORDED, APPROVED, SCHEDULED, RECEIVED = (REGISTRY.by_name(n) for n in ("ConsultationRecorded", "ConsultationApproved", "SessionScheduled", "StockReceived"))


async def test_one_trace_spans_consultation_scheduling_and_inventory_for_one_journey(settings, bus, run_id):
    exporter = InMemorySpanExporter()
    services = [create(settings) for create in (consultation_service, scheduling_service, inventory_service)]
    for service in services:
        service.tracing = Tracing(service.name, settings, [SimpleSpanProcessor(exporter)])
    inventory = services[2]
    delivery = stock_delivery(f"TR{run_id.upper()}", 1)
    for data in delivery:
        await bus.publish(data, source="/clinic/supplier")
    patient, consultation = f"pt_TRACE{run_id.upper()}", f"cons_TRACE{run_id.upper()}"

    async with contextlib.AsyncExitStack() as stack:
        for service in services:
            await stack.enter_async_context(service)
        # the stock first, so the session's reservation finds it
        await eventually(lambda: _handled(inventory, RECEIVED.event_type, len(delivery)), timeout=60, what="inventory holds the delivery")
        sent = await bus.publish(approvable_consultation(patient, consultation), source="/clinic/ehr")
        trace_id = int(sent.traceparent.split("-")[1], 16)
        chain = await eventually(lambda: _chain(exporter.get_finished_spans(), trace_id), timeout=90, what="the journey's spans in one trace")

    consumed, approved_out, scheduling_in, _scheduled_out, inventory_in = chain
    assert consumed.resource.attributes["service.name"] == "clinic-consultation"
    assert scheduling_in.resource.attributes["service.name"] == "clinic-scheduling"
    assert inventory_in.resource.attributes["service.name"] == "clinic-inventory"
    assert consumed.attributes["messaging.system"] == "kafka"
    assert consumed.attributes["messaging.message.id"] == sent.id
    assert consumed.attributes["messaging.destination.name"] == bus.topic(RECORDED)
    assert {"messaging.destination.partition.id", "messaging.kafka.offset"} <= set(consumed.attributes)
    assert approved_out.attributes["messaging.destination.name"] == bus.topic(APPROVED)

    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    store_spans = [s for s in spans if s.kind == SpanKind.CLIENT and s.parent is not None and s.parent.span_id == consumed.context.span_id]
    assert any(s.attributes.get("db.collection.name") == "inbox" for s in store_spans), "the store calls are children of the consumer span"
    for span in spans:  # no patient id, no body
        assert not any(patient in str(value) or consultation in str(value) for value in span.attributes.values()), span.name


async def _handled(service, event_type: str, wanted: int) -> bool:
    return service.stats.handled.get(event_type, 0) >= wanted


async def _chain(spans: tuple[ReadableSpan, ...], trace_id: int) -> list[ReadableSpan] | None:
    """consumer(ConsultationRecorded) -> producer(ConsultationApproved) -> consumer in scheduling ->
    producer(SessionScheduled) -> consumer in inventory, each the parent of the next; None until all are in."""
    ours = [s for s in spans if s.context.trace_id == trace_id]

    def one(kind: SpanKind, name: str, parent: ReadableSpan | None) -> ReadableSpan | None:
        return next(
            (s for s in ours if s.kind == kind and s.name == name and (parent is None or (s.parent is not None and s.parent.span_id == parent.context.span_id))),
            None,
        )

    consumed = one(SpanKind.CONSUMER, f"consultation process {RECORDED.event_type}", None)
    approved_out = consumed and one(SpanKind.PRODUCER, f"consultation publish {APPROVED.event_type}", consumed)
    scheduling_in = approved_out and one(SpanKind.CONSUMER, f"scheduling process {APPROVED.event_type}", approved_out)
    if not scheduling_in:
        return None
    for scheduled_out in (s for s in ours if s.kind == SpanKind.PRODUCER and s.name == f"scheduling publish {SCHEDULED.event_type}"):
        if scheduled_out.parent is None or scheduled_out.parent.span_id != scheduling_in.context.span_id:
            continue
        inventory_in = one(SpanKind.CONSUMER, f"inventory process {SCHEDULED.event_type}", scheduled_out)
        if inventory_in is not None:
            return [consumed, approved_out, scheduling_in, scheduled_out, inventory_in]
    return None
