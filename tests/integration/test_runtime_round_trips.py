"""The runtime's own store round trips per handled event, counted with a command listener (a behaviour,
not a timing): what a handler decides is due is published with its cause, not parked in the outbox."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.clock import Clock
from shared.envelope import CloudEvent
from shared.runtime import Effects, Handlers, Runtime, Service
from shared.runtime.store import INBOX, OUTBOX
from tests.support import probe
from tests.support.settle import settle
from tests.support.store_commands import watching


class TickingClock:
    """Every reading is a millisecond later than the one before: time passes while a handler runs."""

    def __init__(self) -> None:
        self._now = datetime.now(UTC)

    def now(self) -> datetime:
        self._now += timedelta(milliseconds=1)
        return self._now


handlers = Handlers[Clock]("probe")


@handlers.on(probe.INBOUND)
async def on_inbound(event: CloudEvent[Any], clock: Clock) -> Effects:
    patient = event.data.patient_id
    # due at the handler's own "now" (like an overdue reminder), which is later than when the event came in
    return Effects().put("notes", event.id, {"patient_id": patient}).emit(probe.outbound(patient), due_at=clock.now())


async def clock_of(runtime: Runtime) -> Clock:
    return runtime.clock


async def test_an_event_due_when_its_handler_decided_is_published_with_its_cause_not_via_the_outbox(settings, bus, run_id):
    patient = f"pt_DUE{run_id}"
    with watching(settings.database("probe"), {INBOX, OUTBOX, "notes"}) as commands:
        async with Service(handlers, clock_of, settings=settings, clock=TickingClock()) as service:
            started = len(commands)
            await bus.publish(probe.inbound(patient))
            [published] = await bus.wait_for(probe.OUTBOUND, lambda d: d.patient_id == patient)
            await settle(service, (probe.INBOUND, 1))
            handling = [(c.name, c.collection) for c in commands[started:] if c.name != "aggregate"]  # settle's own count

    assert published.data.patient_id == patient
    assert [c for c in handling if c[1] == OUTBOX] == [], "nothing stored, read or deleted in the outbox"
    assert sorted(handling) == sorted([("find", INBOX), ("insert", INBOX), ("update", "notes"), ("update", INBOX)])


async def test_a_batch_of_events_reads_the_inbox_once_not_once_per_event(settings, bus, run_id):
    patient = f"pt_BATCH{run_id}"
    for _ in range(12):  # one patient, one partition: waiting there when the service starts, taken in few batches
        await bus.publish(probe.inbound(patient))
    with watching(settings.database("probe"), {INBOX}) as commands:
        async with Service(handlers, clock_of, settings=settings, clock=TickingClock()) as service:
            await settle(service, (probe.INBOUND, 12))
            inbox = Counter(c.name for c in commands if c.name != "aggregate")

    assert inbox["insert"] == 12, "each event's write-ahead record"
    assert inbox["find"] == inbox["update"], "one read and one update of the inbox per batch"
    assert inbox["find"] < 12, "several events shared a read"
