"""A small clinic and an approved plan for scheduling's unit tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from services.scheduling.calendar import Booking, Calendar
from services.scheduling.config import CalendarConfig, OpeningHours, SchedulingConfig
from services.scheduling.domain import Course, book_course
from shared.contracts.consultation import ConsultationApproved

MONDAY = date(2026, 3, 9)
NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)
COURSE = "crs_UNIT0001"
PATIENT = "pt_UNIT0001"


def clinic(**changes: Any) -> SchedulingConfig:
    """Weekdays 09:00-12:00 UTC, one chair, one practitioner, 45-minute sessions on a 15-minute grid."""
    calendar = {
        "opening_hours": tuple(OpeningHours(weekday=d, opens=time(9), closes=time(12)) for d in range(5)),
        "chairs": ("chair_01",),
        "practitioners": ("clin_0107",),
        **changes.pop("calendar", {}),
    }
    return SchedulingConfig(calendar=CalendarConfig(**calendar), **changes)


def approval(sessions: int = 4, interval_days: int = 14, earliest_start: date = MONDAY, **precautions: Any) -> ConsultationApproved:
    return ConsultationApproved.model_validate(
        {
            "patient_id": PATIENT,
            "consultation_id": "cons_UNIT0001",
            "course_id": COURSE,
            "approved_at": NOW,
            "rule_set_version": "2026.03.1",
            "plan": {
                "sessions": sessions,
                "interval_days": interval_days,
                "maintenance_interval_weeks": 12,
                "earliest_start": earliest_start,
                "depth_mm": 2.0,
                "technique": "gun",
                "pattern": "grid",
                "cocktail": [{"ingredient": "biotin", "amount": 5.0, "unit": "mg"}],
                "precautions": {
                    "avoid_aspirin_nsaids_days": 7,
                    "avoid_alcohol_days": 2,
                    "numbing_cream_minutes_before": 45,
                    "anticoagulant_clinician_review": False,
                    **precautions,
                },
            },
            "expectations_discussed": True,
            "consent_given": True,
        }
    )


def booked(config: SchedulingConfig, busy: frozenset[str] = frozenset(), **plan: Any) -> Course:
    decision = book_course(approval(**plan), busy, Calendar(config.calendar), config, NOW)
    assert decision.course.status == "active", decision.events
    return decision.course


def whole_days(calendar: Calendar, *days: date) -> frozenset[str]:
    """Every cell of every resource on these days: the clinic is fully booked then."""
    cells: set[str] = set()
    config = calendar.config
    for day in days:
        for start in calendar.starts(day, config.slot_step_minutes):
            for resource in (*config.chairs, *config.practitioners):
                cells.update(Booking(start, config.slot_step_minutes, resource).cells(calendar.step))
    return frozenset(cells)


def days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(count)]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)
