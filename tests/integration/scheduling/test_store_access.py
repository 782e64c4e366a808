"""What scheduling does in the store per event: reads and writes by ``_id`` only, so the cost of an event
does not grow with the clinic's history, and a series reads only the calendar days it looks at."""

from __future__ import annotations

from datetime import timedelta

from clinic.polling import eventually
from services.scheduling.app import create_service
from services.scheduling.repository import COURSES, DAYS, SLOTS
from shared.clock import ManualClock
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import ConsultationApproved
from shared.contracts.inventory import IngredientShortage
from shared.contracts.scheduling import SessionCancelled, SessionCompleted, SessionNoShow, TreatmentPaused
from tests.integration.scheduling.journey import START, Course, booked, tiny_clinic
from tests.support.store_commands import reads, watching


async def test_every_handler_reads_and_writes_courses_and_the_calendar_by_id_only(settings, bus, run_id):
    course = Course(run_id, tag="IDX", sessions=6, interval_days=14)
    clock = ManualClock(START)
    with watching(settings.database("scheduling"), {COURSES, SLOTS, DAYS}) as commands:
        async with create_service(settings, clock, tiny_clinic()) as service:
            started = len(commands)

            async def step(data, model, count: int = 1) -> list[str]:
                mark = len(commands)
                await bus.publish(data)
                await eventually(lambda: _handled(service, model, count), what=f"{model.__name__} handled")
                return reads(commands, mark)

            approval_reads = await step(course.approved(), ConsultationApproved)
            sessions = await booked(bus, course)
            completion_reads = await step(course.completed(sessions[0].session_id, sessions[0].scheduled_for), SessionCompleted)
            cancel_reads = await step(course.cancelled(sessions[1], START), SessionCancelled)
            second = (await service.deps.repo.course(course.course_id)).sessions[1]
            no_show = SessionNoShow(
                patient_id=course.patient_id, course_id=course.course_id, session_id=second.session_id, scheduled_for=second.booking.start, recorded_at=START
            )
            await step(no_show, SessionNoShow)
            fifth = (await service.deps.repo.course(course.course_id)).sessions[4]
            shortage = IngredientShortage(
                patient_id=course.patient_id,
                course_id=course.course_id,
                session_id=fifth.session_id,
                needed_by=fifth.booking.start,
                detected_at=fifth.booking.start - timedelta(days=1),
                cause="lot_recalled",
                missing=[{"ingredient": "hyaluronic_acid", "amount": 20.0, "unit": "mg"}],
            )
            shortage_reads = await step(shortage, IngredientShortage)
            escalated = course.escalated(sessions[0].session_id, START + timedelta(hours=1)).model_copy(update={"course_id": None})
            escalation_reads = await step(escalated, AdverseEventEscalated)
            [paused] = await bus.wait_for(TreatmentPaused, course.mine)

    handling = commands[started:]
    assert [c for c in handling if c.scans] == []
    assert approval_reads == [COURSES, DAYS], "the course, then the calendar days of its sessions in one query"
    assert completion_reads == [COURSES], "closing a session places nothing"
    assert cancel_reads[0] == COURSES and set(cancel_reads[1:]) == {DAYS}
    assert shortage_reads[0] == COURSES and set(shortage_reads[1:]) == {DAYS}
    assert escalation_reads[0] == COURSES, "the course comes from the session id"
    assert len(paused.data.released_sessions) == 5


async def _handled(service, model, count: int) -> bool:
    stats = service.stats
    return stats.handled.get(model.event_type, 0) + stats.dead_lettered.get(model.event_type, 0) >= count
