"""The chaos run's reconciliation (bench/reconcile.py) on synthetic events: it must see a missing and a
duplicated effect, and tell at-least-once repeats (same id) from business duplicates (new id)."""

from __future__ import annotations

import pytest

from bench.reconcile import Seen, reconcile

pytestmark = pytest.mark.unit

PATIENT = "pt_CHAOS1"


def journey(sessions: int = 2, *, completed: bool = False, side_effect: bool = False) -> list[Seen]:
    """Every event of one complete journey (ids derived from what they are about)."""
    events = [
        Seen("ConsultationRecorded", "in-1", {"patient_id": PATIENT, "consultation_id": "cons_1"}),
        Seen("ConsultationApproved", "dec-1", {"patient_id": PATIENT, "consultation_id": "cons_1", "course_id": "crs_1", "plan": {"sessions": sessions}}),
    ]
    for n in range(1, sessions + 1):
        session = {"patient_id": PATIENT, "course_id": "crs_1", "session_id": f"ses_{n}"}
        events.append(Seen("SessionScheduled", f"book-{n}", {**session, "sequence": n}))
        events.append(Seen("IngredientsReserved", f"res-{n}", {**session, "allocations": [{"ingredient": "biotin"}, {"ingredient": "zinc"}]}))
        if completed:
            events.append(Seen("SessionCompleted", f"done-{n}", session))
            events.append(Seen("StockConsumed", f"used-{n}", session))
            events.append(Seen("AftercareInstructionsIssued", f"care-{n}", session))
    if completed:
        events.append(Seen("TreatmentCourseCompleted", "course-1", {"patient_id": PATIENT, "course_id": "crs_1"}))
    if side_effect:
        events.append(Seen("SideEffectReported", "sfx-1", {"patient_id": PATIENT, "report_id": "sfx_1", "session_id": "ses_1"}))
        events.append(Seen("AdverseEventEscalated", "esc-1", {"patient_id": PATIENT, "report_id": "sfx_1", "session_id": "ses_1"}))
    return events


def test_a_complete_journey_with_repeated_deliveries_is_clean() -> None:
    events = journey(completed=True, side_effect=True)
    report = reconcile(events + events[1:4], dead_letters=["handler-error"])  # the same ids again: at-least-once

    assert (report.journeys, report.complete, report.stuck) == (1, 1, [])
    assert not report.lost and not report.duplicated and report.conflicting == 0
    assert report.repeats == 3
    assert (report.sessions, report.completed_sessions, report.side_effects) == (2, 2, 1)
    assert report.dead_letters == {"handler-error": 1}
    assert report.ok


def test_a_missing_reservation_is_lost_and_the_journey_stuck() -> None:
    events = [e for e in journey() if e.id != "res-2"]

    report = reconcile(events)

    assert report.lost == {"reservation": 1}
    assert report.stuck == [PATIENT] and report.complete == 0
    assert not report.ok


def test_a_second_reservation_and_a_second_booking_under_new_ids_are_duplicates() -> None:
    events = journey()
    twice = next(e for e in events if e.id == "res-1")
    booked = next(e for e in events if e.id == "book-2")
    events += [Seen("IngredientsReserved", "res-1-again", twice.data), Seen("SessionScheduled", "book-2-again", {**booked.data, "session_id": "ses_9"})]

    report = reconcile(events)

    assert report.duplicated == {"reservation": 2, "booking": 1}  # biotin and zinc of ses_1; sequence 2
    assert not report.lost
    assert not report.ok


def test_escalations_decisions_and_consumptions_are_checked_once_each() -> None:
    events = [e for e in journey(completed=True, side_effect=True) if e.id not in ("used-2", "course-1")]
    escalation = next(e for e in events if e.id == "esc-1")
    decision = next(e for e in events if e.id == "dec-1")
    events += [Seen("AdverseEventEscalated", "esc-2", escalation.data), Seen("ConsultationApproved", "dec-2", decision.data)]

    report = reconcile(events)

    assert report.lost == {"consumption": 1, "course-completion": 1}
    assert report.duplicated == {"escalation": 1, "decision": 1}


def test_the_same_id_with_different_content_is_reported() -> None:
    events = journey()
    first = events[2]
    events.append(Seen(first.name, first.id, {**first.data, "sequence": 7}))

    report = reconcile(events)

    assert report.conflicting == 1
    assert not report.ok


def test_a_journey_without_its_input_on_the_topic_counts_as_lost() -> None:
    report = reconcile(journey(), patients=[PATIENT, "pt_NEVER"])

    assert report.lost == {"input": 1}
    assert report.stuck == ["pt_NEVER"] and report.complete == 1
