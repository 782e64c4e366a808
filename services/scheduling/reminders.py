"""When each pre-treatment reminder of a session falls due, and what it says.

Washout: avoid aspirin/NSAIDs and alcohol the plan's number of days before the session; a patient on
prescribed anticoagulants is never told to stop them: the clinician gets a review item instead.
Numbing cream: applied the plan's minutes before the session; the reminder comes a configured notice
before that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.scheduling.config import ReminderRules
from shared.contracts.plan import PreTreatmentPrecautions
from shared.contracts.scheduling import ReminderInstruction


@dataclass(frozen=True)
class Reminder:
    kind: Literal["washout", "numbing_cream"]
    due_at: datetime
    instructions: tuple[ReminderInstruction, ...]


def reminders_for(start: datetime, precautions: PreTreatmentPrecautions, rules: ReminderRules) -> list[Reminder]:
    reminders = []
    washout = _washout(start, precautions, rules)
    if washout:
        reminders.append(Reminder("washout", washout[0].at, washout))
    if precautions.numbing_cream_minutes_before is not None:
        apply_at = start - timedelta(minutes=precautions.numbing_cream_minutes_before)
        cream = ReminderInstruction(action="apply_numbing_cream", audience="patient", at=apply_at)
        reminders.append(Reminder("numbing_cream", apply_at - timedelta(minutes=rules.numbing_cream_notice_minutes), (cream,)))
    return reminders


def _washout(start: datetime, precautions: PreTreatmentPrecautions, rules: ReminderRules) -> tuple[ReminderInstruction, ...]:
    items = []
    if precautions.anticoagulant_clinician_review:
        at = start - timedelta(days=rules.anticoagulant_review_days)
        items.append(ReminderInstruction(action="anticoagulant_clinician_review", audience="clinician", at=at))
    elif precautions.avoid_aspirin_nsaids_days:
        at = start - timedelta(days=precautions.avoid_aspirin_nsaids_days)
        items.append(ReminderInstruction(action="avoid_aspirin_nsaids", audience="patient", at=at))
    if precautions.avoid_alcohol_days:
        at = start - timedelta(days=precautions.avoid_alcohol_days)
        items.append(ReminderInstruction(action="avoid_alcohol", audience="patient", at=at))
    return tuple(sorted(items, key=lambda item: item.at))
