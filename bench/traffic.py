"""Journeys driven through the running system from outside, as the clinic's other systems would.

A journey publishes ConsultationRecorded for a patient the screening approves directly (no allergy test,
labs in range, every cocktail ingredient received before) and waits until ConsultationApproved, every
session's SessionScheduled and every session's IngredientsReserved have been published. With
`complete=True` (history loading) the treatment room then completes every session (SessionCompleted
with the lots that were reserved) and the journey also waits for TreatmentCourseCompleted and every
session's StockConsumed and AftercareInstructionsIssued.

One consumer (no group, every partition of every watched topic, from the end at start) reads what the
services publish and matches it to journeys by patient id: there is no per-journey reader. Decisions
that end a journey early (deferred, rejected, scheduling failed, shortage) are counted as failures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition

from clinic.client import EventClient
from clinic.journey import STOCK, model
from shared.contracts import REGISTRY, EventData, examples, topic_of
from shared.runtime.kafka_client import Kafka
from shared.settings import Settings

log = logging.getLogger("bench")

OK_STAGES = ("ConsultationApproved", "SessionScheduled", "IngredientsReserved")
AFTER_COMPLETION = ("TreatmentCourseCompleted", "StockConsumed", "AftercareInstructionsIssued")
FAILURES = {
    "ConsultationDeferred": "deferred",
    "ConsultationRejected": "rejected",
    "SchedulingFailed": "scheduling-failed",
    "IngredientShortage": "shortage",
}
WATCHED = (*OK_STAGES, *AFTER_COMPLETION, *FAILURES)
INPUTS = ("ConsultationRecorded", "StockReceived", "SessionCompleted")
JOURNEYS_PER_STOCK = 10
"""clinic.journey.STOCK covers about 40 journeys of the approvable patient below; delivering one STOCK
per 10 journeys leaves a fourfold margin, so no journey meets a shortage."""
STOCK_LASTS = 20
"""Journeys one STOCK is counted as covering when a kept deployment's shelf is accounted for (half of what
it covers), so that measuring it again delivers only when the shelf runs low, as a clinic reorders."""


def stock_units(journeys: int) -> int:
    """How many STOCKs ``stock_delivery`` delivers for ``journeys`` journeys."""
    return max(1, -(-journeys // JOURNEYS_PER_STOCK))


def topics(prefix: str, names: tuple[str, ...]) -> list[str]:
    return [topic_of(REGISTRY.by_name(name), prefix) for name in names]


CLOCK = {"offset": timedelta(0)}
"""How far the services' clocks are moved (CLINIC_CLOCK_OFFSET_SECONDS); the events we send agree with them."""


def now() -> datetime:
    return (datetime.now(UTC) + CLOCK["offset"]).replace(microsecond=0)


def approvable_consultation(patient: str, consultation: str) -> EventData:
    """The ConsultationRecorded example, changed so that screening approves at once: no allergy history
    and every formulary ingredient received before (no allergy test), nothing taken that needs a
    washout, no known allergy, the four work-up labs in range and three days old."""
    measured = (now() - timedelta(days=3)).isoformat()
    labs = [("ferritin", 64.0, "ng/mL"), ("vitamin_d", 31.0, "ng/mL"), ("zinc", 88.0, "ug/dL"), ("tsh", 1.9, "mIU/L")]
    example = examples(REGISTRY.by_name("ConsultationRecorded"))[0]
    return model(
        "ConsultationRecorded",
        patient_id=patient,
        consultation_id=consultation,
        recorded_at=now().isoformat(),
        current_medications=[],
        known_allergies=[],
        medical_history={**example["medical_history"], "history_of_allergies": False},
        lab_results=[{"test": t, "value": v, "unit": u, "measured_at": measured} for t, v, u in labs],
        previously_received_ingredients=sorted(STOCK),
    )


def stock_delivery(tag: str, journeys: int, index: int = 0) -> list[EventData]:
    """One lot per ingredient, enough for `journeys` journeys with a margin, in date for two years."""
    times = stock_units(journeys)
    expires = (now().date() + timedelta(days=730 + index)).isoformat()
    return [
        model(
            "StockReceived",
            delivery_id=f"dlv_{tag}{index:03d}",
            ingredient=ingredient,
            lot_number=f"{tag}-{index:03d}-{number:02d}",
            expires_on=expires,
            quantity=quantity * times,
            unit=unit,
            received_at=now().isoformat(),
        )
        for number, (ingredient, (unit, quantity)) in enumerate(STOCK.items())
    ]


def completion(journey: Journey, session_id: str) -> EventData:
    scheduled, reserved = journey.scheduled[session_id], journey.reserved[session_id]
    depth = (journey.plan or {}).get("depth_mm", 2.0)
    return model(
        "SessionCompleted",
        patient_id=journey.patient,
        course_id=scheduled["course_id"],
        session_id=session_id,
        completed_at=now().isoformat(),
        practitioner_id=scheduled["practitioner_id"],
        depth_mm=depth,
        lots_used=[{k: a[k] for k in ("ingredient", "lot_number", "amount", "unit")} for a in reserved["allocations"]],
    )


