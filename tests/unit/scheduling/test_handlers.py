"""Scheduling's handlers in-process (tests/support/unit_of_work.py): booking a course against the shared
calendar, moving and releasing sessions, closing sessions and the course, and what is refused, checked in
milliseconds. The calendar claims a handler writes itself are ``Handled.claims``; everything else is its
Effects."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.scheduling.app import create_service
from services.scheduling.handlers import Deps
from services.scheduling.repository import COURSES, DAYS, SLOTS, reminder_id
from shared.clock import ManualClock
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import ConsultationApproved
from shared.contracts.inventory import IngredientShortage
from shared.contracts.scheduling import (
    CourseReviewDecided,
    FollowUpScheduled,
    PreTreatmentReminderDue,
    RescheduleReason,
    SchedulingFailed,
    SessionAtRisk,
    SessionCancelled,
    SessionCompleted,
    SessionCompletionFlagged,
    SessionNoShow,
    SessionRescheduled,
    SessionScheduled,
    TreatmentCourseClosed,
    TreatmentCourseCompleted,
    TreatmentPaused,
    TreatmentResumed,
)
from shared.settings import Settings
from tests.support.unit_of_work import Handled, UnitOfWork
from tests.unit.scheduling.factories import COURSE, MONDAY, NOW, PATIENT, approval, at, clinic

CELLS_PER_SESSION = 2 * 3
"""A 45-minute session holds its chair and its practitioner for three 15-minute steps."""


async def work(**config: object) -> UnitOfWork[Deps]:
    return await UnitOfWork.of(create_service(Settings(), ManualClock(NOW), clinic(**config)))


def clock_of(uow: UnitOfWork[Deps]) -> ManualClock:
    clock = uow.deps.clock
    assert isinstance(clock, ManualClock)
    return clock


def other(approved: ConsultationApproved, tag: str) -> ConsultationApproved:
    """The same plan for another patient and course."""
    return approved.model_copy(update={"patient_id": f"pt_{tag}", "course_id": f"crs_{tag}", "consultation_id": f"cons_{tag}"})


def completion(scheduled: SessionScheduled) -> SessionCompleted:
    return SessionCompleted(
        patient_id=scheduled.patient_id,
        course_id=scheduled.course_id,
        session_id=scheduled.session_id,
        completed_at=scheduled.scheduled_for + timedelta(minutes=40),
        practitioner_id=scheduled.practitioner_id,
        depth_mm=2.0,
        lots_used=[{"ingredient": "biotin", "lot_number": "BIO-2026-0311", "amount": 5.0, "unit": "mg"}],
    )


def cancellation(scheduled: SessionScheduled, *, rebook: bool = True) -> SessionCancelled:
    return SessionCancelled(
        patient_id=scheduled.patient_id,
        course_id=scheduled.course_id,
        session_id=scheduled.session_id,
        scheduled_for=scheduled.scheduled_for,
        cancelled_at=NOW,
        cancelled_by="patient",
        reason="patient_unwell",
        rebook=rebook,
    )


def slots_of(uow: UnitOfWork[Deps], holder: str) -> list[str]:
    return sorted(cell for cell, doc in uow.db.documents(SLOTS).items() if doc["holder"] == holder)


def claimed_slots(handled: Handled) -> list[str]:
    return [w.id for w in handled.claims if w.collection == SLOTS and w.op == "insert"]


async def booked(uow: UnitOfWork[Deps], sessions: int = 4) -> list[SessionScheduled]:
    handled = await uow.handle(approval(sessions=sessions, interval_days=14))
    assert handled.outcome == "booked", handled.events
    return handled.emitted(SessionScheduled)


# ConsultationApproved


async def test_an_approval_books_the_whole_series_claiming_its_cells_itself_and_writing_the_rest_as_effects():
    uow = await work()

    handled = await uow.handle(approval(sessions=4, interval_days=14))

    scheduled = handled.emitted(SessionScheduled)
    assert [s.scheduled_for for s in scheduled] == [at(MONDAY + timedelta(days=14 * i), 9) for i in range(4)]
    assert len(claimed_slots(handled)) == 4 * CELLS_PER_SESSION, "each cell claimed by the handler, before its effects"
    assert {w.collection for w in handled.claims} == {SLOTS, DAYS}, "its only direct writes: the claims and the day hints"
    assert [w.collection for w in handled.effects.writes] == [COURSES]
    assert len(handled.emitted(PreTreatmentReminderDue)) == 4 * 2 and all(due is not None for due in handled.due(PreTreatmentReminderDue))
    assert [s["status"] for s in uow.db.documents(COURSES)[COURSE]["sessions"]] == ["scheduled"] * 4
    assert slots_of(uow, scheduled[0].session_id) == sorted(f"{r}|2026-03-09T{t}Z" for r in ("chair_01", "clin_0107") for t in ("09:00", "09:15", "09:30"))


async def test_an_approval_seen_again_books_nothing_more():
    uow = await work()
    approved = approval()
    await uow.handle(approved)

    again = await uow.handle(approved)

    assert again.outcome == "already-booked" and again.events == [] and again.claims == []


async def test_a_second_patient_is_placed_around_the_cells_the_first_holds():
    uow = await work()
    first = await booked(uow, sessions=3)
    held_before = set(uow.db.documents(SLOTS))

    handled = await uow.handle(other(approval(sessions=3, interval_days=14), "UNIT0002"))

    second = handled.emitted(SessionScheduled)
    assert [s.scheduled_for for s in second] == [s.scheduled_for + timedelta(minutes=45) for s in first]
    assert len(claimed_slots(handled)) == 3 * CELLS_PER_SESSION and not set(claimed_slots(handled)) & held_before


async def test_a_slot_lost_to_a_booking_the_calendar_did_not_show_yet_rereads_only_that_day(monkeypatch):
    uow = await work()
    rival = f"chair_01|{MONDAY}T09:00Z"  # claimed by another instance that has not noted its day yet
    await uow.db[SLOTS].insert_one({"_id": rival, "holder": "ses_UNIT0009_01", "course_id": "crs_UNIT0009", "patient_id": "pt_UNIT0009", "start": at(MONDAY, 9)})
    days_read: list[str] = []
    read_hours = uow.db[DAYS].find

    def counting(where: dict[str, Any], *args: object, **kwargs: object) -> object:
        days_read.extend(sorted({hour[:10] for hour in where["_id"]["$in"]}))
        return read_hours(where, *args, **kwargs)

    monkeypatch.setattr(uow.db[DAYS], "find", counting)

    handled = await uow.handle(approval(sessions=4, interval_days=14))

    scheduled = handled.emitted(SessionScheduled)
    assert scheduled[0].scheduled_for == at(MONDAY, 9, 15), "placed again around the lost cell"
    assert uow.db.documents(SLOTS)[rival]["course_id"] == "crs_UNIT0009", "never double-booked"
    series = [(MONDAY + timedelta(days=14 * i)).isoformat() for i in range(4)]
    assert days_read == [*series, MONDAY.isoformat()], "each day once, and the day of the lost cell again"


async def test_an_approval_for_a_course_id_another_patient_holds_is_rejected_with_nothing_written():
    uow = await work()
    await booked(uow)
    writes = len(uow.db.writes)

    handled = await uow.handle(approval().model_copy(update={"patient_id": "pt_SOMEONE2"}))

    assert handled.rejected is not None and handled.rejected.reason == "patient-mismatch"
    assert len(uow.db.writes) == writes


async def test_a_plan_outside_the_clinics_interval_bounds_fails_honestly_and_claims_nothing():
    uow = await work(series={"min_interval_days": 10})

    handled = await uow.handle(approval(interval_days=7))

    [failed] = handled.emitted(SchedulingFailed)
    assert [r.code for r in failed.reasons] == ["interval_out_of_range"]
    assert handled.outcome == "failed" and handled.claims == [] and handled.emitted(SessionScheduled) == []
    assert uow.db.documents(COURSES)[COURSE]["status"] == "failed"


# SessionCancelled, SessionNoShow


async def test_a_cancelled_session_is_rebooked_its_old_cells_and_reminders_given_back_and_the_new_ones_claimed():
    uow = await work()
    sessions = await booked(uow)
    second = sessions[1]
    old_cells = slots_of(uow, second.session_id)

    handled = await uow.handle(cancellation(second))

    [moved] = handled.emitted(SessionRescheduled)
    assert moved.session_id == second.session_id and moved.reason == RescheduleReason.SESSION_CANCELLED
    assert moved.previous_start == second.scheduled_for and moved.scheduled_for.date() == second.scheduled_for.date() + timedelta(days=1)
    assert handled.outcome == "rescheduled"
    assert len(claimed_slots(handled)) == CELLS_PER_SESSION
    assert not set(old_cells) & set(uow.db.documents(SLOTS)), "the old cells were released by the effects"
    assert sorted(handled.effects.cancel) == sorted(reminder_id(second.session_id, kind, second.scheduled_for) for kind in ("washout", "numbing_cream"))
    assert {r.scheduled_for for r in handled.emitted(PreTreatmentReminderDue)} == {moved.scheduled_for}
    assert [s.session_id for s in handled.emitted(SessionRescheduled)] == [second.session_id], "later sessions keep their gap"


async def test_a_session_cancelled_for_good_releases_its_cells_and_reminders_and_books_nothing():
    uow = await work()
    sessions = await booked(uow)
    last = sessions[-1]

    handled = await uow.handle(cancellation(last, rebook=False))

    assert handled.outcome == "cancelled" and handled.events == [] and claimed_slots(handled) == []
    assert {w.collection for w in handled.claims} == {DAYS}, "only the day hint is brought up to date at once"
    assert slots_of(uow, last.session_id) == []
    assert len(handled.effects.cancel) == 2
    assert uow.db.documents(COURSES)[COURSE]["sessions"][-1]["status"] == "cancelled"


async def test_a_cancellation_about_a_time_the_session_has_moved_away_from_is_ignored():
    uow = await work()
    second = (await booked(uow))[1]
    await uow.handle(cancellation(second))

    stale = await uow.handle(cancellation(second))

    assert stale.outcome == "stale-start" and stale.events == [] and stale.claims == []


async def test_a_missed_session_is_rebooked_as_a_no_show():
    uow = await work()
    first = (await booked(uow))[0]

    handled = await uow.handle(
        SessionNoShow(patient_id=PATIENT, course_id=COURSE, session_id=first.session_id, scheduled_for=first.scheduled_for, recorded_at=NOW)
    )

    [moved] = handled.emitted(SessionRescheduled)
    assert moved.reason == RescheduleReason.NO_SHOW and moved.scheduled_for > first.scheduled_for


async def test_a_cancellation_of_a_session_not_booked_here_or_of_another_patient_is_rejected():
    uow = await work()
    second = (await booked(uow))[1]

    unknown = await uow.handle(cancellation(second.model_copy(update={"session_id": "ses_UNIT0001_09"})))
    foreign = await uow.handle(cancellation(second.model_copy(update={"patient_id": "pt_SOMEONE2"})))

    assert unknown.rejected is not None and unknown.rejected.reason == "unknown-session"
    assert foreign.rejected is not None and foreign.rejected.reason == "patient-mismatch"
    assert unknown.claims == foreign.claims == []


# IngredientShortage


def shortage(scheduled: SessionScheduled, days_ahead: int) -> IngredientShortage:
    return IngredientShortage(
        patient_id=scheduled.patient_id,
        course_id=scheduled.course_id,
        session_id=scheduled.session_id,
        needed_by=scheduled.scheduled_for,
        detected_at=scheduled.scheduled_for - timedelta(days=days_ahead),
        cause="lot_recalled",
        missing=[{"ingredient": "biotin", "amount": 5.0, "unit": "mg"}],
    )


async def test_a_shortage_restocking_can_still_make_up_marks_the_session_at_risk_and_one_it_cannot_moves_it():
    uow = await work()
    sessions = await booked(uow)

    early = await uow.handle(shortage(sessions[2], days_ahead=10))
    late = await uow.handle(shortage(sessions[3], days_ahead=1))

    [at_risk] = early.emitted(SessionAtRisk)
    assert early.outcome == "at-risk" and len(early.events) == 1 and early.claims == []
    assert (at_risk.session_id, at_risk.scheduled_for, at_risk.cause) == (sessions[2].session_id, sessions[2].scheduled_for, "lot_recalled")
    assert uow.db.documents(COURSES)[COURSE]["sessions"][2]["at_risk"] == "lot_recalled"
    [moved] = late.emitted(SessionRescheduled)
    assert moved.reason == RescheduleReason.INGREDIENT_SHORTAGE and moved.scheduled_for >= sessions[3].scheduled_for + timedelta(days=2)


# SessionCompleted


async def test_a_completed_session_is_closed_and_nothing_else_happens():
    uow = await work()
    first = (await booked(uow))[0]

    handled = await uow.handle(completion(first))
    again = await uow.handle(completion(first))

    assert handled.outcome == "closed" and handled.events == [] and handled.claims == []
    assert sorted(handled.effects.cancel) == sorted(reminder_id(first.session_id, kind, first.scheduled_for) for kind in ("washout", "numbing_cream"))
    assert [s["status"] for s in uow.db.documents(COURSES)[COURSE]["sessions"]] == ["completed", "scheduled", "scheduled", "scheduled"]
    assert again.outcome == "already-completed" and again.effects.writes == []


async def test_the_last_completion_completes_the_course_and_claims_its_maintenance_visits():
    uow = await work(follow_ups={"maintenance_visits": 2})
    sessions = await booked(uow)
    for scheduled in sessions[:-1]:
        assert (await uow.handle(completion(scheduled))).outcome == "closed"

    handled = await uow.handle(completion(sessions[-1]))

    [ended] = handled.emitted(TreatmentCourseCompleted)
    assert ended.sessions_completed == 4 and ended.last_session_id == sessions[-1].session_id
    visits = handled.emitted(FollowUpScheduled)
    assert [v.kind for v in visits] == ["maintenance_visit"] * 2
    assert len(claimed_slots(handled)) == 2 * 2, "a 30-minute visit holds the practitioner for two steps"
    assert {slot.partition("|")[0] for slot in claimed_slots(handled)} == {"clin_0107"}, "no chair"
    assert handled.outcome == "course-completed" and uow.db.documents(COURSES)[COURSE]["status"] == "completed"


async def test_a_completion_of_a_session_not_booked_here_or_of_another_patient_is_rejected():
    uow = await work()
    first = (await booked(uow))[0]

    unknown = await uow.handle(completion(first.model_copy(update={"course_id": "crs_NOTHERE1"})))
    foreign = await uow.handle(completion(first.model_copy(update={"patient_id": "pt_SOMEONE2"})))

    assert unknown.rejected is not None and unknown.rejected.reason == "unknown-session"
    assert foreign.rejected is not None and foreign.rejected.reason == "patient-mismatch"


async def test_a_completion_before_the_sessions_booked_start_is_applied_flagged_and_gives_its_slot_back():
    uow = await work()
    second = (await booked(uow))[1]
    early_at = second.scheduled_for - timedelta(days=3)

    handled = await uow.handle(completion(second).model_copy(update={"completed_at": early_at}))

    [flagged] = handled.emitted(SessionCompletionFlagged)
    assert (flagged.session_id, flagged.flag, flagged.scheduled_for, flagged.completed_at) == (second.session_id, "completed_before_start", second.scheduled_for, early_at)
    assert handled.outcome == "closed-flagged" and len(handled.events) == 1 and claimed_slots(handled) == []
    assert slots_of(uow, second.session_id) == [], "the booked slot is free again"
    assert sorted(handled.effects.cancel) == sorted(reminder_id(second.session_id, kind, second.scheduled_for) for kind in ("washout", "numbing_cream"))
    assert uow.db.documents(COURSES)[COURSE]["sessions"][1]["status"] == "completed"


async def test_a_completion_within_the_clinics_allowance_for_an_early_patient_closes_the_session():
    uow = await work(series={"early_completion_minutes": 30})
    first = (await booked(uow))[0]

    early = await uow.handle(completion(first).model_copy(update={"completed_at": first.scheduled_for - timedelta(minutes=30)}))

    assert early.outcome == "closed" and early.events == [] and early.claims == []
    assert uow.db.documents(COURSES)[COURSE]["sessions"][0]["status"] == "completed"


# AdverseEventEscalated


def escalated(session_id: str, now: datetime = NOW) -> AdverseEventEscalated:
    return AdverseEventEscalated(
        escalation_id="esc_UNIT0001_1",
        patient_id=PATIENT,
        course_id=None,
        session_id=session_id,
        report_id="sfx_UNIT0001_1",
        symptom="allergic_reaction",
        grade=2,
        onset_at=now - timedelta(hours=2),
        escalated_at=now,
        reasons=["allergic_reaction"],
    )


async def test_an_escalation_pauses_the_course_releases_what_is_ahead_and_books_a_review_once():
    uow = await work()
    sessions = await booked(uow)
    escalation = escalated(sessions[0].session_id)

    handled = await uow.handle(escalation)
    again = await uow.handle(escalation)

    [paused] = handled.emitted(TreatmentPaused)
    assert list(paused.released_sessions) == [s.session_id for s in sessions]
    [review] = handled.emitted(FollowUpScheduled)
    assert review.kind == "adverse_event_review" and paused.review_follow_up_id == review.follow_up_id
    assert all(slots_of(uow, s.session_id) == [] for s in sessions) and len(slots_of(uow, review.follow_up_id)) == 2
    assert len(handled.effects.cancel) == 4 * 2
    assert again.outcome == "already-paused" and again.claims == []


# CourseReviewDecided: resuming or closing a paused course


def review(decision: str, **changes: object) -> CourseReviewDecided:
    reason = "reaction_resolved" if decision == "resume" else "adverse_event_confirmed"
    fields = {"patient_id": PATIENT, "course_id": COURSE, "decision": decision, "clinician_id": "clin_0042", "decided_at": NOW, "reason": reason}
    return CourseReviewDecided.model_validate({**fields, **changes})


async def paused_after_first(uow: UnitOfWork[Deps]) -> list[SessionScheduled]:
    """Four sessions booked, the first completed, then an escalation the next day pauses the course."""
    sessions = await booked(uow)
    await uow.handle(completion(sessions[0]))
    clock_of(uow).set(sessions[0].scheduled_for + timedelta(days=1))
    paused = await uow.handle(escalated(sessions[0].session_id, clock_of(uow).now()))
    assert paused.outcome == "paused" and [s for s in paused.emitted(TreatmentPaused)[0].released_sessions] == [s.session_id for s in sessions[1:]]
    return sessions


async def test_resuming_a_paused_course_books_its_released_sessions_again_as_reschedules_inventory_reserves():
    uow = await work()
    sessions = await paused_after_first(uow)
    clock_of(uow).set(at(MONDAY + timedelta(days=16), 8))  # Wednesday 2026-03-25

    handled = await uow.handle(review("resume"))

    [answer] = handled.emitted(TreatmentResumed)
    assert answer.rebooked_sessions == tuple(s.session_id for s in sessions[1:]) and answer.unbooked_sessions == ()
    assert (answer.clinician_id, answer.reason) == ("clin_0042", "reaction_resolved")
    moved = handled.emitted(SessionRescheduled)
    assert [m.session_id for m in moved] == list(answer.rebooked_sessions)
    assert all(m.reason == RescheduleReason.COURSE_RESUMED and m.cocktail == sessions[0].cocktail for m in moved)
    assert [m.previous_start for m in moved] == [s.scheduled_for for s in sessions[1:]]
    assert [m.scheduled_for for m in moved] == [at(MONDAY + timedelta(days=17 + 14 * i), 9) for i in range(3)], "from the notice on, at the plan's interval"
    assert handled.outcome == "resumed" and len(claimed_slots(handled)) == 3 * CELLS_PER_SESSION
    assert {r.scheduled_for for r in handled.emitted(PreTreatmentReminderDue)} == {m.scheduled_for for m in moved}
    stored = uow.db.documents(COURSES)[COURSE]
    assert stored["status"] == "active" and [s["status"] for s in stored["sessions"]] == ["completed"] + ["scheduled"] * 3


async def test_a_resumed_course_goes_on_to_completion_and_its_sessions_move_again_as_usual():
    uow = await work()
    await paused_after_first(uow)
    clock_of(uow).set(at(MONDAY + timedelta(days=16), 8))
    moved = (await uow.handle(review("resume"))).emitted(SessionRescheduled)

    no_show = await uow.handle(
        SessionNoShow(patient_id=PATIENT, course_id=COURSE, session_id=moved[0].session_id, scheduled_for=moved[0].scheduled_for, recorded_at=NOW)
    )
    assert no_show.outcome == "rescheduled"
    latest = {m.session_id: m for m in moved} | {m.session_id: m for m in no_show.emitted(SessionRescheduled)}
    outcomes = [(await uow.handle(completion(_as_scheduled(latest[session_id])))).outcome for session_id in sorted(latest)]

    assert outcomes == ["closed", "closed", "course-completed"]


def _as_scheduled(moved: SessionRescheduled) -> SessionScheduled:
    return SessionScheduled(
        patient_id=moved.patient_id,
        course_id=moved.course_id,
        session_id=moved.session_id,
        sequence=moved.sequence,
        of_total=4,
        scheduled_for=moved.scheduled_for,
        duration_minutes=moved.duration_minutes,
        practitioner_id=moved.practitioner_id,
        chair_id=moved.chair_id,
        cocktail=moved.cocktail,
        precautions={"avoid_aspirin_nsaids_days": 7, "avoid_alcohol_days": 2, "numbing_cream_minutes_before": 45, "anticoagulant_clinician_review": False},
    )


async def test_closing_a_paused_course_cancels_its_released_sessions_and_books_nothing():
    uow = await work()
    sessions = await paused_after_first(uow)

    handled = await uow.handle(review("close"))

    [closed] = handled.emitted(TreatmentCourseClosed)
    assert closed.cancelled_sessions == tuple(s.session_id for s in sessions[1:])
    assert (closed.sessions_planned, closed.sessions_completed, closed.reason) == (4, 1, "adverse_event_confirmed")
    assert len(handled.events) == 1 and claimed_slots(handled) == [] and handled.effects.cancel == []
    assert handled.outcome == "closed-course"
    stored = uow.db.documents(COURSES)[COURSE]
    assert stored["status"] == "closed" and [s["status"] for s in stored["sessions"]] == ["completed"] + ["cancelled"] * 3


async def test_a_decision_about_a_course_that_is_not_paused_is_refused_with_nothing_written():
    uow = await work()
    await booked(uow)
    writes = len(uow.db.writes)

    active = await uow.handle(review("resume"))
    closing = await uow.handle(review("close"))

    for handled in (active, closing):
        assert handled.rejected is not None and handled.rejected.reason == "course-not-paused"
        assert "active" in handled.rejected.detail and handled.claims == []
    assert len(uow.db.writes) == writes


async def test_a_second_decision_after_the_course_was_resumed_or_closed_is_refused():
    uow = await work()
    await paused_after_first(uow)
    assert (await uow.handle(review("close"))).outcome == "closed-course"
    writes = len(uow.db.writes)

    again = await uow.handle(review("resume"))

    assert again.rejected is not None and again.rejected.reason == "course-not-paused" and "closed" in again.rejected.detail
    assert len(uow.db.writes) == writes and uow.db.documents(COURSES)[COURSE]["status"] == "closed"


async def test_a_decision_about_an_unknown_course_or_another_patients_course_is_refused():
    uow = await work()
    await paused_after_first(uow)

    unknown = await uow.handle(review("resume", course_id="crs_NOTHERE1"))
    foreign = await uow.handle(review("resume", patient_id="pt_SOMEONE2"))

    assert unknown.rejected is not None and unknown.rejected.reason == "unknown-course"
    assert foreign.rejected is not None and foreign.rejected.reason == "patient-mismatch"
    assert uow.db.documents(COURSES)[COURSE]["status"] == "paused"


async def test_a_session_missed_while_the_course_is_paused_is_released_not_rebooked_and_cancelled_once_closed():
    uow = await work()
    sessions = await booked(uow)
    clock_of(uow).set(sessions[1].scheduled_for + timedelta(hours=1))  # session 2 is under way, not reported yet
    await uow.handle(escalated(sessions[0].session_id, clock_of(uow).now()))
    missed = SessionNoShow(patient_id=PATIENT, course_id=COURSE, session_id=sessions[1].session_id, scheduled_for=sessions[1].scheduled_for, recorded_at=NOW)

    handled = await uow.handle(missed)

    assert handled.outcome == "released" and handled.events == [] and claimed_slots(handled) == []
    assert slots_of(uow, sessions[1].session_id) == []
    assert uow.db.documents(COURSES)[COURSE]["sessions"][1]["status"] == "released"
    closed = await uow.handle(review("close"))
    assert closed.emitted(TreatmentCourseClosed)[0].cancelled_sessions == tuple(s.session_id for s in sessions[1:])


async def test_a_shortage_for_a_session_of_a_paused_course_moves_nothing():
    uow = await work()
    sessions = await booked(uow)
    clock_of(uow).set(sessions[1].scheduled_for + timedelta(hours=1))
    await uow.handle(escalated(sessions[0].session_id, clock_of(uow).now()))

    handled = await uow.handle(shortage(sessions[1], days_ahead=1))

    assert handled.outcome == "course-paused" and handled.events == [] and handled.claims == []
