"""The sample patient journey that `clinic run` plays and the end-to-end tests check.

Everything goes through public events, as the clinic's other systems would send them: the supplier
delivers stock, the EHR records a consultation and an allergy test, the treatment room completes the
first session, the patient app reports a side effect. After each step the journey waits (with a
deadline) for the services' reactions and returns everything it saw.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from clinic.client import EventClient
from clinic.polling import eventually
from shared.contracts import REGISTRY, EventData, examples
from shared.envelope import CloudEvent
from shared.runtime.kafka_client import Kafka
from shared.settings import Settings

STOCK = {  # what the supplier delivers before the first booking: ingredient -> (unit, quantity)
    "hyaluronic_acid": ("mg", 5000.0),
    "biotin": ("mg", 1000.0),
    "b_complex": ("ml", 200.0),
    "dexpanthenol": ("mg", 20000.0),
    "minoxidil": ("mg", 500.0),
    "saw_palmetto": ("mg", 5000.0),
    "zinc": ("mg", 500.0),
    "copper_peptide": ("mg", 500.0),
    "lidocaine_cream": ("g", 1000.0),
}


ACCEPTED = REGISTRY.by_name("StockAccepted")
REFUSED = REGISTRY.by_name("StockRefused")


def model(name: str, **fields: Any) -> EventData:
    """A contract example with the journey's own values on top (validated like any published event)."""
    cls = REGISTRY.by_name(name)
    return cls.model_validate({**examples(cls)[0], **fields})


