"""A booked course as life happens: completions, a cancellation, an escalated side effect, bad input."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from services.scheduling.app import create_service
from services.scheduling.repository import SLOTS, reminder_id
from shared.clock import ManualClock
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import ConsultationApproved
from shared.contracts.scheduling import (
    CourseReviewDecided,
    FollowUpScheduled,
    RescheduleReason,
    SessionCancelled,
    SessionCompleted,
    SessionCompletionFlagged,
    SessionRescheduled,
    TreatmentCourseClosed,
    TreatmentCourseCompleted,
    TreatmentPaused,
    TreatmentResumed,
)
from shared.runtime.store import OUTBOX
from tests.integration.scheduling.journey import START, Course, booked, tiny_clinic
from tests.support.settle import settle


async def holders(service, course: Course) -> dict[str, set]:
    found: dict[str, set] = {}
    for claim in await service.db[SLOTS].find({"course_id": course.course_id}).to_list():
        found.setdefault(claim["holder"], set()).add(claim["start"])
    return found


async def pending_reminders(service, session_id: str) -> set[str]:
    rows = await service.db[OUTBOX].find({"status": "pending", "type": "clinic.reminder.pre_treatment_due.v1"}).to_list()
    return {row["_id"] for row in rows if f'"session_id":"{session_id}"' in bytes(row["value"]).decode()}


async def test_the_last_completion_completes_the_course_and_books_maintenance_visits(settings, bus, run_id):
    course = Course(run_id, sessions=3, interval_days=14)
    async with create_service(settings, ManualClock(START), tiny_clinic()) as service:
        await bus.publish(course.approved())
        sessions = await booked(bus, course)
        for session in sessions:
            await bus.publish(course.completed(session.session_id, session.scheduled_for))
        [ended] = await bus.wait_for(TreatmentCourseCompleted, course.mine)
        visits = sorted((e.data for e in await bus.wait_for(FollowUpScheduled, course.mine, count=2)), key=lambda d: d.scheduled_for)
        await bus.publish(course.completed(sessions[-1].session_id, sessions[-1].scheduled_for))  # the treatment room sends it again
        await settle(service, (SessionCompleted, 4))
        ends = await bus.events(TreatmentCourseCompleted, course.mine)
        claims = await holders(service, course)

    last_day = sessions[-1].scheduled_for.date()
    assert (ended.data.sessions_completed, ended.data.last_session_id) == (3, course.session_id(3))
    assert ended.data.completed_at == sessions[-1].scheduled_for + timedelta(minutes=40)
    assert [v.kind for v in visits] == ["maintenance_visit"] * 2
    assert [v.scheduled_for.date() for v in visits] == [last_day + timedelta(weeks=12), last_day + timedelta(weeks=24)]
    assert {v.follow_up_id for v in visits} <= set(claims), "the visits hold the practitioner's time"
    assert len(ends) == 1


async def test_a_completion_for_a_session_never_booked_is_dead_lettered_as_unknown(settings, bus, run_id):
    course = Course(run_id)
    async with create_service(settings, ManualClock(START), tiny_clinic()) as service:
        await bus.publish(course.completed(course.session_id(1), START + timedelta(days=14)))
        await settle(service, (SessionCompleted, 1))
        [dead] = await bus.dead_letters(SessionCompleted)
        ended = await bus.events(TreatmentCourseCompleted, course.mine)

    assert dict(dead.headers)["dlq_reason"] == b"unknown-session"
    assert ended == []


async def test_a_cancelled_session_is_rebooked_and_later_sessions_move_only_as_needed(settings, bus, run_id):
    course = Course(run_id, sessions=4, interval_days=7)
    clock = ManualClock(START)
    async with create_service(settings, clock, tiny_clinic()) as service:
        await bus.publish(course.approved())
        sessions = await booked(bus, course)
        await settle(service, (ConsultationApproved, 1))
        second = sessions[1]
        reminders_before = await pending_reminders(service, second.session_id)
        await bus.publish(course.cancelled(second, START + timedelta(days=1)))
        moved = sorted((e.data for e in await bus.wait_for(SessionRescheduled, course.mine, count=3)), key=lambda d: d.sequence)
        await settle(service, (SessionCancelled, 1))
        claims = await holders(service, course)
        reminders_after = await pending_reminders(service, second.session_id)

    assert [m.session_id for m in moved] == [course.session_id(i) for i in (2, 3, 4)]
    assert moved[0].reason == RescheduleReason.SESSION_CANCELLED
    assert moved[0].scheduled_for == second.scheduled_for + timedelta(days=1)
    assert [m.scheduled_for - s.scheduled_for for m, s in zip(moved[1:], sessions[2:], strict=False)] == [timedelta(days=1)] * 2
    assert {(m.reason, m.caused_by_session_id) for m in moved[1:]} == {(RescheduleReason.EARLIER_SESSION_MOVED, second.session_id)}
    assert claims[second.session_id] == {moved[0].scheduled_for + timedelta(minutes=m) for m in (0, 15, 30)}
    assert reminders_before == {reminder_id(second.session_id, kind, second.scheduled_for) for kind in ("washout", "numbing_cream")}
    assert reminders_after == {reminder_id(second.session_id, kind, moved[0].scheduled_for) for kind in ("washout", "numbing_cream")}


async def test_an_escalated_adverse_event_pauses_the_course_releases_what_is_ahead_and_books_a_review(settings, bus, run_id):
    course = Course(run_id, sessions=4, interval_days=14)
    clock = ManualClock(START)
    async with create_service(settings, clock, tiny_clinic()) as service:
        await bus.publish(course.approved())
        sessions = await booked(bus, course)
        await bus.publish(course.completed(sessions[0].session_id, sessions[0].scheduled_for))
        await settle(service, (ConsultationApproved, 1), (SessionCompleted, 1))
        clock.set(sessions[0].scheduled_for + timedelta(hours=6))
        await bus.publish(course.escalated(sessions[0].session_id, clock.now()))
        [paused] = await bus.wait_for(TreatmentPaused, course.mine)
        [review] = await bus.wait_for(FollowUpScheduled, course.mine)
        await bus.publish(course.escalated(sessions[0].session_id, clock.now()))  # aftercare re-sends it
        await settle(service, (AdverseEventEscalated, 2))
        pauses = await bus.events(TreatmentPaused, course.mine)
        claims = await holders(service, course)
        pending = [await pending_reminders(service, s.session_id) for s in sessions[1:]]

    released = tuple(s.session_id for s in sessions[1:])
    assert paused.data.released_sessions == released
    assert paused.data.escalation_id == review.data.escalation_id == course.escalated(released[0], START).escalation_id
    assert paused.data.review_follow_up_id == review.data.follow_up_id
    assert review.data.kind == "adverse_event_review"
    assert review.data.scheduled_for == sessions[0].scheduled_for + timedelta(days=1)
    assert set(claims) == {sessions[0].session_id, review.data.follow_up_id}, "released sessions hold no chair or practitioner"
    assert pending == [set(), set(), set()], "their reminders are cancelled"
    assert len(pauses) == 1


async def test_a_paused_course_resumed_after_the_review_books_its_released_sessions_again(settings, bus, run_id):
    course = Course(run_id, sessions=4, interval_days=14)
    clock = ManualClock(START)
    async with create_service(settings, clock, tiny_clinic()) as service:
        await bus.publish(course.approved())
        sessions = await booked(bus, course)
        await bus.publish(course.completed(sessions[0].session_id, sessions[0].scheduled_for))
        await settle(service, (ConsultationApproved, 1), (SessionCompleted, 1))
        clock.set(sessions[0].scheduled_for + timedelta(hours=6))
        await bus.publish(course.escalated(sessions[0].session_id, clock.now()))
        await bus.wait_for(TreatmentPaused, course.mine)
        await settle(service, (AdverseEventEscalated, 1))
        clock.set(sessions[1].scheduled_for + timedelta(days=3))  # the review took a while: session 2's day has passed
        await bus.publish(course.review("resume", clock.now()))
        [resumed] = await bus.wait_for(TreatmentResumed, course.mine)
        moved = sorted((e.data for e in await bus.wait_for(SessionRescheduled, course.mine, count=3)), key=lambda d: d.sequence)
        await bus.publish(course.review("close", clock.now()))  # a second decision: the course is no longer paused
        await settle(service, (CourseReviewDecided, 2))
        [dead] = await bus.dead_letters(CourseReviewDecided)
        closes = await bus.events(TreatmentCourseClosed, course.mine)
        claims = await holders(service, course)
        pending = [await pending_reminders(service, m.session_id) for m in moved]

    assert resumed.data.rebooked_sessions == tuple(s.session_id for s in sessions[1:])
    assert [m.session_id for m in moved] == list(resumed.data.rebooked_sessions)
    assert {m.reason for m in moved} == {RescheduleReason.COURSE_RESUMED}
    assert moved[0].scheduled_for > clock.now() and [b.scheduled_for - a.scheduled_for for a, b in pairwise(moved)] == [timedelta(days=14)] * 2
    assert all(claims[m.session_id] == {m.scheduled_for + timedelta(minutes=k) for k in (0, 15, 30)} for m in moved), "the new slots are held"
    wanted = [{reminder_id(m.session_id, kind, m.scheduled_for) for kind in ("washout", "numbing_cream")} for m in moved]
    assert pending[1:] == wanted[1:], "the new reminders wait for their time"
    assert pending[0] == {reminder_id(moved[0].session_id, "numbing_cream", moved[0].scheduled_for)}, "its washout is due at once"
    assert dict(dead.headers)["dlq_reason"] == b"course-not-paused" and closes == []


async def test_a_paused_course_closed_after_the_review_cancels_what_was_released(settings, bus, run_id):
    course = Course(run_id, sessions=3, interval_days=14)
    clock = ManualClock(START)
    async with create_service(settings, clock, tiny_clinic()) as service:
        await bus.publish(course.approved())
        sessions = await booked(bus, course)
        await settle(service, (ConsultationApproved, 1))
        await bus.publish(course.review("close", clock.now()))  # not paused yet: refused
        await settle(service, (CourseReviewDecided, 1))
        await bus.publish(course.escalated(sessions[0].session_id, clock.now()))
        await bus.wait_for(TreatmentPaused, course.mine)
        await bus.publish(course.review("close", clock.now()))
        [closed] = await bus.wait_for(TreatmentCourseClosed, course.mine)
        await settle(service, (CourseReviewDecided, 2))
        [dead] = await bus.dead_letters(CourseReviewDecided)
        moved = await bus.events(SessionRescheduled, course.mine)
        claims = await holders(service, course)

    assert dict(dead.headers)["dlq_reason"] == b"course-not-paused"
    assert closed.data.cancelled_sessions == tuple(s.session_id for s in sessions)
    assert (closed.data.sessions_completed, closed.data.clinician_id) == (0, "clin_0042")
    assert moved == [] and not set(claims) & {s.session_id for s in sessions}


async def test_a_completion_before_the_booked_start_is_applied_flagged_and_frees_the_slot(settings, bus, run_id):
    course = Course(run_id, sessions=3)
    async with create_service(settings, ManualClock(START), tiny_clinic()) as service:
        await bus.publish(course.approved())
        sessions = await booked(bus, course)
        await settle(service, (ConsultationApproved, 1))
        early_at = sessions[1].scheduled_for - timedelta(days=2)
        await bus.publish(course.completed(sessions[1].session_id, sessions[1].scheduled_for).model_copy(update={"completed_at": early_at}))
        [flagged] = await bus.wait_for(SessionCompletionFlagged, course.mine)
        await settle(service, (SessionCompleted, 1))
        dead = await bus.dead_letters(SessionCompleted)
        claims = await holders(service, course)

    assert (flagged.data.session_id, flagged.data.flag, flagged.data.completed_at) == (sessions[1].session_id, "completed_before_start", early_at)
    assert dead == [] and sessions[1].session_id not in claims and sessions[2].session_id in claims
