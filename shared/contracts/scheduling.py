"""Scheduling events: sessions from the treatment room and front desk in, the booked course out."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, JsonValue, model_validator

from shared.contracts.base import (
    FEW,
    INGREDIENTS,
    LINES,
    ClinicianId,
    ConsultationId,
    CourseId,
    Day,
    EscalationId,
    EventData,
    PatientId,
    SessionId,
    Timestamp,
)
from shared.contracts.plan import DoseLine, LotLine, PreTreatmentPrecautions, Reason, ValueObject

ChairId = Annotated[
    str, Field(pattern=r"^chair_[A-Za-z0-9]{1,40}$", description="Treatment chair in the clinic calendar.", examples=["chair_02"])
]
FollowUpId = Annotated[
    str, Field(pattern=r"^fu_[A-Za-z0-9_]{6,60}$", description="Follow-up appointment id.", examples=["fu_5D0B7E11_M1"])
]


class RescheduleReason(StrEnum):
    SESSION_CANCELLED = "session_cancelled"
    NO_SHOW = "no_show"
    EARLIER_SESSION_MOVED = "earlier_session_moved"
    INGREDIENT_SHORTAGE = "ingredient_shortage"
    CLINIC_CLOSURE = "clinic_closure"
    COURSE_RESUMED = "course_resumed"


class CourseReviewReason(StrEnum):
    """Why a clinician resumed or closed a paused course (coded: never a clinical note)."""

    REACTION_RESOLVED = "reaction_resolved"
    NOT_TREATMENT_RELATED = "not_treatment_related"
    CLINICAL_JUDGEMENT = "clinical_judgement"
    ADVERSE_EVENT_CONFIRMED = "adverse_event_confirmed"
    INSUFFICIENT_RESPONSE = "insufficient_response"
    PATIENT_DECLINED = "patient_declined"


ShortageCause = Literal["insufficient_stock", "expires_before_session", "lot_recalled", "lot_quarantined"]


class ReminderInstruction(ValueObject):
    action: Literal["avoid_aspirin_nsaids", "avoid_alcohol", "apply_numbing_cream", "anticoagulant_clinician_review"] = Field(
        description="What to do. Prescribed anticoagulants are never stopped by a reminder: they go to the clinician."
    )
    audience: Literal["patient", "clinician"] = Field(description="Who acts on it.")
    at: Timestamp = Field(description="When it starts to apply: start of a washout, time to apply cream, or review deadline.")


_COCKTAIL: list[JsonValue] = [
    {"ingredient": "hyaluronic_acid", "amount": 20.0, "unit": "mg"},
    {"ingredient": "biotin", "amount": 5.0, "unit": "mg"},
    {"ingredient": "minoxidil", "amount": 2.0, "unit": "mg"},
]
_LOTS_USED: list[JsonValue] = [
    {"ingredient": "hyaluronic_acid", "lot_number": "HA-2026-0117", "amount": 20.0, "unit": "mg"},
    {"ingredient": "biotin", "lot_number": "BIO-2026-0311", "amount": 5.0, "unit": "mg"},
    {"ingredient": "minoxidil", "lot_number": "MNX-2026-0208", "amount": 2.0, "unit": "mg"},
]
_BOOKING = {"patient_id": "pt_7Q2M9K4X", "course_id": "crs_5D0B7E11"}


class SessionCompleted(EventData):
    """A treatment session took place, with the lots actually injected.

    Published by the treatment room (FHIR Procedure / MedicationAdministration). Inventory turns the
    reservation into consumption, aftercare issues instructions and schedules check-ins, and scheduling
    closes the session (after the last one: the course is completed and maintenance booked).
    """

    event_type: ClassVar[str] = "clinic.session.completed.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_BOOKING,
                    "session_id": "ses_5D0B7E11_01",
                    "completed_at": "2026-03-16T09:40:00Z",
                    "practitioner_id": "clin_0107",
                    "depth_mm": 2.0,
                    "lots_used": _LOTS_USED,
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    completed_at: Timestamp = Field(description="When the injections were finished.")
    practitioner_id: ClinicianId = Field(description="Practitioner who treated the patient.")
    depth_mm: float = Field(ge=1.0, le=4.0, description="Injection depth actually used, in mm (1-4).")
    lots_used: tuple[LotLine, ...] = Field(min_length=1, max_length=LINES, description="Every ingredient lot injected and how much.")


class SessionCancelled(EventData):
    """A booked session was cancelled by the patient or the clinic.

    Published by the front desk. Inventory releases the session's reservation; scheduling rebooks it
    within the plan's interval (unless `rebook` is false) and moves later sessions only as needed.
    """

    event_type: ClassVar[str] = "clinic.session.cancelled.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_BOOKING,
                    "session_id": "ses_5D0B7E11_03",
                    "scheduled_for": "2026-04-13T09:00:00Z",
                    "cancelled_at": "2026-04-10T08:12:00Z",
                    "cancelled_by": "patient",
                    "reason": "patient_unwell",
                    "rebook": True,
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    scheduled_for: Timestamp = Field(description="Start of the cancelled appointment.")
    cancelled_at: Timestamp = Field(description="When it was cancelled.")
    cancelled_by: Literal["patient", "clinic"] = Field(description="Who cancelled.")
    reason: Literal["patient_request", "patient_unwell", "clinic_closure", "practitioner_unavailable", "other"] = Field(
        description="Coded reason for the cancellation."
    )
    rebook: bool = Field(default=True, description="Whether scheduling should rebook the session.")


class SessionNoShow(EventData):
    """The patient did not come to a booked session.

    Published by the front desk. Inventory releases the reservation; scheduling rebooks the session
    within the plan's interval and moves later sessions only as needed.
    """

    event_type: ClassVar[str] = "clinic.session.no_show_recorded.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_BOOKING,
                    "session_id": "ses_5D0B7E11_04",
                    "scheduled_for": "2026-04-29T09:00:00Z",
                    "recorded_at": "2026-04-29T09:30:00Z",
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    scheduled_for: Timestamp = Field(description="Start of the missed appointment.")
    recorded_at: Timestamp = Field(description="When the no-show was recorded.")


class SessionScheduled(EventData):
    """A session of an approved course was booked, with its cocktail and preparation.

    Published by scheduling for every session once the whole series fits the calendar. Inventory
    reserves the cocktail (FEFO, lots in date on the session day) and answers with IngredientsReserved
    or IngredientShortage.
    """

    event_type: ClassVar[str] = "clinic.session.scheduled.v1"
    producer: ClassVar[str] = "scheduling"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_BOOKING,
                    "session_id": "ses_5D0B7E11_01",
                    "sequence": 1,
                    "of_total": 6,
                    "scheduled_for": "2026-03-16T09:00:00Z",
                    "duration_minutes": 45,
                    "practitioner_id": "clin_0107",
                    "chair_id": "chair_02",
                    "cocktail": _COCKTAIL,
                    "precautions": {
                        "avoid_aspirin_nsaids_days": 7,
                        "avoid_alcohol_days": 2,
                        "numbing_cream_minutes_before": 45,
                        "anticoagulant_clinician_review": False,
                    },
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    sequence: int = Field(ge=1, le=10, description="Position of the session in the course, from 1.")
    of_total: int = Field(ge=1, le=10, description="Number of sessions in the course.")
    scheduled_for: Timestamp = Field(description="Start of the appointment.")
    duration_minutes: int = Field(ge=10, le=240, description="Length of the appointment in minutes.")
    practitioner_id: ClinicianId = Field(description="Practitioner booked for the session.")
    chair_id: ChairId
    cocktail: tuple[DoseLine, ...] = Field(min_length=1, max_length=INGREDIENTS, description="Ingredients and amounts to prepare for this session.")
    precautions: PreTreatmentPrecautions = Field(description="What the patient does before the session.")

    @model_validator(mode="after")
    def _sequence_within_course(self) -> SessionScheduled:
        if self.sequence > self.of_total:
            raise ValueError(f"session {self.sequence} of {self.of_total} is outside the course")
        return self


class SessionRescheduled(EventData):
    """A booked session moved to another time (after a cancellation, a no-show, a shortage, or to
    keep the interval after an earlier session moved).

    Published by scheduling for every session it moves. Inventory re-checks the reservation against
    the new day (a lot may expire first) or reserves again if it was released.
    """

    event_type: ClassVar[str] = "clinic.session.rescheduled.v1"
    producer: ClassVar[str] = "scheduling"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_BOOKING,
                    "session_id": "ses_5D0B7E11_03",
                    "sequence": 3,
                    "previous_start": "2026-04-13T09:00:00Z",
                    "scheduled_for": "2026-04-15T10:30:00Z",
                    "duration_minutes": 45,
                    "practitioner_id": "clin_0107",
                    "chair_id": "chair_01",
                    "reason": "session_cancelled",
                    "caused_by_session_id": None,
                    "cocktail": _COCKTAIL,
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    sequence: int = Field(ge=1, le=10, description="Position of the session in the course, from 1.")
    previous_start: Timestamp = Field(description="Start before the move.")
    scheduled_for: Timestamp = Field(description="New start of the appointment.")
    duration_minutes: int = Field(ge=10, le=240, description="Length of the appointment in minutes.")
    practitioner_id: ClinicianId = Field(description="Practitioner booked for the session.")
    chair_id: ChairId
    reason: RescheduleReason = Field(description="Why the session moved.")
    caused_by_session_id: SessionId | None = Field(
        default=None, description="The earlier session whose move forced this one (reason `earlier_session_moved`)."
    )
    cocktail: tuple[DoseLine, ...] = Field(min_length=1, max_length=INGREDIENTS, description="Ingredients and amounts to prepare for this session.")


class PreTreatmentReminderDue(EventData):
    """A pre-treatment reminder fell due for an upcoming session.

    Published by scheduling exactly once when its due time passes (also after a restart): `washout`
    days before (avoid aspirin/NSAIDs and alcohol; anticoagulants go to the clinician) and
    `numbing_cream` shortly before the session. The patient app or the clinician's worklist shows it.
    """

    event_type: ClassVar[str] = "clinic.reminder.pre_treatment_due.v1"
    producer: ClassVar[str] = "scheduling"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_BOOKING,
                    "session_id": "ses_5D0B7E11_01",
                    "kind": "washout",
                    "scheduled_for": "2026-03-16T09:00:00Z",
                    "due_at": "2026-03-09T09:00:00Z",
                    "instructions": [
                        {"action": "avoid_aspirin_nsaids", "audience": "patient", "at": "2026-03-09T09:00:00Z"},
                        {"action": "avoid_alcohol", "audience": "patient", "at": "2026-03-14T09:00:00Z"},
                    ],
                },
                {
                    **_BOOKING,
                    "session_id": "ses_5D0B7E11_01",
                    "kind": "numbing_cream",
                    "scheduled_for": "2026-03-16T09:00:00Z",
                    "due_at": "2026-03-16T08:00:00Z",
                    "instructions": [{"action": "apply_numbing_cream", "audience": "patient", "at": "2026-03-16T08:15:00Z"}],
                },
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    kind: Literal["washout", "numbing_cream"] = Field(description="Which reminder of the session this is.")
    scheduled_for: Timestamp = Field(description="Start of the session it prepares.")
    due_at: Timestamp = Field(description="When the reminder fell due.")
    instructions: tuple[ReminderInstruction, ...] = Field(min_length=1, max_length=LINES, description="What to do, by whom, from when.")


class FollowUpScheduled(EventData):
    """A follow-up appointment outside the treatment series was booked.

    Published by scheduling: a maintenance visit at the plan's maintenance interval after the course,
    or a clinical review after an escalated adverse event. It carries no cocktail and reserves no stock.
    """

    event_type: ClassVar[str] = "clinic.follow_up.scheduled.v1"
    producer: ClassVar[str] = "scheduling"
    subject_field: ClassVar[str | None] = "follow_up_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_BOOKING,
                    "follow_up_id": "fu_5D0B7E11_M1",
                    "kind": "maintenance_visit",
                    "scheduled_for": "2026-08-17T09:00:00Z",
                    "duration_minutes": 30,
                    "practitioner_id": "clin_0042",
                    "escalation_id": None,
                },
                {
                    "patient_id": "pt_6J1W8B3Z",
                    "course_id": "crs_8E2C4A90",
                    "follow_up_id": "fu_8E2C4A90_R1",
                    "kind": "adverse_event_review",
                    "scheduled_for": "2026-04-03T08:30:00Z",
                    "duration_minutes": 30,
                    "practitioner_id": "clin_0042",
                    "escalation_id": "esc_8E2C4A90_02",
                },
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    follow_up_id: FollowUpId
    kind: Literal["maintenance_visit", "adverse_event_review"] = Field(description="What the appointment is for.")
    scheduled_for: Timestamp = Field(description="Start of the appointment.")
    duration_minutes: int = Field(ge=10, le=240, description="Length of the appointment in minutes.")
    practitioner_id: ClinicianId = Field(description="Clinician booked for the appointment.")
    escalation_id: EscalationId | None = Field(default=None, description="The escalation under review (kind `adverse_event_review`).")


class TreatmentPaused(EventData):
    """A course was paused: its future sessions are released until a clinician reviews it.

    Published by scheduling after an escalated adverse event. Inventory releases the reservations of
    the released sessions; the review appointment follows as FollowUpScheduled. After the review the
    clinician's CourseReviewDecided resumes the course (TreatmentResumed) or closes it
    (TreatmentCourseClosed).
    """

    event_type: ClassVar[str] = "clinic.course.paused.v1"
    producer: ClassVar[str] = "scheduling"
    subject_field: ClassVar[str | None] = "course_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt_6J1W8B3Z",
                    "course_id": "crs_8E2C4A90",
                    "paused_at": "2026-04-02T15:31:00Z",
                    "reason": "adverse_event",
                    "escalation_id": "esc_8E2C4A90_02",
                    "released_sessions": ["ses_8E2C4A90_03", "ses_8E2C4A90_04", "ses_8E2C4A90_05"],
                    "review_follow_up_id": "fu_8E2C4A90_R1",
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    paused_at: Timestamp = Field(description="When the course was paused.")
    reason: Literal["adverse_event", "clinician_decision"] = Field(description="Why the course was paused.")
    escalation_id: EscalationId | None = Field(default=None, description="The escalation that paused it (reason `adverse_event`).")
    released_sessions: tuple[SessionId, ...] = Field(default=(), max_length=LINES, description="Future sessions taken off the calendar.")
    review_follow_up_id: FollowUpId | None = Field(default=None, description="The review appointment booked for it.")


class TreatmentCourseCompleted(EventData):
    """The last session of a course was completed.

    Published by scheduling; maintenance visits follow as FollowUpScheduled. Aftercare and reporting
    can close the course's outcome trend.
    """

    event_type: ClassVar[str] = "clinic.course.completed.v1"
    producer: ClassVar[str] = "scheduling"
    subject_field: ClassVar[str | None] = "course_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_BOOKING,
                    "completed_at": "2026-05-25T09:40:00Z",
                    "sessions_planned": 6,
                    "sessions_completed": 6,
                    "last_session_id": "ses_5D0B7E11_06",
                    "maintenance_interval_weeks": 12,
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    completed_at: Timestamp = Field(description="When the last session was completed.")
    sessions_planned: int = Field(ge=3, le=10, description="Sessions in the approved plan.")
    sessions_completed: int = Field(ge=1, le=10, description="Sessions actually completed.")
    last_session_id: SessionId = Field(description="The session that completed the course.")
    maintenance_interval_weeks: int = Field(ge=4, le=52, description="Weeks between the maintenance visits being booked.")


class SchedulingFailed(EventData):
    """An approved plan could not be booked; nothing of the course was booked.

    Published by scheduling when no series fits the calendar within the plan's interval range (or the
    plan cannot be scheduled at all), with coded reasons. The front desk takes it up with the patient.
    """

    event_type: ClassVar[str] = "clinic.course.scheduling_failed.v1"
    producer: ClassVar[str] = "scheduling"
    subject_field: ClassVar[str | None] = "course_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt_2T5K8D1M",
                    "consultation_id": "cons_D77E3B05",
                    "course_id": "crs_9A1F6C22",
                    "failed_at": "2026-03-05T14:00:09Z",
                    "sessions_requested": 8,
                    "searched_from": "2026-03-09",
                    "searched_until": "2026-09-30",
                    "reasons": [{"code": "no_series_fits", "detail": "no 8-session series fits the calendar at 7-28 day intervals"}],
                }
            ]
        }
    )

    patient_id: PatientId
    consultation_id: ConsultationId
    course_id: CourseId
    failed_at: Timestamp = Field(description="When scheduling gave up.")
    sessions_requested: int = Field(ge=0, description="Sessions in the plan that could not be booked.")
    searched_from: Day = Field(description="First day searched.")
    searched_until: Day = Field(description="Last day searched.")
    reasons: tuple[Reason, ...] = Field(min_length=1, max_length=FEW, description="Why no series could be booked.")


class CourseReviewDecided(EventData):
    """A clinician decided, after the review of an escalation, whether a paused course goes on.

    Published by the EHR (the clinician's worklist). Scheduling resumes the course (`resume`: its
    released sessions are booked again and announced as SessionRescheduled, so inventory reserves them
    again) or closes it (`close`: its released sessions are cancelled; inventory already released them
    when the course was paused), and answers with TreatmentResumed or TreatmentCourseClosed. A decision
    about a course that is not paused is refused (dead letter `course-not-paused`), nothing applied.
    """

    event_type: ClassVar[str] = "clinic.course.review_decided.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "course_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt_6J1W8B3Z",
                    "course_id": "crs_8E2C4A90",
                    "decision": "resume",
                    "clinician_id": "clin_0042",
                    "decided_at": "2026-04-03T09:10:00Z",
                    "reason": "reaction_resolved",
                },
                {
                    "patient_id": "pt_6J1W8B3Z",
                    "course_id": "crs_8E2C4A90",
                    "decision": "close",
                    "clinician_id": "clin_0042",
                    "decided_at": "2026-04-03T09:10:00Z",
                    "reason": "adverse_event_confirmed",
                },
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    decision: Literal["resume", "close"] = Field(description="`resume` the course (book its released sessions again) or `close` it.")
    clinician_id: ClinicianId = Field(description="Clinician who decided.")
    decided_at: Timestamp = Field(description="When the decision was signed.")
    reason: CourseReviewReason = Field(description="Why the clinician decided so.")


class TreatmentResumed(EventData):
    """A paused course goes on after a clinician's review: its released sessions were booked again.

    Published by scheduling in answer to CourseReviewDecided (`resume`). Each rebooked session also
    comes as SessionRescheduled (reason `course_resumed`), on which inventory reserves its cocktail
    again; sessions no slot could be found for are listed as unbooked and come with SchedulingFailed.
    """

    event_type: ClassVar[str] = "clinic.course.resumed.v1"
    producer: ClassVar[str] = "scheduling"
    subject_field: ClassVar[str | None] = "course_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt_6J1W8B3Z",
                    "course_id": "crs_8E2C4A90",
                    "resumed_at": "2026-04-03T09:10:02Z",
                    "clinician_id": "clin_0042",
                    "reason": "reaction_resolved",
                    "rebooked_sessions": ["ses_8E2C4A90_03", "ses_8E2C4A90_04", "ses_8E2C4A90_05"],
                    "unbooked_sessions": [],
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    resumed_at: Timestamp = Field(description="When scheduling resumed the course.")
    clinician_id: ClinicianId = Field(description="Clinician who decided to resume.")
    reason: CourseReviewReason = Field(description="Why the clinician resumed it.")
    rebooked_sessions: tuple[SessionId, ...] = Field(default=(), max_length=LINES, description="Released sessions booked again.")
    unbooked_sessions: tuple[SessionId, ...] = Field(default=(), max_length=LINES, description="Released sessions no slot was found for.")


class TreatmentCourseClosed(EventData):
    """A paused course was closed after a clinician's review: its remaining sessions are cancelled.

    Published by scheduling in answer to CourseReviewDecided (`close`). The cancelled sessions were
    released when the course was paused, so inventory holds nothing for them; no maintenance is booked.
    """

    event_type: ClassVar[str] = "clinic.course.closed.v1"
    producer: ClassVar[str] = "scheduling"
    subject_field: ClassVar[str | None] = "course_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt_6J1W8B3Z",
                    "course_id": "crs_8E2C4A90",
                    "closed_at": "2026-04-03T09:10:02Z",
                    "clinician_id": "clin_0042",
                    "reason": "adverse_event_confirmed",
                    "sessions_planned": 5,
                    "sessions_completed": 2,
                    "cancelled_sessions": ["ses_8E2C4A90_03", "ses_8E2C4A90_04", "ses_8E2C4A90_05"],
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    closed_at: Timestamp = Field(description="When scheduling closed the course.")
    clinician_id: ClinicianId = Field(description="Clinician who decided to close it.")
    reason: CourseReviewReason = Field(description="Why the clinician closed it.")
    sessions_planned: int = Field(ge=3, le=10, description="Sessions in the approved plan.")
    sessions_completed: int = Field(ge=0, le=10, description="Sessions completed before it was closed.")
    cancelled_sessions: tuple[SessionId, ...] = Field(default=(), max_length=LINES, description="Sessions that will not take place.")


class SessionCompletionFlagged(EventData):
    """A session was reported completed at a time that does not fit its booking: scheduling applied it
    and flags it for the front desk to check.

    Published by scheduling on SessionCompleted when the completion is earlier than the booked start
    (beyond the clinic's `early_completion_minutes`): the session took place at another time, or the
    report names the wrong session. The completion stands (inventory consumed the lots, aftercare
    issued its instructions); scheduling closes the session and gives its booked slot back.
    """

    event_type: ClassVar[str] = "clinic.session.completion_flagged.v1"
    producer: ClassVar[str] = "scheduling"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_BOOKING,
                    "session_id": "ses_5D0B7E11_02",
                    "flag": "completed_before_start",
                    "scheduled_for": "2026-03-30T09:00:00Z",
                    "completed_at": "2026-03-27T10:40:00Z",
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    flag: Literal["completed_before_start"] = Field(description="What does not fit: `completed_before_start`, finished before its booked start.")
    scheduled_for: Timestamp = Field(description="Booked start of the session.")
    completed_at: Timestamp = Field(description="Completion time the treatment room reported.")


class SessionAtRisk(EventData):
    """A booked session's cocktail is short, but restocking can still make it in time: the session stays.

    Published by scheduling in answer to IngredientShortage when the restock lead time still ends before
    the session (otherwise the session moves, as SessionRescheduled with reason `ingredient_shortage`).
    The front desk and purchasing act on it: order the missing ingredients before `restock_expected_by`.
    """

    event_type: ClassVar[str] = "clinic.session.at_risk.v1"
    producer: ClassVar[str] = "scheduling"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_BOOKING,
                    "session_id": "ses_5D0B7E11_05",
                    "scheduled_for": "2026-05-11T09:00:00Z",
                    "cause": "lot_recalled",
                    "detected_at": "2026-04-20T07:00:03Z",
                    "restock_expected_by": "2026-04-23T07:00:03Z",
                    "missing": [{"ingredient": "biotin", "amount": 5.0, "unit": "mg"}],
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    scheduled_for: Timestamp = Field(description="Start of the session at risk.")
    cause: ShortageCause = Field(description="Why the stock is not there (from the shortage).")
    detected_at: Timestamp = Field(description="When inventory found the shortage.")
    restock_expected_by: Timestamp = Field(description="When restocking can be there (detection plus the clinic's restock lead time).")
    missing: tuple[DoseLine, ...] = Field(min_length=1, max_length=INGREDIENTS, description="What could not be reserved, per ingredient.")


EVENTS = (
    SessionCompleted,
    SessionCancelled,
    SessionNoShow,
    SessionScheduled,
    SessionRescheduled,
    PreTreatmentReminderDue,
    FollowUpScheduled,
    TreatmentPaused,
    TreatmentCourseCompleted,
    SchedulingFailed,
    CourseReviewDecided,
    TreatmentResumed,
    TreatmentCourseClosed,
    SessionAtRisk,
    SessionCompletionFlagged,
)
