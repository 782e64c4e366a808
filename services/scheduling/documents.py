"""A course as its stored document and back."""

from __future__ import annotations

from typing import Any

from services.scheduling.calendar import Booking
from services.scheduling.domain import Course, FollowUp, Session
from shared.contracts.plan import TreatmentPlan


def course_document(course: Course) -> dict[str, Any]:
    return {
        "patient_id": course.patient_id,
        "consultation_id": course.consultation_id,
        "status": course.status,
        "plan": course.plan.model_dump(mode="json"),
        "sessions": [
            {
                "session_id": s.session_id,
                "sequence": s.sequence,
                "status": s.status,
                "booking": _booking_doc(s.booking),
                "at_risk": s.at_risk,
                "completed_at": s.completed_at,
            }
            for s in course.sessions
        ],
        "follow_ups": [
            {"follow_up_id": f.follow_up_id, "kind": f.kind, "booking": _booking_doc(f.booking), "escalation_id": f.escalation_id}
            for f in course.follow_ups
        ],
        "completed_at": course.completed_at,
        "escalations": list(course.escalations),
    }


def course_from(doc: dict[str, Any] | None) -> Course | None:
    if doc is None:
        return None
    sessions = tuple(
        Session(s["session_id"], s["sequence"], _booking(s.get("booking")), s["status"], s.get("at_risk"), s.get("completed_at"))
        for s in doc["sessions"]
    )
    follow_ups = tuple(
        FollowUp(f["follow_up_id"], f["kind"], _booking(f["booking"]), f.get("escalation_id")) for f in doc.get("follow_ups", [])
    )
    return Course(
        course_id=doc["_id"],
        patient_id=doc["patient_id"],
        consultation_id=doc["consultation_id"],
        plan=TreatmentPlan.model_validate(doc["plan"]),
        status=doc["status"],
        sessions=sessions,
        follow_ups=follow_ups,
        completed_at=doc.get("completed_at"),
        escalations=tuple(doc.get("escalations", [])),
    )


def _booking_doc(booking: Booking | None) -> dict[str, Any] | None:
    if booking is None:
        return None
    return {"start": booking.start, "minutes": booking.minutes, "practitioner_id": booking.practitioner_id, "chair_id": booking.chair_id}


def _booking(doc: dict[str, Any] | None) -> Booking | None:
    return None if doc is None else Booking(doc["start"], doc["minutes"], doc["practitioner_id"], doc.get("chair_id"))