@dataclass(eq=False)
class Journey:
    patient: str
    consultation: str
    complete: bool = False
    due: float | None = None
    """When an open-loop run (``Driver.run``'s ``rate``) meant it to start."""
    sent: float | None = None
    approved_at: float | None = None
    all_scheduled_at: float | None = None
    reserved_at: float | None = None
    finished_at: float | None = None
    plan: dict[str, Any] | None = None
    course: str | None = None
    scheduled: dict[str, dict[str, Any]] = field(default_factory=dict)
    reserved: dict[str, dict[str, Any]] = field(default_factory=dict)
    consumed: set[str] = field(default_factory=set)
    issued: set[str] = field(default_factory=set)
    course_completed: bool = False
    failure: str | None = None
    booked: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def sessions(self) -> int | None:
        return None if self.plan is None else int(self.plan["sessions"])

    @property
    def latency(self) -> float | None:
        return None if self.reserved_at is None or self.sent is None else self.reserved_at - self.sent

    def fail(self, reason: str) -> None:
        if self.failure is None and not self.done.done():
            self.failure = reason
            for future in (self.booked, self.done):
                if not future.done():
                    future.set_result(False)

    def see(self, name: str, data: dict[str, Any], at: float) -> None:
        if self.failure is not None or self.done.done():
            return
        if name in FAILURES:
            if name == "IngredientShortage" and data.get("session_id") in self.reserved:
                return  # a later shortage of a session already reserved is not this journey's concern
            self.fail(FAILURES[name])
            return
        if name == "ConsultationApproved":
            if self.plan is None:
                self.plan, self.course, self.approved_at = data["plan"], data["course_id"], at
        elif name == "SessionScheduled":
            self.scheduled.setdefault(data["session_id"], data)
        elif name == "IngredientsReserved":
            self.reserved.setdefault(data["session_id"], data)
        elif name == "StockConsumed":
            self.consumed.add(data["session_id"])
        elif name == "AftercareInstructionsIssued":
            self.issued.add(data["session_id"])
        elif name == "TreatmentCourseCompleted":
            self.course_completed = True
        self._progress(at)

    def _progress(self, at: float) -> None:
        count = self.sessions
        if count is None:
            return
        if self.all_scheduled_at is None and len(self.scheduled) >= count:
            self.all_scheduled_at = at
        if self.reserved_at is None and self.all_scheduled_at is not None and set(self.scheduled) <= set(self.reserved):
            self.reserved_at = at
            self.booked.set_result(True)
            if not self.complete:
                self.finished_at = at
                self.done.set_result(True)
        if self.complete and self.reserved_at is not None and not self.done.done():
            ids = set(self.scheduled)
            if self.course_completed and ids <= self.consumed and ids <= self.issued:
                self.finished_at = at
                self.done.set_result(True)


