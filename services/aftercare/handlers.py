"""Aftercare's reactions, one per consumed event: read, ask the domain, return Effects.

Aftercare writes nothing itself: every document it keeps belongs to one patient, so all its writes are
Effects. The events it publishes are built by the domain and emitted here under deterministic ids (a
check-in reminder's id lets an early answer cancel it).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.aftercare.config import AftercareConfig
from services.aftercare.domain import TreatedSession, plan_aftercare, with_outcome
from services.aftercare.repository import Repository
from services.aftercare.side_effects import InvalidReport, Report, assess, reports_from_answer
from shared.clock import Clock
from shared.contracts.aftercare import CheckInAnswered, OutcomeRecorded, SideEffectReported
from shared.contracts.scheduling import SessionCompleted
from shared.envelope import CloudEvent
from shared.runtime import Effects, Handlers, Rejected, ignored
from shared.runtime.store import derived_id


@dataclass(frozen=True)
class Deps:
    repo: Repository
    config: AftercareConfig
    clock: Clock


handlers = Handlers[Deps]("aftercare")


def instructions_event_id(session_id: str) -> str:
    return derived_id(session_id, "instructions")


def check_in_event_id(session_id: str, hours: int) -> str:
    return derived_id(session_id, "check-in", hours)


def escalation_event_id(escalation_id: str) -> str:
    return derived_id("escalation", escalation_id)


@handlers.on(SessionCompleted)
async def on_session_completed(event: CloudEvent[SessionCompleted], deps: Deps) -> Effects:
    completed = event.data
    if await deps.repo.session(completed.session_id) is not None:
        return ignored("already-issued")
    plan = plan_aftercare(completed, deps.config, deps.clock.now())
    effects = deps.repo.save_plan(plan).emit(plan.instructions, id=instructions_event_id(completed.session_id))
    for due in plan.check_ins:
        effects.emit(due, due_at=due.due_at, id=check_in_event_id(due.session_id, due.hours_after_session))
    return effects


@handlers.on(SideEffectReported)
async def on_side_effect_reported(event: CloudEvent[SideEffectReported], deps: Deps) -> Effects:
    report = Report.of(event.data)
    known, session = await deps.repo.report_and_session(report.report_id, report.session_id)
    if known:
        return ignored("duplicate-report")
    return _assessed(deps, _checked(session, report.session_id, report.patient_id), (report,))


@handlers.on(CheckInAnswered)
async def on_check_in_answered(event: CloudEvent[CheckInAnswered], deps: Deps) -> Effects:
    answer = event.data
    known, session = await deps.repo.check_in_and_session(answer.check_in_id, answer.session_id)
    if known is not None and known.session_id != answer.session_id:
        raise Rejected("check-in-mismatch", f"{answer.check_in_id} does not follow {answer.session_id}")
    if known is not None and known.answered_at is not None:
        return ignored("already-answered")
    session = _checked(session, answer.session_id, answer.patient_id)
    effects = _assessed(deps, session, reports_from_answer(answer)) + deps.repo.record_answer(answer)
    if known is not None and known.hours_after_session is not None:
        # Answered before it fell due: no need to ask again. A published one is not touched (runtime cancels pending only).
        effects.cancel.append(check_in_event_id(known.session_id, known.hours_after_session))
    return effects


@handlers.on(OutcomeRecorded)
async def on_outcome_recorded(event: CloudEvent[OutcomeRecorded], deps: Deps) -> Effects:
    outcome = event.data
    trend = with_outcome(await deps.repo.outcomes(outcome.course_id), outcome)
    return deps.repo.save_outcomes(outcome.patient_id, outcome.course_id, trend)


def _checked(session: TreatedSession | None, session_id: str, patient_id: str) -> TreatedSession:
    if session is None:
        raise Rejected("unknown-session", f"{session_id} has no completed session in aftercare")
    if session.patient_id != patient_id:
        raise Rejected("patient-mismatch", f"{session_id} belongs to another patient")
    return session


def _assessed(deps: Deps, session: TreatedSession, reports: tuple[Report, ...]) -> Effects:
    try:
        assessment = assess(session, reports, deps.config.escalation, deps.clock.now())
    except InvalidReport as error:
        raise Rejected(error.reason, error.detail) from None
    effects = deps.repo.record_assessment(session, assessment)
    for escalation in assessment.escalations:
        effects.emit(escalation, id=escalation_event_id(escalation.escalation_id))
    effects.outcome = "escalated" if assessment.escalations else "recorded"
    return effects
