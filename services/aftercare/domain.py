"""After a session: the treated session as aftercare remembers it, its instructions and its check-ins.

Pure: no I/O, time is passed in. Classification and escalation of side effects are in ``side_effects``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.aftercare.config import AftercareConfig
from shared.contracts.aftercare import (
    AftercareCheckInDue,
    AftercareInstruction,
    AftercareInstructionsIssued,
    IngredientLot,
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
