"""Aftercare's handlers in-process (tests/support/unit_of_work.py): the same rules as the integration tier,
checked in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.aftercare.app import create_service
from services.aftercare.handlers import PARKED_REPORTS, Deps, check_in_event_id
from services.aftercare.repository import CHECK_INS, OUTCOME_TRENDS, PARKED, SESSIONS, SIDE_EFFECTS
from shared.clock import ManualClock
from shared.contracts import examples
from shared.contracts.aftercare import (
    AdverseEventEscalated,
    AftercareCheckInDue,
    AftercareInstructionsIssued,
    CheckInAnswered,
    OutcomeRecorded,
    SideEffectRecorded,
    SideEffectReported,
)
from shared.contracts.scheduling import SessionCompleted
from shared.settings import Settings
from tests.support.unit_of_work import UnitOfWork
from tests.unit.aftercare.factories import COMPLETED_AT, completed

NOW = datetime(2026, 3, 16, 10, 0, tzinfo=UTC)
PATIENT, COURSE, SESSION = "pt_UNIT7Q2M9K", "crs_UNIT5D0B", "ses_UNIT5D0B_01"


async def work() -> UnitOfWork[Deps]:
    return await UnitOfWork.of(create_service(Settings(), ManualClock(NOW)))


async def test_a_completed_session_gets_instructions_and_its_check_ins_once():
    uow = await work()
    completed = SessionCompleted.model_validate(examples(SessionCompleted)[0])

    first = await uow.handle(completed)
    again = await uow.handle(completed)

    assert [i.session_id for i in first.emitted(AftercareInstructionsIssued)] == [completed.session_id]
    assert len(first.emitted(AftercareCheckInDue)) >= 1 and all(due is not None and due > NOW for due in first.due(AftercareCheckInDue))
    assert first.claims == [], "aftercare claims nothing shared: every write is an Effect"
    assert again.outcome == "already-issued" and again.events == []


async def test_a_report_for_a_session_aftercare_has_not_seen_completed_waits_for_it_under_the_session():
    uow = await work()
    report = SideEffectReported.model_validate(examples(SideEffectReported)[0])

    handled = await uow.handle(report)
    again = await uow.handle(report)

    assert handled.outcome == "parked" and handled.events == []
    assert [w.collection for w in handled.effects.writes] == [PARKED], "nothing recorded yet: only parked"
    parked = uow.db.documents(PARKED)[report.session_id]
    assert [r["report"]["report_id"] for r in parked["reports"]] == [report.report_id]
    assert again.outcome == "duplicate-report" and again.effects.writes == []


# Builders for one patient's session (tests/unit/aftercare/factories.py): the session completed at 09:40.


def report(symptom: str, grade: int, letter: str = "A", **changes: Any) -> SideEffectReported:
    data = {
        "report_id": f"sfx_UNIT5D0B_01{letter}",
        "patient_id": PATIENT,
        "session_id": SESSION,
        "symptom": symptom,
        "grade": grade,
        "onset_at": COMPLETED_AT + timedelta(minutes=5),
        "reported_at": COMPLETED_AT + timedelta(minutes=15),
        "still_present": True,
        "reported_by": "patient_app",
    }
    return SideEffectReported.model_validate({**data, **changes})


def answer(hours: int, *symptoms: dict[str, Any], session_id: str = SESSION, **changes: Any) -> CheckInAnswered:
    data = {
        "check_in_id": f"chk_UNIT5D0B_01_{hours}h",
        "patient_id": PATIENT,
        "session_id": session_id,
        "answered_at": COMPLETED_AT + timedelta(minutes=20),
        "symptoms": symptoms,
    }
    return CheckInAnswered.model_validate({**data, **changes})


def outcome(weeks: int, density: float, **changes: Any) -> OutcomeRecorded:
    data = {
        "patient_id": PATIENT,
        "course_id": COURSE,
        "clinician_id": "clin_0042",
        "measured_at": COMPLETED_AT + timedelta(weeks=weeks),
        "density_per_cm2": density,
        "satisfaction": 3,
    }
    return OutcomeRecorded.model_validate({**data, **changes})


async def treated() -> UnitOfWork[Deps]:
    uow = await work()
    await uow.handle(completed())
    return uow


# SideEffectReported


async def test_a_serious_report_is_escalated_once_with_the_sessions_ingredients_and_lots_as_suspects():
    uow = await treated()

    first = await uow.handle(report("allergic_reaction", 2))
    again = await uow.handle(report("allergic_reaction", 2))

    [escalated] = first.emitted(AdverseEventEscalated)
    assert (escalated.escalation_id, escalated.reasons) == ("esc_UNIT5D0B_01A", ("allergic_reaction",))
    assert escalated.suspect_ingredients == ("hyaluronic_acid", "biotin")
    assert [lot.lot_number for lot in escalated.lots] == ["HA-2026-0117", "BIO-2026-0311"]
    assert first.outcome == "escalated" and first.claims == []
    assert uow.db.documents(SESSIONS)[SESSION]["escalated"] == {"allergic_reaction": 2}
    assert again.outcome == "duplicate-report" and again.events == []


async def test_a_mild_expected_symptom_is_recorded_without_escalation():
    uow = await treated()

    handled = await uow.handle(report("redness", 1))

    assert handled.outcome == "recorded"
    [answered] = handled.emitted(SideEffectRecorded)
    assert [type(e.data) for e in handled.events] == [SideEffectRecorded], "recorded and answered, not escalated"
    assert (answered.category, answered.reasons, answered.escalation_id, answered.already_escalated) == ("expected", (), None, False)
    assert (answered.course_id, answered.waited_for_session) == (COURSE, False)
    assert uow.db.documents(SIDE_EFFECTS)["sfx_UNIT5D0B_01A"]["category"] == "expected"


async def test_the_same_symptom_escalates_again_only_when_it_worsens():
    uow = await treated()
    await uow.handle(report("allergic_reaction", 2, "A"))

    same = await uow.handle(report("allergic_reaction", 2, "B"))
    worse = await uow.handle(report("allergic_reaction", 3, "C"))

    assert same.outcome == "recorded" and uow.db.documents(SIDE_EFFECTS)["sfx_UNIT5D0B_01B"]["already_escalated"] is True
    [answered] = same.emitted(SideEffectRecorded)
    assert (answered.category, answered.escalation_id, answered.already_escalated) == ("serious", None, True)
    [worse_answer] = worse.emitted(SideEffectRecorded)
    assert (worse_answer.escalation_id, worse_answer.reasons) == ("esc_UNIT5D0B_01C", ("allergic_reaction", "grade_3_or_above"))
    [escalated] = worse.emitted(AdverseEventEscalated)
    assert (escalated.grade, escalated.reasons) == (3, ("allergic_reaction", "grade_3_or_above"))


async def test_a_report_that_cannot_follow_the_session_is_rejected_with_nothing_applied():
    uow = await treated()
    applied = len(uow.db.writes)

    other_patient = await uow.handle(report("pain", 1, patient_id="pt_SOMEONE02"))
    before_session = await uow.handle(report("pain", 1, onset_at=COMPLETED_AT - timedelta(hours=1)))
    after_report = await uow.handle(report("pain", 1, onset_at=COMPLETED_AT + timedelta(hours=1)))

    reasons = [h.rejected.reason if h.rejected else None for h in (other_patient, before_session, after_report)]
    assert reasons == ["patient-mismatch", "onset-before-session", "onset-after-report"]
    assert len(uow.db.writes) == applied


# A report that arrives before its session's completion


async def test_reports_that_waited_are_recorded_and_escalated_when_their_session_completes():
    uow = await work()
    await uow.handle(report("redness", 1, "A"))
    await uow.handle(report("allergic_reaction", 2, "B"))

    handled = await uow.handle(completed())

    assert handled.outcome == "waiting-escalated"
    assert [a.report_id for a in handled.emitted(SideEffectRecorded)] == ["sfx_UNIT5D0B_01A", "sfx_UNIT5D0B_01B"]
    assert all(a.waited_for_session for a in handled.emitted(SideEffectRecorded))
    [escalated] = handled.emitted(AdverseEventEscalated)
    assert (escalated.report_id, escalated.course_id) == ("sfx_UNIT5D0B_01B", COURSE)
    assert len(handled.emitted(AftercareInstructionsIssued)) == 1, "the session's own aftercare still starts"
    assert set(uow.db.documents(SIDE_EFFECTS)) == {"sfx_UNIT5D0B_01A", "sfx_UNIT5D0B_01B"}
    assert uow.db.documents(SESSIONS)[SESSION]["escalated"] == {"allergic_reaction": 2}
    assert uow.db.documents(PARKED) == {}, "nothing left waiting"


async def test_a_waiting_report_that_cannot_follow_its_session_stays_listed_with_its_reason():
    uow = await work()
    await uow.handle(report("pain", 1, "A", onset_at=COMPLETED_AT - timedelta(hours=2)))
    await uow.handle(report("pain", 1, "B"))

    handled = await uow.handle(completed())

    assert handled.rejected is None, "the completion is never refused for a report"
    assert [a.report_id for a in handled.emitted(SideEffectRecorded)] == ["sfx_UNIT5D0B_01B"]
    left = uow.db.documents(PARKED)[SESSION]
    assert (left["reports"], [(r["report_id"], r["reason"]) for r in left["refused"]]) == ([], [("sfx_UNIT5D0B_01A", "onset-before-session")])


async def test_a_session_holds_a_bounded_number_of_waiting_reports_and_the_gauge_shows_them():
    uow = await work()
    limit = uow.deps.config.parked_reports_per_session
    for n in range(limit):
        assert (await uow.handle(report("pain", 1, f"P{n:02d}"))).outcome == "parked"

    over = await uow.handle(report("pain", 1, "Z"))
    await uow.run_jobs(NOW + timedelta(hours=1))

    assert over.rejected is not None and over.rejected.reason == "parked-full"
    assert PARKED_REPORTS.labels(state="waiting")._value.get() == limit


# CheckInAnswered


async def test_an_early_answer_is_recorded_and_withdraws_its_pending_reminder():
    uow = await treated()

    handled = await uow.handle(answer(24))
    again = await uow.handle(answer(24))

    assert handled.outcome == "recorded" and handled.events == []
    assert uow.cancelled == [check_in_event_id(SESSION, 24)]
    stored = uow.db.documents(CHECK_INS)["chk_UNIT5D0B_01_24h"]
    assert (stored["answered_at"], stored["symptoms_reported"]) == (COMPLETED_AT + timedelta(minutes=20), 0)
    assert again.outcome == "already-answered" and again.effects.writes == []


async def test_a_serious_symptom_in_an_answer_is_escalated_under_an_id_from_the_check_in():
    uow = await treated()
    symptom = {"symptom": "infection", "grade": 2, "onset_at": COMPLETED_AT + timedelta(minutes=10), "still_present": True}

    handled = await uow.handle(answer(72, symptom))

    [escalated] = handled.emitted(AdverseEventEscalated)
    assert (escalated.report_id, escalated.reasons) == ("sfx_UNIT5D0B_01_72h_1", ("infection",))
    [answered] = handled.emitted(SideEffectRecorded)
    assert (answered.report_id, answered.check_in_id, answered.escalation_id) == ("sfx_UNIT5D0B_01_72h_1", "chk_UNIT5D0B_01_72h", escalated.escalation_id)
    assert uow.db.documents(SIDE_EFFECTS)["sfx_UNIT5D0B_01_72h_1"]["check_in_id"] == "chk_UNIT5D0B_01_72h"


async def test_an_answer_that_does_not_follow_its_session_is_rejected():
    uow = await treated()
    applied = len(uow.db.writes)

    mismatch = await uow.handle(answer(24, session_id="ses_UNIT5D0B_02"))
    unknown = await uow.handle(answer(24, session_id="ses_UNIT5D0B_02", check_in_id="chk_UNIT5D0B_02_24h"))
    other_patient = await uow.handle(answer(24, patient_id="pt_SOMEONE02"))

    reasons = [h.rejected.reason if h.rejected else None for h in (mismatch, unknown, other_patient)]
    assert reasons == ["check-in-mismatch", "unknown-session", "patient-mismatch"]
    assert len(uow.db.writes) == applied and uow.cancelled == []


# OutcomeRecorded


async def test_a_courses_outcomes_are_kept_oldest_first_and_a_correction_replaces_its_measurement():
    uow = await work()

    for weeks, density in ((8, 150.0), (0, 120.0), (4, 131.0), (4, 133.5)):
        handled = await uow.handle(outcome(weeks, density))
        assert handled.events == [] and handled.claims == []

    trend = await uow.deps.repo.outcomes(COURSE)
    assert [(p.measured_at, p.density_per_cm2) for p in trend] == [
        (COMPLETED_AT, 120.0),
        (COMPLETED_AT + timedelta(weeks=4), 133.5),
        (COMPLETED_AT + timedelta(weeks=8), 150.0),
    ]
    assert set(uow.db.documents(OUTCOME_TRENDS)) == {COURSE}
