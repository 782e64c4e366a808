"""One patient's course for scheduling integration tests: a tiny clinic, the events, and a wait for quiet."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from services.scheduling.config import CalendarConfig, OpeningHours, SchedulingConfig
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import ConsultationApproved
from shared.contracts.scheduling import CourseReviewDecided, SessionCancelled, SessionCompleted, SessionScheduled

START = datetime(2026, 3, 2, 8, tzinfo=UTC)  # a Monday
FIRST_DAY = date(2026, 3, 16)


def tiny_clinic(closes: time = time(10, 30), **changes: Any) -> SchedulingConfig:
    """Weekdays from 09:00 UTC, one chair, one practitioner: easy to fill, easy to reason about."""
    hours = tuple(OpeningHours(weekday=d, opens=time(9), closes=closes) for d in range(5))
    calendar = CalendarConfig(opening_hours=hours, chairs=("chair_01",), practitioners=("clin_0107",))
    return SchedulingConfig(calendar=calendar, **changes)


class Course:
    def __init__(self, run_id: str, tag: str = "A", sessions: int = 4, interval_days: int = 14, **plan: Any) -> None:
        self.patient_id = f"pt_SCH{tag}{run_id}"
        self.course_id = f"crs_SCH{tag}{run_id}"
        self.sessions = sessions
        self.interval_days = interval_days
        self.plan = plan

    def session_id(self, sequence: int) -> str:
        return f"ses_{self.course_id[4:]}_{sequence:02d}"

    def approved(self) -> ConsultationApproved:
        plan = {
            "sessions": self.sessions,
            "interval_days": self.interval_days,
            "maintenance_interval_weeks": 12,
            "earliest_start": FIRST_DAY,
            "depth_mm": 2.0,
            "technique": "gun",
            "pattern": "grid",
            "cocktail": [{"ingredient": "hyaluronic_acid", "amount": 20.0, "unit": "mg"}],
            "precautions": {
                "avoid_aspirin_nsaids_days": 7,
                "avoid_alcohol_days": 2,
                "numbing_cream_minutes_before": 45,
                "anticoagulant_clinician_review": False,
            },
            **self.plan,
        }
        return ConsultationApproved.model_validate(
            {
                "patient_id": self.patient_id,
                "consultation_id": f"cons_{self.course_id[4:]}",
                "course_id": self.course_id,
                "approved_at": START,
                "rule_set_version": "2026.03.1",
                "plan": plan,
                "expectations_discussed": True,
                "consent_given": True,
            }
        )

    def completed(self, session_id: str, scheduled_for: datetime) -> SessionCompleted:
        return SessionCompleted(
            patient_id=self.patient_id,
            course_id=self.course_id,
            session_id=session_id,
            completed_at=scheduled_for + timedelta(minutes=40),
            practitioner_id="clin_0107",
            depth_mm=2.0,
            lots_used=[{"ingredient": "hyaluronic_acid", "lot_number": "HA-2026-0117", "amount": 20.0, "unit": "mg"}],
        )

    def cancelled(self, scheduled: SessionScheduled, at: datetime) -> SessionCancelled:
        return SessionCancelled(
            patient_id=self.patient_id,
            course_id=self.course_id,
            session_id=scheduled.session_id,
            scheduled_for=scheduled.scheduled_for,
            cancelled_at=at,
            cancelled_by="patient",
            reason="patient_unwell",
        )

    def escalated(self, session_id: str, at: datetime) -> AdverseEventEscalated:
        return AdverseEventEscalated(
            escalation_id=f"esc_{self.course_id[4:]}_1",
            patient_id=self.patient_id,
            course_id=self.course_id,
            session_id=session_id,
            report_id=f"sfx_{self.course_id[4:]}_1",
            symptom="allergic_reaction",
            grade=2,
            onset_at=at - timedelta(hours=2),
            escalated_at=at,
            reasons=["allergic_reaction"],
        )

    def review(self, decision: str, at: datetime) -> CourseReviewDecided:
        return CourseReviewDecided(
            patient_id=self.patient_id,
            course_id=self.course_id,
            decision=decision,
            clinician_id="clin_0042",
            decided_at=at,
            reason="reaction_resolved" if decision == "resume" else "adverse_event_confirmed",
        )

    def mine(self, data: Any) -> bool:
        return data.patient_id == self.patient_id


async def booked(bus: Any, course: Course) -> list[SessionScheduled]:
    events = await bus.wait_for(SessionScheduled, course.mine, count=course.sessions)
    return sorted((e.data for e in events), key=lambda d: d.sequence)
