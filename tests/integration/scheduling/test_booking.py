"""Approval -> the whole series booked and claimed in the real store, or an honest failure."""

from __future__ import annotations

from datetime import time, timedelta

from services.scheduling.app import create_service
from services.scheduling.repository import COURSES, SLOTS
from shared.clock import ManualClock
from shared.contracts.consultation import ConsultationApproved
from shared.contracts.scheduling import PreTreatmentReminderDue, SchedulingFailed, SessionScheduled
from tests.integration.scheduling.journey import FIRST_DAY, START, Course, booked, tiny_clinic
from tests.support.settle import settle


async def test_an_approval_books_every_session_at_the_plans_spacing_and_claims_its_chair_and_practitioner(settings, bus, run_id):
    course = Course(run_id, sessions=4, interval_days=14)
    async with create_service(settings, ManualClock(START), tiny_clinic()) as service:
        approved = await bus.publish(course.approved())
        sessions = await booked(bus, course)
        await bus.publish(course.approved())  # the consultation service sends it again with a new event id
        await settle(service, (ConsultationApproved, 2))
        scheduled = await bus.events(SessionScheduled, course.mine)
        reminders = await bus.events(PreTreatmentReminderDue, course.mine)
        claims = await service.db[SLOTS].find({"course_id": course.course_id}).to_list()
        stored = await service.db[COURSES].find_one({"_id": course.course_id})

    assert [s.scheduled_for.date() for s in sessions] == [FIRST_DAY + timedelta(days=14 * i) for i in range(4)]
    assert {s.scheduled_for.time() for s in sessions} == {time(9)}
    assert [s.session_id for s in sessions] == [course.session_id(i) for i in range(1, 5)]
    assert {(s.chair_id, s.practitioner_id, s.of_total) for s in sessions} == {("chair_01", "clin_0107", 4)}
    assert sessions[0].cocktail == approved.data.plan.cocktail
    assert len(scheduled) == 4, "a re-sent approval books nothing twice"
    assert reminders == [], "no reminder before it is due"
    assert len(claims) == 4 * 2 * 3, "each session holds its chair and practitioner for three 15-minute steps"
    assert {c["holder"] for c in claims} == {s.session_id for s in sessions}
    assert [s["status"] for s in stored["sessions"]] == ["scheduled"] * 4
    assert all(e.causation_id == approved.id for e in scheduled)


async def test_a_plan_the_clinic_cannot_schedule_fails_honestly_and_books_nothing(settings, bus, run_id):
    course = Course(run_id, sessions=3, interval_days=7)
    strict = tiny_clinic(series={"min_interval_days": 10})
    async with create_service(settings, ManualClock(START), strict) as service:
        await bus.publish(course.approved())
        [failed] = await bus.wait_for(SchedulingFailed, course.mine)
        await settle(service, (ConsultationApproved, 1))
        scheduled = await bus.events(SessionScheduled, course.mine)
        claims = await service.db[SLOTS].count_documents({"course_id": course.course_id})

    assert [r.code for r in failed.data.reasons] == ["interval_out_of_range"]
    assert failed.data.sessions_requested == 3
    assert scheduled == [] and claims == 0
