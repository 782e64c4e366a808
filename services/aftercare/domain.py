"""After a session: the treated session as aftercare remembers it, its instructions and its check-ins.

Pure: no I/O, time is passed in. Classification and escalation of side effects are in ``side_effects``
(also pure); a course's outcome trend is at the end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.aftercare.config import AftercareConfig
from shared.contracts.aftercare import (
    AftercareCheckInDue,
    AftercareInstruction,
    AftercareInstructionsIssued,
    IngredientLot,
    OutcomeRecorded,
    Symptom,
)
from shared.contracts.plan import LotLine
from shared.contracts.scheduling import SessionCompleted

_MAX_SUFFIX = 60  # every id pattern of the contracts allows 6-60 characters after its prefix


@dataclass(frozen=True)
class TreatedSession:
    session_id: str
    patient_id: str
    course_id: str
    completed_at: datetime
    lots: tuple[IngredientLot, ...]
    escalated: Mapping[Symptom, int] = field(default_factory=dict)
    """Highest grade escalated so far, per symptom (one escalation per symptom unless it worsens)."""

    @property
    def suspect_ingredients(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(lot.ingredient for lot in self.lots))


@dataclass(frozen=True)
class AftercarePlan:
    session: TreatedSession
    instructions: AftercareInstructionsIssued
    check_ins: tuple[AftercareCheckInDue, ...]


def plan_aftercare(completed: SessionCompleted, config: AftercareConfig, now: datetime) -> AftercarePlan:
    """What a completed session starts: the instructions with their end times and the check-ins due."""
    done = completed.completed_at
    check_ins = tuple(
        AftercareCheckInDue(
            check_in_id=check_in_id(completed.session_id, hours),
            patient_id=completed.patient_id,
            course_id=completed.course_id,
            session_id=completed.session_id,
            due_at=done + timedelta(hours=hours),
            hours_after_session=hours,
        )
        for hours in config.check_in_hours
    )
    instructions = AftercareInstructionsIssued(
        patient_id=completed.patient_id,
        course_id=completed.course_id,
        session_id=completed.session_id,
        session_completed_at=done,
        issued_at=now,
        instructions=tuple(
            AftercareInstruction(advice=rule.advice, until=done + rule.window) for rule in config.instructions
        ),
        check_ins_due_at=tuple(c.due_at for c in check_ins),
    )
    session = TreatedSession(
        session_id=completed.session_id,
        patient_id=completed.patient_id,
        course_id=completed.course_id,
        completed_at=done,
        lots=lots_of(completed.lots_used),
    )
    return AftercarePlan(session, instructions, check_ins)


def lots_of(lines: Iterable[LotLine]) -> tuple[IngredientLot, ...]:
    """Each (ingredient, lot) once, in the order used: a lot split over several lines is one suspect."""
    unique = dict.fromkeys((line.ingredient, line.lot_number) for line in lines)
    return tuple(IngredientLot(ingredient=ingredient, lot_number=lot) for ingredient, lot in unique)


def check_in_id(session_id: str, hours: int) -> str:
    return bounded_id("chk_", f"{_suffix(session_id)}_{hours}h", session_id, hours)


def bounded_id(prefix: str, readable: str, *cause: object) -> str:
    """``prefix + readable`` when it fits the contracts' id patterns, else a digest of the cause."""
    if len(readable) <= _MAX_SUFFIX:
        return prefix + readable
    return prefix + hashlib.sha256("/".join(map(str, cause)).encode()).hexdigest()[:40]


def _suffix(identifier: str) -> str:
    return identifier.split("_", 1)[1]


@dataclass(frozen=True)
class OutcomePoint:
    """One measurement of a course's outcome, as the trend keeps it."""

    key: str
    """Identity of the measurement: its moment to the microsecond (a stored date keeps only milliseconds)."""
    measured_at: datetime
    session_id: str | None = None
    clinician_id: str | None = None
    density_per_cm2: float | None = None
    shaft_diameter_um: float | None = None
    satisfaction: int | None = None
    photo_views: tuple[str, ...] = ()
    clinician_decision: str | None = None


def with_outcome(recorded: Iterable[OutcomePoint], outcome: OutcomeRecorded) -> tuple[OutcomePoint, ...]:
    """The course's trend, oldest first, with this measurement; a re-sent measurement of the same course at
    the same moment is a correction: it replaces the one recorded."""
    measured_at = outcome.measured_at.astimezone(UTC)
    point = OutcomePoint(
        key=measured_at.isoformat(),
        session_id=outcome.session_id,
        clinician_id=outcome.clinician_id,
        measured_at=measured_at,
        density_per_cm2=outcome.density_per_cm2,
        shaft_diameter_um=outcome.shaft_diameter_um,
        satisfaction=outcome.satisfaction,
        photo_views=tuple(outcome.photo_views),
        clinician_decision=outcome.clinician_decision,
    )
    kept = [p for p in recorded if p.key != point.key]
    return tuple(sorted([*kept, point], key=lambda p: (p.measured_at, p.key)))