@dataclass
class Journey:
    client: EventClient
    say: Callable[[str], None] = lambda message: None
    run: str = field(default_factory=lambda: secrets.token_hex(4).upper())
    timeout: float = 60.0
    seen: dict[str, list[CloudEvent]] = field(default_factory=dict)

    @property
    def patient(self) -> str:
        return f"pt_DEMO{self.run}"

    @property
    def consultation(self) -> str:
        return f"cons_DEMO{self.run}"

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    async def expect(self, name: str, where: Callable[[Any], bool] = lambda d: True, count: int = 1, timeout: float | None = None) -> list[CloudEvent]:
        cls = REGISTRY.by_name(name)

        async def distinct() -> list[CloudEvent] | None:
            # at-least-once publishing: the same event (same id) may arrive twice; count it once
            events = await self.client.events(cls, lambda d: getattr(d, "patient_id", None) == self.patient and where(d))
            unique = list({event.id: event for event in events}.values())
            return unique if len(unique) >= count else None

        found = await eventually(distinct, timeout=timeout or self.timeout, what=f"{count} x {name} for {self.patient}")
        self.seen[name] = found
        return found

    async def deliver_stock(self) -> None:
        """Deliver the journey's stock and wait until inventory has taken every lot in.

        The stock must be on the shelf before the first booking: inventory handles different keys of one
        consumed batch at once, so a delivery and a booking that reach it together may meet in either order,
        and a booking handled first is short (scheduling then moves it or announces it at risk)."""
        expires = date.today() + timedelta(days=365)
        lots = {ingredient: f"D{self.run}-{index:02d}" for index, ingredient in enumerate(STOCK)}
        for ingredient, (unit, quantity) in STOCK.items():
            await self.client.publish(
                model(
                    "StockReceived",
                    delivery_id=f"dlv_DEMO{self.run}",
                    ingredient=ingredient,
                    lot_number=lots[ingredient],
                    expires_on=expires.isoformat(),
                    quantity=quantity,
                    unit=unit,
                    received_at=self.now().isoformat(),
                ),
                source="/clinic/supplier",
            )
        self.say(f"supplier delivered {len(STOCK)} lots (one per ingredient), in date for a year")

        delivered = set(lots.values())

        def ours(data: Any) -> bool:
            return data.lot_number in delivered

        async def taken_in() -> list[CloudEvent] | None:
            answers = [*await self.client.events(ACCEPTED, ours), *await self.client.events(REFUSED, ours)]
            return answers if {event.data.lot_number for event in answers} == delivered else None

        answers = await eventually(taken_in, timeout=self.timeout, what=f"inventory's answer to each of the {len(lots)} lots delivered")
        refused = sorted({f"{e.data.lot_number} ({e.data.reason})" for e in answers if isinstance(e.data, REFUSED)})
        if refused:
            raise AssertionError(f"inventory refused lots of the journey's delivery: {', '.join(refused)}")
        self.seen["StockAccepted"] = answers
        self.say(f"inventory accepted all {len(lots)} lots")

    async def record_consultation(self) -> CloudEvent:
        measured = (self.now() - timedelta(days=3)).isoformat()
        labs = [("ferritin", 64.0, "ng/mL"), ("vitamin_d", 31.0, "ng/mL"), ("zinc", 88.0, "ug/dL"), ("tsh", 1.9, "mIU/L")]
        recorded = model(
            "ConsultationRecorded",
            patient_id=self.patient,
            consultation_id=self.consultation,
            recorded_at=self.now().isoformat(),
            current_medications=[],
            known_allergies=[],
            medical_history={**examples(REGISTRY.by_name("ConsultationRecorded"))[0]["medical_history"], "history_of_allergies": False},
            lab_results=[{"test": t, "value": v, "unit": u, "measured_at": measured} for t, v, u in labs],
            previously_received_ingredients=[],
        )
        await self.client.publish(recorded, source="/clinic/ehr")
        self.say(f"EHR recorded consultation {self.consultation} for {self.patient} (androgenetic alopecia, Norwood 3)")
        [deferred] = await self.expect("ConsultationDeferred")
        missing = [m.requirement for m in deferred.data.missing]
        self.say(f"consultation deferred: {', '.join(str(getattr(r, 'value', r)) for r in missing)}")
        return deferred

    async def record_allergy_test(self, deferred: CloudEvent) -> CloudEvent:
        ingredients = sorted({i for m in deferred.data.missing for i in (getattr(m, "ingredients", None) or ())})
        await self.client.publish(
            model(
                "AllergyTestRecorded",
                patient_id=self.patient,
                consultation_id=self.consultation,
                tested_at=self.now().isoformat(),
                recorded_at=self.now().isoformat(),
                results=[{"ingredient": i, "result": "negative"} for i in ingredients],
            ),
            source="/clinic/ehr",
        )
        self.say(f"EHR recorded a negative allergy test for {', '.join(ingredients)}")
        [approved] = await self.expect("ConsultationApproved")
        plan = approved.data.plan
        self.say(f"approved: course {approved.data.course_id}, {plan.sessions} sessions every {plan.interval_days} days, {len(plan.cocktail)} ingredients")
        return approved

    async def book_series(self, approved: CloudEvent) -> list[CloudEvent]:
        sessions = await self.expect("SessionScheduled", count=approved.data.plan.sessions)
        sessions.sort(key=lambda e: e.data.sequence)
        first = sessions[0].data
        self.say(f"scheduling booked {len(sessions)} sessions; the first on {first.scheduled_for:%a %d %b %H:%M} UTC in {first.chair_id}")
        [reserved] = await self.expect("IngredientsReserved", lambda d: d.session_id == first.session_id)
        self.say(f"inventory reserved session 1's cocktail from {len(reserved.data.allocations)} lot allocation(s), first expiry first out")
        reminders = await self.expect("PreTreatmentReminderDue", lambda d: d.session_id == first.session_id)
        self.say(f"reminder due for session 1: {reminders[0].data.kind}")
        return sessions

    async def complete_first_session(self, sessions: list[CloudEvent]) -> CloudEvent:
        first = sessions[0].data
        [reserved] = self.seen["IngredientsReserved"]
        completed = model(
            "SessionCompleted",
            patient_id=self.patient,
            course_id=first.course_id,
            session_id=first.session_id,
            completed_at=self.now().isoformat(),
            practitioner_id=first.practitioner_id,
            lots_used=[{"ingredient": a.ingredient, "lot_number": a.lot_number, "amount": a.amount, "unit": a.unit} for a in reserved.data.allocations],
        )
        sent = await self.client.publish(completed, source="/clinic/treatment-room")
        self.say(f"treatment room completed session 1 ({first.session_id})")
        await self.expect("StockConsumed", lambda d: d.session_id == first.session_id)
        [issued] = await self.expect("AftercareInstructionsIssued", lambda d: d.session_id == first.session_id)
        self.say(f"inventory recorded the consumption; aftercare issued {len(issued.data.instructions)} instructions and scheduled check-ins")
        return sent

    async def report_side_effect(self, sessions: list[CloudEvent]) -> CloudEvent:
        first = sessions[0].data
        report = model(
            "SideEffectReported",
            report_id=f"sfx_DEMO{self.run}",
            patient_id=self.patient,
            session_id=first.session_id,
            symptom="allergic_reaction",
            grade=3,
            onset_at=self.now().isoformat(),
            reported_at=self.now().isoformat(),
            still_present=True,
            reported_by="patient_app",
            check_in_id=None,
        )
        await self.client.publish(report, source="/clinic/patient-app")
        self.say("patient app reported an allergic reaction, grade 3")
        [escalated] = await self.expect("AdverseEventEscalated")
        self.say(f"aftercare escalated it: suspects {', '.join(escalated.data.suspect_ingredients)}")
        [paused] = await self.expect("TreatmentPaused")
        await self.expect("FollowUpScheduled", lambda d: d.escalation_id == escalated.data.escalation_id)
        self.say(f"scheduling paused the course ({len(paused.data.released_sessions)} sessions released) and booked a review")
        return escalated

    async def play(self) -> dict[str, list[CloudEvent]]:
        await self.deliver_stock()
        deferred = await self.record_consultation()
        approved = await self.record_allergy_test(deferred)
        sessions = await self.book_series(approved)
        await self.complete_first_session(sessions)
        await self.report_side_effect(sessions)
        self.say(f"journey of {self.patient} complete")
        return self.seen


async def play(settings: Settings, say: Callable[[str], None] = print) -> dict[str, list[CloudEvent]]:
    async with EventClient(Kafka.of(settings), settings.topic_prefix) as client:
        return await Journey(client, say=lambda message: say(f"journey: {message}")).play()