class Tracker:
    """One reader of every watched topic; hands each event to the journey of its patient."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.journeys: dict[str, Journey] = {}
        self.by_topic = {topic_of(REGISTRY.by_name(n), settings.topic_prefix): n for n in WATCHED}
        self.consumer = Kafka.of(settings).consumer(
            enable_auto_commit=False, fetch_max_wait_ms=50, max_poll_records=2000
        )
        self.records = 0
        self.task: asyncio.Task | None = None
        self.error: BaseException | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions: list[TopicPartition] = []
        for topic in self.by_topic:
            found = None
            for _ in range(50):
                await self.consumer._client.force_metadata_update()
                found = self.consumer.partitions_for_topic(topic)
                if found:
                    break
                await asyncio.sleep(0.2)
            if not found:
                raise RuntimeError(f"no partitions for {topic}")
            partitions.extend(TopicPartition(topic, p) for p in found)
        self.consumer.assign(partitions)
        # From the current end, resolved now: a lazy reset could skip what is published meanwhile.
        for tp, offset in (await self.consumer.end_offsets(partitions)).items():
            self.consumer.seek(tp, offset)
        self.task = asyncio.create_task(self._run(), name="bench-tracker")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.consumer.stop()

    def add(self, journey: Journey) -> Journey:
        self.journeys[journey.patient] = journey
        return journey

    def forget(self, journey: Journey) -> None:
        self.journeys.pop(journey.patient, None)

    async def _run(self) -> None:
        try:
            while True:
                batches = await self.consumer.getmany(timeout_ms=200)
                at = time.perf_counter()
                for tp, records in batches.items():
                    name = self.by_topic[tp.topic]
                    for record in records:
                        self.records += 1
                        try:
                            data = json.loads(record.value)
                        except (TypeError, ValueError):
                            continue
                        journey = self.journeys.get(data.get("patient_id"))
                        if journey is not None:
                            journey.see(name, data, at)
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # every waiting journey learns why instead of timing out
            self.error = error
            for journey in list(self.journeys.values()):
                journey.fail(f"tracker-failed: {type(error).__name__}")
            raise


@dataclass
class Outcome:
    journeys: list[Journey]
    started: float
    ended: float

    @property
    def completed(self) -> list[Journey]:
        return [j for j in self.journeys if j.failure is None and j.reserved_at is not None]

    @property
    def failures(self) -> dict[str, int]:
        return dict(Counter(j.failure for j in self.journeys if j.failure is not None))


class Driver:
    """Runs journeys with at most `concurrency` in flight; `progress` is called every `every` seconds."""

    def __init__(self, client: EventClient, tracker: Tracker, tag: str, *, timeout: float) -> None:
        self.client = client
        self.tracker = tracker
        self.tag = tag
        self.timeout = timeout
        self.number = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.finished: list[Journey] = []
        self.aborted: str | None = None

    def abort(self, reason: str) -> None:
        """Start nothing more and fail what is in flight (a service died, the tracker broke)."""
        self.aborted = self.aborted or reason
        for journey in list(self.tracker.journeys.values()):
            journey.fail(f"aborted: {reason}"[:200])

    def next_journey(self, complete: bool) -> Journey:
        self.number += 1
        suffix = f"{self.tag}{self.number:07d}"
        return self.tracker.add(Journey(f"pt_{suffix}", f"cons_{suffix}", complete=complete))

    async def _one(self, journey: Journey) -> None:
        deadline = time.perf_counter() + self.timeout
        try:
            journey.sent = journey.due if journey.due is not None else time.perf_counter()
            await self.client.publish(approvable_consultation(journey.patient, journey.consultation), source="/clinic/ehr")
            if not await self._wait(journey.booked, deadline, journey, "waiting for the booking"):
                return
            if journey.complete:
                for session_id in sorted(journey.scheduled, key=lambda s: journey.scheduled[s]["sequence"]):
                    await self.client.publish(completion(journey, session_id), source="/clinic/treatment-room")
                await self._wait(journey.done, deadline, journey, "waiting for the completions")
        except Exception as error:
            journey.fail(f"error: {type(error).__name__}: {error}"[:200])
        finally:
            self.tracker.forget(journey)
            self.finished.append(journey)
            self.in_flight -= 1

    async def _wait(self, future: asyncio.Future, deadline: float, journey: Journey, what: str) -> bool:
        try:
            return bool(await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - time.perf_counter())))
        except TimeoutError:
            journey.fail(f"timeout ({what})")
            return False

    async def run(
        self,
        *,
        concurrency: int,
        total: int | None = None,
        keep_going: Callable[[], bool] = lambda: True,
        complete: bool = False,
        progress: Callable[[Driver, float], None] | None = None,
        every: float = 5.0,
        rate: float | None = None,
    ) -> Outcome:
        """With ``rate``, an open loop: journey k is due ``k / rate`` seconds after the start, whether or not
        the earlier ones have finished (``concurrency`` is then only a cap), and its latency counts from
        when it was due, so a start held back by the cap or a busy driver counts against the system."""
        slots = asyncio.Semaphore(concurrency)
        self.most_in_flight = self.in_flight
        tasks: set[asyncio.Task] = set()
        journeys: list[Journey] = []
        started = time.perf_counter()
        reporter = asyncio.create_task(self._report(progress, started, every)) if progress else None
        try:
            while (total is None or len(journeys) < total) and not self.aborted:
                if not keep_going():
                    if not tasks:
                        break
                    # enough in flight for now: look again when one of them ends (it may fall short)
                    await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
                    continue
                due = None if rate is None else started + len(journeys) / rate
                if due is not None and due > time.perf_counter():
                    await asyncio.sleep(due - time.perf_counter())  # the schedule: the next journey is not due yet
                await slots.acquire()
                if self.aborted or not keep_going():
                    slots.release()
                    continue
                journey = self.next_journey(complete)
                journey.due = due
                journeys.append(journey)
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                task = asyncio.create_task(self._one(journey))
                tasks.add(task)
                task.add_done_callback(lambda t: (tasks.discard(t), slots.release()))
            if tasks:
                await asyncio.gather(*list(tasks))
        finally:
            for task in tasks:
                task.cancel()
            if reporter is not None:
                reporter.cancel()
        ended = max((j.finished_at or j.reserved_at or 0.0 for j in journeys), default=started)
        return Outcome(journeys, started, max(ended, started))

    async def _report(self, progress: Callable[[Driver, float], None], started: float, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            progress(self, time.perf_counter() - started)


async def deliver(client: EventClient, lots: list[EventData]) -> None:
    for lot in lots:
        await client.publish(lot, source="/clinic/supplier")
