"""Aftercare's reactions: decode, ask the domain, return effects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.aftercare.domain import TreatedSession, plan_aftercare
from services.aftercare.side_effects import InvalidReport, Report, assess, reports_from_answer
from shared.contracts.aftercare import CheckInAnswered, OutcomeRecorded, SideEffectReported
from shared.contracts.scheduling import SessionCompleted
from shared.envelope import CloudEvent
from shared.runtime import Effects, Handlers, Rejected, ignored

if TYPE_CHECKING:
    from services.aftercare.app import Deps

handlers = Handlers("aftercare")


@handlers.on(SessionCompleted)
async def on_session_completed(event: CloudEvent, deps: Deps) -> Effects:
    completed: SessionCompleted = event.data  # type: ignore[assignment]
    if await deps.repo.session(completed.session_id) is not None:
        return ignored("already-issued")
    plan = plan_aftercare(completed, deps.config, deps.clock.now())
    return deps.repo.save_plan(plan)


@handlers.on(SideEffectReported)
async def on_side_effect_reported(event: CloudEvent, deps: Deps) -> Effects:
    report = Report.of(event.data)  # type: ignore[arg-type]
    known, session = await deps.repo.report_and_session(report.report_id, report.session_id)
    if known:
        return ignored("duplicate-report")
    return await _assessed(deps, _checked(session, report.session_id, report.patient_id), (report,))


@handlers.on(CheckInAnswered)
async def on_check_in_answered(event: CloudEvent, deps: Deps) -> Effects:
    answer: CheckInAnswered = event.data  # type: ignore[assignment]
    known, session = await deps.repo.check_in_and_session(answer.check_in_id, answer.session_id)
    if known is not None and known.session_id != answer.session_id:
        raise Rejected("check-in-mismatch", f"{answer.check_in_id} does not follow {answer.session_id}")
    if known is not None and known.answered_at is not None:
        return ignored("already-answered")
    session = _checked(session, answer.session_id, answer.patient_id)
    return await _assessed(deps, session, reports_from_answer(answer)) + deps.repo.record_answer(answer, known)


@handlers.on(OutcomeRecorded)
async def on_outcome_recorded(event: CloudEvent, deps: Deps) -> Effects:
    outcome: OutcomeRecorded = event.data  # type: ignore[assignment]
    return deps.repo.record_outcome(outcome, await deps.repo.outcomes(outcome.course_id))


def _checked(session: TreatedSession | None, session_id: str, patient_id: str) -> TreatedSession:
    if session is None:
        raise Rejected("unknown-session", f"{session_id} has no completed session in aftercare")
    if session.patient_id != patient_id:
        raise Rejected("patient-mismatch", f"{session_id} belongs to another patient")
    return session


async def _assessed(deps: Deps, session: TreatedSession, reports: tuple[Report, ...]) -> Effects:
    try:
        assessment = assess(session, reports, deps.config.escalation, deps.clock.now())
    except InvalidReport as error:
        raise Rejected(error.reason, error.detail) from None
    return deps.repo.record_assessment(session, assessment)
