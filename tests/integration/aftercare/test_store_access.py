"""What aftercare does in the store per event: reads and writes by ``_id`` only, so the cost of an event
does not grow with the clinic's history."""

from __future__ import annotations

from datetime import timedelta

from services.aftercare.app import create_service
from services.aftercare.repository import CHECK_INS, OUTCOME_TRENDS, PARKED, SESSIONS, SIDE_EFFECTS, outcome_trend
from shared.clock import ManualClock
from shared.contracts.aftercare import CheckInAnswered, OutcomeRecorded, SideEffectReported
from shared.contracts.scheduling import SessionCompleted
from tests.integration.aftercare.journey import COMPLETED_AT, Journey
from tests.integration.aftercare.test_outcomes import outcome
from tests.support.settle import settle
from tests.support.store_commands import reads, watching

OWN = {SESSIONS, CHECK_INS, SIDE_EFFECTS, OUTCOME_TRENDS, PARKED}


async def test_every_handler_reads_and_writes_its_documents_by_id_only(settings, bus, run_id):
    journey = Journey(run_id)
    symptom = {"symptom": "redness", "grade": 1, "onset_at": COMPLETED_AT + timedelta(hours=1), "still_present": True}
    with watching(settings.database("aftercare"), OWN) as commands:
        async with create_service(settings, ManualClock(COMPLETED_AT + timedelta(hours=6))) as service:

            async def step(data, model, count: int = 1) -> list[str]:
                mark = len(commands)
                await bus.publish(data)
                await settle(service, (model, count))
                return [c.collection for c in commands[mark:] if c.name == "find" and not c.scans]  # the gauge job's scan aside

            completed_reads = await step(journey.completed(), SessionCompleted)
            report_reads = await step(journey.report("allergic_reaction", 2), SideEffectReported)
            answer_reads = await step(journey.answer(24, symptom), CheckInAnswered)
            outcome_reads = await step(outcome(journey.patient_id, journey.course_id, 4, 131.0), OutcomeRecorded)
            mark = len(commands)
            trend = await outcome_trend(service.db, journey.course_id)
            trend_reads = reads(commands, mark)

    assert [c for c in commands if c.scans and c.collection != PARKED] == [], "only the parked-report gauge reads a whole collection"
    assert sorted(completed_reads) == sorted([SESSIONS, PARKED])
    assert sorted(report_reads) == sorted([SIDE_EFFECTS, SESSIONS])
    assert sorted(answer_reads) == sorted([CHECK_INS, SESSIONS])
    assert outcome_reads == trend_reads == [OUTCOME_TRENDS]
    assert [p.density_per_cm2 for p in trend] == [131.0]
