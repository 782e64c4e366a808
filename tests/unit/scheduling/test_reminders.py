"""When pre-treatment reminders fall due and whom they address."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.scheduling.config import ReminderRules
from services.scheduling.domain import due_reminders, reminders_for
from shared.contracts.plan import PreTreatmentPrecautions
from tests.unit.scheduling.factories import NOW, booked, clinic

START = datetime(2026, 3, 16, 9, tzinfo=UTC)
RULES = ReminderRules(numbing_cream_notice_minutes=15, anticoagulant_review_days=3)


def precautions(**changes) -> PreTreatmentPrecautions:
    values = {"avoid_aspirin_nsaids_days": 7, "avoid_alcohol_days": 2, "numbing_cream_minutes_before": 45, "anticoagulant_clinician_review": False}
    return PreTreatmentPrecautions(**(values | changes))


def test_the_washout_reminder_falls_due_when_the_longest_washout_starts_and_lists_each_start():
    washout, cream = reminders_for(START, precautions(), RULES)

    assert washout.kind == "washout" and washout.due_at == START - timedelta(days=7)
    assert [(i.action, i.audience, i.at) for i in washout.instructions] == [
        ("avoid_aspirin_nsaids", "patient", START - timedelta(days=7)),
        ("avoid_alcohol", "patient", START - timedelta(days=2)),
    ]
    assert cream.kind == "numbing_cream"


def test_the_numbing_cream_reminder_comes_the_configured_notice_before_the_cream_is_due():
    [_, cream] = reminders_for(START, precautions(numbing_cream_minutes_before=60), RULES)

    assert cream.due_at == START - timedelta(minutes=75)
    assert [(i.action, i.at) for i in cream.instructions] == [("apply_numbing_cream", START - timedelta(minutes=60))]


def test_prescribed_anticoagulants_go_to_the_clinician_and_the_patient_is_never_told_to_stop_them():
    [washout, _] = reminders_for(START, precautions(anticoagulant_clinician_review=True), RULES)

    assert [(i.action, i.audience) for i in washout.instructions] == [
        ("anticoagulant_clinician_review", "clinician"),
        ("avoid_alcohol", "patient"),
    ]
    assert washout.due_at == START - timedelta(days=3)
    assert all(i.action != "avoid_aspirin_nsaids" for i in washout.instructions)


def test_no_washout_reminder_without_a_washout_and_no_cream_reminder_without_cream():
    quiet = precautions(avoid_aspirin_nsaids_days=0, avoid_alcohol_days=0, numbing_cream_minutes_before=None)

    assert reminders_for(START, quiet, RULES) == []


def test_an_alcohol_only_washout_falls_due_at_its_own_start():
    [washout, _] = reminders_for(START, precautions(avoid_aspirin_nsaids_days=0, avoid_alcohol_days=3), RULES)

    assert washout.due_at == START - timedelta(days=3)
    assert [i.action for i in washout.instructions] == ["avoid_alcohol"]


def test_a_reminder_already_overdue_when_booked_falls_due_at_once():
    config = clinic()
    course = booked(config)
    first = course.sessions[0]
    late = first.booking.start - timedelta(days=1)

    washout, cream = due_reminders(course, first, config, late)

    assert washout.due_at == late and washout.event.due_at == late
    assert cream.due_at == first.booking.start - timedelta(minutes=60)


def test_sessions_not_ahead_or_not_scheduled_get_no_reminders():
    config = clinic()
    course = booked(config)
    first = course.sessions[0]

    assert due_reminders(course, first, config, first.booking.start) == []
    assert due_reminders(course, replace(first, status="released"), config, NOW) == []
    assert len(due_reminders(course, first, config, NOW)) == 2
