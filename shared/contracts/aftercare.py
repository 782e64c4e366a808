"""Aftercare events: reports from the patient app and clinicians in; instructions, check-ins and escalations out."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from shared.contracts.base import (
    FEW,
    INGREDIENTS,
    LINES,
    ClinicianId,
    CourseId,
    EscalationId,
    EventData,
    IngredientCode,
    LotNumber,
    PatientId,
    SessionId,
    Timestamp,
)
from shared.contracts.plan import ValueObject

ReportId = Annotated[
    str, Field(pattern=r"^sfx_[A-Za-z0-9_]{6,60}$", description="Side-effect report id.", examples=["sfx_8E2C4A90_02A"])
]
CheckInId = Annotated[
    str, Field(pattern=r"^chk_[A-Za-z0-9_]{6,60}$", description="Aftercare check-in id.", examples=["chk_5D0B7E11_01_24h"])
]
Grade = Annotated[int, Field(ge=1, le=5, description="CTCAE-style grade: 1 mild, 2 moderate, 3 severe, 4 life-threatening, 5 death.")]


class Symptom(StrEnum):
    PAIN = "pain"
    REDNESS = "redness"
    SWELLING = "swelling"
    BRUISING = "bruising"
    ITCHING = "itching"
    ALLERGIC_REACTION = "allergic_reaction"
    INFECTION = "infection"
    HEADACHE = "headache"
    OTHER = "other"


class AftercareAdvice(StrEnum):
    ICE_PACKS = "ice_packs"
    NO_MAKEUP = "no_makeup"
    NO_SWIMMING = "no_swimming"
    NO_TOUCHING = "no_touching"
    NO_ALCOHOL = "no_alcohol"
    NO_SMOKING = "no_smoking"
    NO_INTENSE_EXERCISE = "no_intense_exercise"
    SUN_PROTECTION = "sun_protection"


class SymptomAnswer(ValueObject):
    symptom: Symptom = Field(description="Symptom the patient reports.")
    grade: Grade
    onset_at: Timestamp = Field(description="When it started.")
    still_present: bool = Field(description="Whether it is still present when answering.")


class AftercareInstruction(ValueObject):
    advice: AftercareAdvice = Field(description="What the patient should do or avoid.")
    until: Timestamp = Field(description="When the advice ends for this session.")


class IngredientLot(ValueObject):
    ingredient: IngredientCode = Field(description="Formulary code of the ingredient.")
    lot_number: LotNumber = Field(description="Lot injected in the session.")


_SESSION = {"patient_id": "pt_7Q2M9K4X", "course_id": "crs_5D0B7E11", "session_id": "ses_5D0B7E11_01"}


class SideEffectReported(EventData):
    """A side effect after a session was reported (patient app, clinician, or a check-in answer).

    Aftercare records it against the session and classifies it; an allergic reaction, an infection,
    grade 3 or above, or a symptom that persists too long is escalated (AdverseEventEscalated).
    """

    event_type: ClassVar[str] = "clinic.side_effect.reported.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "report_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "report_id": "sfx_5D0B7E11_01A",
                    "patient_id": "pt_7Q2M9K4X",
                    "session_id": "ses_5D0B7E11_01",
                    "symptom": "redness",
                    "grade": 1,
                    "onset_at": "2026-03-16T10:00:00Z",
                    "reported_at": "2026-03-17T09:45:00Z",
                    "still_present": False,
                    "reported_by": "check_in",
                    "check_in_id": "chk_5D0B7E11_01_24h",
                },
                {
                    "report_id": "sfx_8E2C4A90_02A",
                    "patient_id": "pt_6J1W8B3Z",
                    "session_id": "ses_8E2C4A90_02",
                    "symptom": "allergic_reaction",
                    "grade": 2,
                    "onset_at": "2026-04-02T14:50:00Z",
                    "reported_at": "2026-04-02T15:30:00Z",
                    "still_present": True,
                    "reported_by": "patient_app",
                    "check_in_id": None,
                },
            ]
        }
    )

    report_id: ReportId
    patient_id: PatientId
    session_id: SessionId = Field(description="The session the side effect follows.")
    symptom: Symptom = Field(description="Coded symptom.")
    grade: Grade
    onset_at: Timestamp = Field(description="When the symptom started (not before the session).")
    reported_at: Timestamp = Field(description="When it was reported.")
    still_present: bool = Field(description="Whether the symptom is still present when reported.")
    reported_by: Literal["patient_app", "clinician", "check_in"] = Field(description="Channel of the report.")
    check_in_id: CheckInId | None = Field(default=None, description="The check-in whose answer raised it (reported_by `check_in`).")


class CheckInAnswered(EventData):
    """The patient answered an aftercare check-in.

    Published by the patient app. Aftercare closes the check-in; every symptom listed becomes a side-effect
    record of the session and is classified like a SideEffectReported.
    """

    event_type: ClassVar[str] = "clinic.check_in.answered.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "check_in_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "check_in_id": "chk_5D0B7E11_01_24h",
                    "patient_id": "pt_7Q2M9K4X",
                    "session_id": "ses_5D0B7E11_01",
                    "answered_at": "2026-03-17T09:45:00Z",
                    "symptoms": [{"symptom": "redness", "grade": 1, "onset_at": "2026-03-16T10:00:00Z", "still_present": False}],
                }
            ]
        }
    )

    check_in_id: CheckInId
    patient_id: PatientId
    session_id: SessionId = Field(description="The session the check-in follows.")
    answered_at: Timestamp = Field(description="When the patient answered.")
    symptoms: tuple[SymptomAnswer, ...] = Field(default=(), max_length=FEW, description="Symptoms reported; empty when the patient is well.")


class OutcomeRecorded(EventData):
    """A clinician recorded treatment outcomes for a course (density, shaft diameter, satisfaction, photos).

    Published by the EHR. Aftercare keeps the trend per course so the clinician can decide whether to continue.
    """

    event_type: ClassVar[str] = "clinic.outcome.recorded.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "course_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt_7Q2M9K4X",
                    "course_id": "crs_5D0B7E11",
                    "session_id": "ses_5D0B7E11_03",
                    "clinician_id": "clin_0042",
                    "measured_at": "2026-04-15T10:20:00Z",
                    "density_per_cm2": 142.0,
                    "shaft_diameter_um": 61.5,
                    "satisfaction": 4,
                    "photo_views": ["vertex", "frontal", "midline_part"],
                    "clinician_decision": "continue",
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId | None = Field(default=None, description="Session at which it was measured, if any.")
    clinician_id: ClinicianId = Field(description="Clinician who measured.")
    measured_at: Timestamp = Field(description="When the measurements were taken.")
    density_per_cm2: float | None = Field(default=None, gt=0, le=1000, description="Hair density, hairs per cm² (trichoscopy).")
    shaft_diameter_um: float | None = Field(default=None, gt=0, le=200, description="Mean hair shaft diameter in micrometres.")
    satisfaction: int | None = Field(default=None, ge=1, le=5, description="Patient satisfaction, 1 (very unhappy) to 5 (very happy).")
    photo_views: tuple[Literal["vertex", "frontal", "midline_part", "left_temporal", "right_temporal", "occipital"], ...] = Field(
        default=(), max_length=FEW, description="Standard photo views taken (the images stay in the EHR)."
    )
    clinician_decision: Literal["continue", "stop", "undecided"] | None = Field(
        default=None, description="Whether the clinician decided to continue the course."
    )

    @model_validator(mode="after")
    def _measures_something(self) -> OutcomeRecorded:
        if self.density_per_cm2 is None and self.shaft_diameter_um is None and self.satisfaction is None and not self.photo_views:
            raise ValueError("an outcome needs at least one measurement")
        return self


class AftercareInstructionsIssued(EventData):
    """Aftercare instructions for a completed session, each with the exact time it ends.

    Published by aftercare after SessionCompleted: the first 24 hours (ice packs, no makeup, no swimming,
    no touching), the first 48 hours (no alcohol, no smoking, no intense exercise) and sun protection,
    plus the check-ins that will fall due. The patient app shows them.
    """

    event_type: ClassVar[str] = "clinic.aftercare.instructions_issued.v1"
    producer: ClassVar[str] = "aftercare"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_SESSION,
                    "session_completed_at": "2026-03-16T09:40:00Z",
                    "issued_at": "2026-03-16T09:40:02Z",
                    "instructions": [
                        {"advice": advice, "until": until}
                        for advice, until in [
                            ("ice_packs", "2026-03-17T09:40:00Z"),
                            ("no_makeup", "2026-03-17T09:40:00Z"),
                            ("no_swimming", "2026-03-17T09:40:00Z"),
                            ("no_touching", "2026-03-17T09:40:00Z"),
                            ("no_alcohol", "2026-03-18T09:40:00Z"),
                            ("no_smoking", "2026-03-18T09:40:00Z"),
                            ("no_intense_exercise", "2026-03-18T09:40:00Z"),
                            ("sun_protection", "2026-03-30T09:40:00Z"),
                        ]
                    ],
                    "check_ins_due_at": ["2026-03-17T09:40:00Z", "2026-03-19T09:40:00Z"],
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    session_completed_at: Timestamp = Field(description="When the session was completed (the windows start here).")
    issued_at: Timestamp = Field(description="When the instructions were issued.")
    instructions: tuple[AftercareInstruction, ...] = Field(min_length=1, max_length=LINES, description="Each instruction with its end time.")
    check_ins_due_at: tuple[Timestamp, ...] = Field(default=(), max_length=FEW, description="When the check-ins for this session fall due.")


class AftercareCheckInDue(EventData):
    """An aftercare check-in fell due (e.g. 24 h and 72 h after a session).

    Published by aftercare exactly once when due, also after a restart. The patient app asks the patient
    and answers with CheckInAnswered.
    """

    event_type: ClassVar[str] = "clinic.check_in.due.v1"
    producer: ClassVar[str] = "aftercare"
    subject_field: ClassVar[str | None] = "check_in_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {**_SESSION, "check_in_id": "chk_5D0B7E11_01_24h", "due_at": "2026-03-17T09:40:00Z", "hours_after_session": 24}
            ]
        }
    )

    check_in_id: CheckInId
    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    due_at: Timestamp = Field(description="When the check-in fell due.")
    hours_after_session: int = Field(ge=1, le=720, description="Hours after the session's completion.")


class AdverseEventEscalated(EventData):
    """A serious side effect was escalated (FHIR AdverseEvent).

    Published by aftercare for an allergic reaction, an infection, grade 3 or above, or a persisting
    symptom; once per report. Scheduling pauses the course and books a review, inventory flags the lots,
    consultation records the suspect ingredients as sensitivities of the patient.
    """

    event_type: ClassVar[str] = "clinic.adverse_event.escalated.v1"
    producer: ClassVar[str] = "aftercare"
    subject_field: ClassVar[str | None] = "escalation_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "escalation_id": "esc_8E2C4A90_02",
                    "patient_id": "pt_6J1W8B3Z",
                    "course_id": "crs_8E2C4A90",
                    "session_id": "ses_8E2C4A90_02",
                    "report_id": "sfx_8E2C4A90_02A",
                    "symptom": "allergic_reaction",
                    "grade": 2,
                    "onset_at": "2026-04-02T14:50:00Z",
                    "escalated_at": "2026-04-02T15:30:01Z",
                    "reasons": ["allergic_reaction"],
                    "suspect_ingredients": ["hyaluronic_acid", "biotin", "minoxidil"],
                    "lots": [
                        {"ingredient": "hyaluronic_acid", "lot_number": "HA-2026-0117"},
                        {"ingredient": "biotin", "lot_number": "BIO-2026-0311"},
                        {"ingredient": "minoxidil", "lot_number": "MNX-2026-0208"},
                    ],
                }
            ]
        }
    )

    escalation_id: EscalationId
    patient_id: PatientId
    course_id: CourseId | None = Field(default=None, description="Course of the session, when known.")
    session_id: SessionId = Field(description="Session the side effect follows.")
    report_id: ReportId
    symptom: Symptom = Field(description="Coded symptom.")
    grade: Grade
    onset_at: Timestamp = Field(description="When the symptom started.")
    escalated_at: Timestamp = Field(description="When it was escalated.")
    reasons: tuple[Literal["allergic_reaction", "infection", "grade_3_or_above", "persisting"], ...] = Field(
        min_length=1, max_length=FEW, description="Which escalation rules it met."
    )
    suspect_ingredients: tuple[IngredientCode, ...] = Field(default=(), max_length=INGREDIENTS, description="Ingredients of the session that may have caused it.")
    lots: tuple[IngredientLot, ...] = Field(default=(), max_length=LINES, description="Lots injected in that session.")


class SideEffectRecorded(EventData):
    """A side-effect report was recorded against its session and classified.

    Published by aftercare once per report it records: a SideEffectReported, or one symptom line of a
    CheckInAnswered (its report id is derived from the check-in and the line). A report that arrived before
    its session's completion is recorded when SessionCompleted arrives (`waited_for_session`). A serious
    report is escalated (`escalation_id`, and an AdverseEventEscalated follows) unless the same symptom of
    the session was already escalated at that grade or higher (`already_escalated`).
    """

    event_type: ClassVar[str] = "clinic.side_effect.recorded.v1"
    producer: ClassVar[str] = "aftercare"
    subject_field: ClassVar[str | None] = "report_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "report_id": "sfx_8E2C4A90_02A",
                    "patient_id": "pt_6J1W8B3Z",
                    "course_id": "crs_8E2C4A90",
                    "session_id": "ses_8E2C4A90_02",
                    "symptom": "allergic_reaction",
                    "grade": 2,
                    "reported_by": "patient_app",
                    "check_in_id": None,
                    "category": "serious",
                    "reasons": ["allergic_reaction"],
                    "escalation_id": "esc_8E2C4A90_02A",
                    "already_escalated": False,
                    "waited_for_session": False,
                    "recorded_at": "2026-04-02T15:30:01Z",
                },
                {
                    "report_id": "sfx_5D0B7E11_01A",
                    "patient_id": "pt_7Q2M9K4X",
                    "course_id": "crs_5D0B7E11",
                    "session_id": "ses_5D0B7E11_01",
                    "symptom": "redness",
                    "grade": 1,
                    "reported_by": "check_in",
                    "check_in_id": "chk_5D0B7E11_01_24h",
                    "category": "expected",
                    "reasons": [],
                    "escalation_id": None,
                    "already_escalated": False,
                    "waited_for_session": False,
                    "recorded_at": "2026-03-17T09:45:01Z",
                },
            ]
        }
    )

    report_id: ReportId
    patient_id: PatientId
    course_id: CourseId = Field(description="Course of the session.")
    session_id: SessionId = Field(description="The session the side effect follows.")
    symptom: Symptom = Field(description="Coded symptom.")
    grade: Grade
    reported_by: Literal["patient_app", "clinician", "check_in"] = Field(description="Channel of the report.")
    check_in_id: CheckInId | None = Field(default=None, description="The check-in whose answer raised it.")
    category: Literal["expected", "unexpected", "serious"] = Field(
        description="`expected` mild reaction (recorded only), `unexpected` below every escalation threshold, or `serious`."
    )
    reasons: tuple[Literal["allergic_reaction", "infection", "grade_3_or_above", "persisting"], ...] = Field(
        default=(), max_length=FEW, description="The escalation rules a serious report met (empty otherwise)."
    )
    escalation_id: EscalationId | None = Field(default=None, description="The escalation this report raised, if any.")
    already_escalated: bool = Field(description="Serious, but the session's same symptom was already escalated at this grade or higher.")
    waited_for_session: bool = Field(description="The report arrived before its session's completion and waited for it.")
    recorded_at: Timestamp = Field(description="When aftercare recorded it.")


EVENTS = (
    SideEffectReported,
    CheckInAnswered,
    OutcomeRecorded,
    AftercareInstructionsIssued,
    AftercareCheckInDue,
    AdverseEventEscalated,
    SideEffectRecorded,
)
