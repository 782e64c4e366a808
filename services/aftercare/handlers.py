"""Aftercare's reactions, one per consumed event: read, ask the domain, return Effects.

Aftercare writes nothing itself: every document it keeps belongs to one patient, so all its writes are
Effects. The events it publishes are built by the domain and emitted here under deterministic ids (a
check-in reminder's id lets an early answer cancel it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Gauge

from services.aftercare.config import AftercareConfig
from services.aftercare.domain import TreatedSession, plan_aftercare, with_outcome
from services.aftercare.repository import Parked, Repository, parked_reports
from services.aftercare.side_effects import InvalidReport, Report, assess, recorded, refusal, reports_from_answer
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


handlers = Handlers[Deps]("aftercare", concurrency=8)  # a patient's documents only: nothing shared to race for

PARKED_REPORTS = Gauge(
    "clinic_aftercare_parked_reports",
    "Side-effect reports parked under a session aftercare has not seen completed (waiting), or refused when it completed (refused).",
    ["state"],
)
PARKED_OLDEST_SECONDS = Gauge("clinic_aftercare_parked_oldest_seconds", "Age of the oldest side-effect report still waiting for its session's completion.")
PARKED_WATCH_SECONDS = 60.0


def instructions_event_id(session_id: str) -> str:
    return derived_id(session_id, "instructions")


def check_in_event_id(session_id: str, hours: int) -> str:
    return derived_id(session_id, "check-in", hours)


def escalation_event_id(escalation_id: str) -> str:
    return derived_id("escalation", escalation_id)


def recorded_event_id(report_id: str) -> str:
    return derived_id("recorded", report_id)


@handlers.on(SessionCompleted)
async def on_session_completed(event: CloudEvent[SessionCompleted], deps: Deps) -> Effects:
    completed = event.data
    session, parked = await deps.repo.session_and_parked(completed.session_id)
    if session is not None:
        return ignored("already-issued")
    plan = plan_aftercare(completed, deps.config, deps.clock.now())
    effects = deps.repo.save_plan(plan).emit(plan.instructions, id=instructions_event_id(completed.session_id))
    for due in plan.check_ins:
        effects.emit(due, due_at=due.due_at, id=check_in_event_id(due.session_id, due.hours_after_session))
    if parked is not None and parked.reports:
        effects += _waited(deps, plan.session, parked)
    return effects


@handlers.on(SideEffectReported)
async def on_side_effect_reported(event: CloudEvent[SideEffectReported], deps: Deps) -> Effects:
    report = Report.of(event.data)
    known, session = await deps.repo.report_and_session(report.report_id, report.session_id)
    if known:
        return ignored("duplicate-report")
    if session is None:  # sent before its session's completion (another topic): it waits for it
        return await _parked(deps, event.data)
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


@handlers.every(PARKED_WATCH_SECONDS)
async def watch_parked(deps: Deps, now: datetime) -> list[tuple[str, Effects]]:
    """Keeps the parked-report gauges current (an operator's view: it changes nothing)."""
    parked = await parked_reports(deps.repo.db)
    waiting = [at for p in parked for at in p.parked_at]
    PARKED_REPORTS.labels(state="waiting").set(len(waiting))
    PARKED_REPORTS.labels(state="refused").set(sum(len(p.refused) for p in parked))
    PARKED_OLDEST_SECONDS.set(max(0.0, (now - min(waiting)).total_seconds()) if waiting else 0.0)
    return []


async def _parked(deps: Deps, report: SideEffectReported) -> Effects:
    parked = await deps.repo.parked(report.session_id)
    if parked is not None and parked.holds(report.report_id):
        return ignored("duplicate-report")
    if parked is not None and len(parked.reports) >= deps.config.parked_reports_per_session:
        raise Rejected("parked-full", f"{report.session_id} already has {len(parked.reports)} reports waiting for its completion")
    effects = deps.repo.park(parked, report, deps.clock.now())
    effects.outcome = "parked"
    return effects


def _waited(deps: Deps, session: TreatedSession, parked: Parked) -> Effects:
    """The reports that waited for this session: each that can follow it is recorded (and escalated when
    serious) as if it came now; one that cannot (another patient's, an onset before the session) is kept
    on the parked list with its reason, since the SessionCompleted that found it must not be refused."""
    rules = deps.config.escalation
    reports = [Report.of(r) for r in parked.reports]
    refused = [(r, refusal(session, r, rules)) for r in reports]
    effects = _assessed(deps, session, tuple(r for r, why in refused if why is None), waited=True)
    effects += deps.repo.unpark(
        parked, [{"report_id": r.report_id, "reason": why.reason, "detail": why.detail} for r, why in refused if why is not None]
    )
    effects.outcome = f"waiting-{effects.outcome}"  # waiting-recorded or waiting-escalated
    return effects


def _checked(session: TreatedSession | None, session_id: str, patient_id: str) -> TreatedSession:
    if session is None:
        raise Rejected("unknown-session", f"{session_id} has no completed session in aftercare")
    if session.patient_id != patient_id:
        raise Rejected("patient-mismatch", f"{session_id} belongs to another patient")
    return session


def _assessed(deps: Deps, session: TreatedSession, reports: tuple[Report, ...], *, waited: bool = False) -> Effects:
    now = deps.clock.now()
    try:
        assessment = assess(session, reports, deps.config.escalation, now)
    except InvalidReport as error:
        raise Rejected(error.reason, error.detail) from None
    effects = deps.repo.record_assessment(session, assessment)
    for item in assessment.items:
        effects.emit(recorded(session, item, now, waited=waited), id=recorded_event_id(item.report.report_id))
    for escalation in assessment.escalations:
        effects.emit(escalation, id=escalation_event_id(escalation.escalation_id))
    effects.outcome = "escalated" if assessment.escalations else "recorded"
    return effects
