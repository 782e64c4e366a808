"""Consultation events: the clinician's assessment in, the screening decision out."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from shared.contracts.base import FEW, INGREDIENTS, LINES, ClinicianId, ConsultationId, CourseId, Day, EventData, IngredientCode, PatientId, Timestamp
from shared.contracts.plan import (
    Detail,
    ReviewReason,
    RuleId,
    RuleOutcome,
    Treatment,
    TreatmentPlan,
    ValueObject,
    schema_cases,
)

RuleSetVersion = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$", examples=["2026.03.1"])]


class HairLossType(StrEnum):
    ANDROGENETIC_ALOPECIA = "androgenetic_alopecia"
    TELOGEN_EFFLUVIUM = "telogen_effluvium"
    ALOPECIA_AREATA = "alopecia_areata"
    SCARRING_ALOPECIA = "scarring_alopecia"
    HAIR_QUALITY = "hair_quality"
    OTHER = "other"


class ScalpCondition(StrEnum):
    HEALTHY = "healthy"
    DANDRUFF = "dandruff"
    DRYNESS = "dryness"
    EXCESS_OIL = "excess_oil"
    IRRITATION = "irritation"
    DERMATITIS = "dermatitis"
    PSORIASIS = "psoriasis"
    OPEN_WOUND = "open_wound"
    ACTIVE_INFECTION = "active_infection"


class MedicationCategory(StrEnum):
    ANTICOAGULANT_PRESCRIBED = "anticoagulant_prescribed"
    ANTIPLATELET_PRESCRIBED = "antiplatelet_prescribed"
    ASPIRIN = "aspirin"
    NSAID = "nsaid"
    MINOXIDIL_TOPICAL = "minoxidil_topical"
    MINOXIDIL_ORAL = "minoxidil_oral"
    FINASTERIDE = "finasteride"
    DUTASTERIDE = "dutasteride"
    SPIRONOLACTONE = "spironolactone"
    ISOTRETINOIN = "isotretinoin"
    HORMONAL_CONTRACEPTIVE = "hormonal_contraceptive"
    THYROID_HORMONE = "thyroid_hormone"
    IMMUNOSUPPRESSANT = "immunosuppressant"
    SUPPLEMENT = "supplement"
    OTHER = "other"


class LabTest(StrEnum):
    FERRITIN = "ferritin"
    VITAMIN_D = "vitamin_d"
    ZINC = "zinc"
    TSH = "tsh"


LAB_UNITS: dict[str, tuple[str, ...]] = {
    "ferritin": ("ng/mL", "ug/L"),
    "vitamin_d": ("ng/mL", "nmol/L"),
    "zinc": ("ug/dL", "umol/L"),
    "tsh": ("mIU/L",),
}
SEVERITY_RANGES: dict[str, tuple[int, int]] = {"norwood": (1, 7), "ludwig": (1, 3), "salt": (0, 100)}


class Severity(ValueObject):
    model_config = ConfigDict(
        json_schema_extra=schema_cases(
            "scale", {scale: {"value": {"minimum": lo, "maximum": hi}} for scale, (lo, hi) in SEVERITY_RANGES.items()}
        )
    )

    scale: Literal["norwood", "ludwig", "salt"] = Field(
        description="Norwood I-VII (androgenetic alopecia, men), Ludwig I-III (androgenetic alopecia, women) "
        "or SALT score 0-100 (alopecia areata)."
    )
    value: int = Field(ge=0, le=100, description="Stage on the scale: norwood 1-7, ludwig 1-3, salt 0-100.")

    @model_validator(mode="after")
    def _value_fits_scale(self) -> Severity:
        lo, hi = SEVERITY_RANGES[self.scale]
        if not lo <= self.value <= hi:
            raise ValueError(f"{self.scale} severity must be between {lo} and {hi}, got {self.value}")
        return self


class MedicalHistory(ValueObject):
    bleeding_disorder: bool = Field(description="Known bleeding or clotting disorder.")
    autoimmune_disease: bool = Field(description="Autoimmune disease (e.g. lupus, thyroiditis).")
    history_of_allergies: bool = Field(description="Any history of allergic reactions (makes an allergy test required).")
    thyroid_disorder: bool = Field(description="Diagnosed thyroid disorder.")
    hormonal_disorder: bool = Field(description="Diagnosed hormonal imbalance (e.g. PCOS).")
    keloid_tendency: bool = Field(description="Tendency to form keloid scars.")
    immunosuppressed: bool = Field(description="Immunosuppressed by disease or treatment.")


class Medication(ValueObject):
    category: MedicationCategory = Field(description="Category the screening rules use.")
    atc_code: str | None = Field(
        default=None, pattern=r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$", description="WHO ATC code when known.", examples=["B01AC06"]
    )
    stopped_on: Day | None = Field(default=None, description="Last day it was taken; null while still taken.")


class LabResult(ValueObject):
    model_config = ConfigDict(
        json_schema_extra=schema_cases("test", {test: {"unit": {"enum": list(units)}} for test, units in LAB_UNITS.items()})
    )

    test: LabTest = Field(description="Which work-up test.")
    value: float = Field(ge=0, description="Measured value, in `unit`.")
    unit: Literal["ng/mL", "ug/L", "nmol/L", "ug/dL", "umol/L", "mIU/L"] = Field(description="UCUM-style unit of `value`.")
    measured_at: Timestamp = Field(description="When the sample was taken.")

    @model_validator(mode="after")
    def _unit_fits_test(self) -> LabResult:
        if self.unit not in LAB_UNITS[self.test]:
            raise ValueError(f"{self.test} is reported in {' or '.join(LAB_UNITS[self.test])}, not {self.unit}")
        return self


class AllergyTestResult(ValueObject):
    ingredient: IngredientCode = Field(description="Ingredient tested.")
    result: Literal["positive", "negative", "inconclusive"] = Field(description="Outcome of the test for this ingredient.")


class PlanAdjustments(ValueObject):
    sessions: int | None = Field(default=None, ge=3, le=10, description="Number of sessions (3-10) instead of the formulary's.")
    interval_days: int | None = Field(default=None, ge=7, le=28, description="Days between sessions (7-28) instead of the formulary's.")
    depth_mm: float | None = Field(default=None, ge=1.0, le=4.0, description="Injection depth in mm (1-4) instead of the formulary's.")
    maintenance_interval_weeks: int | None = Field(default=None, ge=4, le=52, description="Weeks between maintenance visits.")


class ExcludedIngredient(ValueObject):
    ingredient: IngredientCode = Field(description="Ingredient left out of the cocktail.")
    reason: Literal["known_allergy", "positive_allergy_test", "recorded_sensitivity", "contraindicated"] = Field(
        description="Why it was left out."
    )
    rule_id: RuleId = Field(description="Rule that excluded it.")


class MissingItem(ValueObject):
    requirement: Literal[
        "lab_result", "allergy_test", "washout", "clinician_review", "scalp_condition_resolved", "consent", "expectations_discussion"
    ] = Field(description="What has to happen before the consultation can be approved.")
    rule_id: RuleId = Field(description="Rule that asks for it.")
    lab_test: LabTest | None = Field(default=None, description="The lab result needed (requirement `lab_result`).")
    ingredients: tuple[IngredientCode, ...] = Field(default=(), max_length=INGREDIENTS, description="Ingredients to allergy-test (requirement `allergy_test`).")
    not_before: Day | None = Field(default=None, description="Day the washout ends (requirement `washout`).")
    detail: Detail = Field(description="Fixed explanation from the rule set.")


_PATIENT = "pt_7Q2M9K4X"
_CONSULTATION = "cons_A81F22C9"


class ConsultationRecorded(EventData):
    """A clinician recorded a hair-loss consultation in the EHR.

    Published by the EHR when the assessment is signed. The consultation service screens it against the
    current rule set and answers with ConsultationApproved, ConsultationDeferred or ConsultationRejected.
    Carries codes and flags only: no names, contact details or free-text notes.
    """

    event_type: ClassVar[str] = "clinic.consultation.recorded.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "consultation_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": _PATIENT,
                    "consultation_id": _CONSULTATION,
                    "clinician_id": "clin_0042",
                    "recorded_at": "2026-03-02T10:00:00Z",
                    "hair_loss_type": "androgenetic_alopecia",
                    "severity": {"scale": "norwood", "value": 3},
                    "sex_at_birth": "male",
                    "age_years": 34,
                    "pregnant": False,
                    "breastfeeding": False,
                    "scalp_condition": "healthy",
                    "medical_history": {
                        "bleeding_disorder": False,
                        "autoimmune_disease": False,
                        "history_of_allergies": True,
                        "thyroid_disorder": False,
                        "hormonal_disorder": False,
                        "keloid_tendency": False,
                        "immunosuppressed": False,
                    },
                    "current_medications": [
                        {"category": "aspirin", "atc_code": "B01AC06", "stopped_on": "2026-03-01"},
                        {"category": "finasteride", "atc_code": "D11AX10", "stopped_on": None},
                    ],
                    "known_allergies": ["dexpanthenol"],
                    "lab_results": [
                        {"test": "vitamin_d", "value": 31.0, "unit": "ng/mL", "measured_at": "2026-02-24T08:10:00Z"},
                        {"test": "zinc", "value": 88.0, "unit": "ug/dL", "measured_at": "2026-02-24T08:10:00Z"},
                        {"test": "tsh", "value": 1.9, "unit": "mIU/L", "measured_at": "2026-02-24T08:10:00Z"},
                    ],
                    "goals": ["stop_shedding", "thicker_hair"],
                    "prior_treatments": ["minoxidil_topical"],
                    "concurrent_treatments": ["finasteride"],
                    "previously_received_ingredients": ["hyaluronic_acid", "biotin"],
                    "expectations_discussed": True,
                    "consent_given": True,
                }
            ]
        }
    )

    patient_id: PatientId
    consultation_id: ConsultationId
    clinician_id: ClinicianId = Field(description="Clinician who assessed the patient.")
    recorded_at: Timestamp = Field(description="When the assessment was signed.")
    hair_loss_type: HairLossType = Field(description="Diagnosed type of hair loss.")
    severity: Severity | None = Field(
        default=None, description="Stage on the scale that fits the type; null where no scale applies (e.g. telogen effluvium)."
    )
    sex_at_birth: Literal["female", "male", "other", "unknown"] = Field(description="Selects Norwood (male) or Ludwig (female).")
    age_years: int = Field(ge=0, le=120, description="Age in whole years at the consultation.")
    pregnant: bool = Field(description="Currently pregnant.")
    breastfeeding: bool = Field(description="Currently breastfeeding.")
    scalp_condition: ScalpCondition = Field(description="Most significant finding on the scalp; `healthy` when none.")
    medical_history: MedicalHistory = Field(description="Medical history flags the screening rules use.")
    current_medications: tuple[Medication, ...] = Field(default=(), max_length=LINES, description="Medications taken now or recently (with the day stopped).")
    known_allergies: tuple[IngredientCode, ...] = Field(default=(), max_length=LINES, description="Ingredient or allergen codes the patient is allergic to.")
    lab_results: tuple[LabResult, ...] = Field(default=(), max_length=LINES, description="Work-up results already available.")
    goals: tuple[Literal["stop_shedding", "regrowth", "thicker_hair", "hair_quality", "scalp_health"], ...] = Field(
        default=(), max_length=FEW, description="What the patient wants from the treatment."
    )
    prior_treatments: tuple[Treatment, ...] = Field(default=(), max_length=LINES, description="Hair-loss treatments tried before.")
    concurrent_treatments: tuple[Treatment, ...] = Field(default=(), max_length=LINES, description="Hair-loss treatments that continue alongside.")
    previously_received_ingredients: tuple[IngredientCode, ...] = Field(
        default=(), max_length=LINES, description="Ingredients the patient has had before without reaction (others may need an allergy test)."
    )
    expectations_discussed: bool = Field(description="Realistic expectations were discussed with the patient.")
    consent_given: bool = Field(description="The patient gave informed consent to the treatment.")


class AllergyTestRecorded(EventData):
    """An allergy (patch) test result was recorded for a consultation.

    Published by the EHR. The consultation service re-screens a deferred consultation: a negative result
    clears the requirement; a positive one excludes the ingredient from the cocktail (or rejects when the
    plan cannot do without it) and is kept as a sensitivity of the patient.
    """

    event_type: ClassVar[str] = "clinic.allergy_test.recorded.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "consultation_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": _PATIENT,
                    "consultation_id": _CONSULTATION,
                    "clinician_id": "clin_0042",
                    "tested_at": "2026-03-04T09:30:00Z",
                    "recorded_at": "2026-03-05T09:35:00Z",
                    "results": [{"ingredient": "minoxidil", "result": "negative"}],
                }
            ]
        }
    )

    patient_id: PatientId
    consultation_id: ConsultationId
    clinician_id: ClinicianId = Field(description="Clinician who read the test.")
    tested_at: Timestamp = Field(description="When the test was applied.")
    recorded_at: Timestamp = Field(description="When the result was recorded.")
    results: tuple[AllergyTestResult, ...] = Field(min_length=1, max_length=LINES, description="One result per tested ingredient.")


class LabResultsRecorded(EventData):
    """Lab results for a consultation's work-up arrived (ferritin, vitamin D, zinc, TSH).

    Published by the EHR. The consultation service adds them to the consultation and re-screens a
    deferred one without the EHR resending the assessment.
    """

    event_type: ClassVar[str] = "clinic.lab_results.recorded.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "consultation_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": _PATIENT,
                    "consultation_id": _CONSULTATION,
                    "recorded_at": "2026-03-05T14:00:00Z",
                    "results": [{"test": "ferritin", "value": 64.0, "unit": "ng/mL", "measured_at": "2026-03-04T08:05:00Z"}],
                }
            ]
        }
    )

    patient_id: PatientId
    consultation_id: ConsultationId
    recorded_at: Timestamp = Field(description="When the results were filed.")
    results: tuple[LabResult, ...] = Field(min_length=1, max_length=LINES, description="The new results.")


class ConsultationReviewed(EventData):
    """A clinician reviewed a consultation: cleared review or deferral items, or rejected it.

    Published by the EHR. The consultation service records who cleared which rules and why, applies any
    plan adjustments and re-screens. A review never clears an absolute contraindication.
    """

    event_type: ClassVar[str] = "clinic.consultation.reviewed.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "consultation_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt_9C4R2T7W",
                    "consultation_id": "cons_B42K77Q1",
                    "clinician_id": "clin_0042",
                    "reviewed_at": "2026-03-03T16:20:00Z",
                    "decision": "clear",
                    "rule_ids": ["suitability.alopecia_areata"],
                    "reason": "specialist_clearance",
                    "plan_adjustments": {"sessions": 4, "interval_days": 21},
                }
            ]
        }
    )

    patient_id: PatientId
    consultation_id: ConsultationId
    clinician_id: ClinicianId = Field(description="Clinician who made the decision.")
    reviewed_at: Timestamp = Field(description="When the review was signed.")
    decision: Literal["clear", "reject"] = Field(description="`clear` the listed rules, or `reject` the consultation.")
    rule_ids: tuple[RuleId, ...] = Field(default=(), max_length=LINES, description="Rules the clinician clears (decision `clear`).")
    reason: ReviewReason = Field(description="Why the clinician decided so.")
    plan_adjustments: PlanAdjustments | None = Field(default=None, description="Plan parameters the clinician sets instead of the formulary's.")


class ConsultationApproved(EventData):
    """The consultation passed screening: the patient is approved with a treatment plan and cocktail.

    Published by the consultation service. Scheduling books the whole course (course_id) from the plan;
    the plan lists every rule that fired and the rule-set version, so the decision can be explained.
    """

    event_type: ClassVar[str] = "clinic.consultation.approved.v1"
    producer: ClassVar[str] = "consultation"
    subject_field: ClassVar[str | None] = "consultation_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": _PATIENT,
                    "consultation_id": _CONSULTATION,
                    "course_id": "crs_5D0B7E11",
                    "approved_at": "2026-03-05T14:00:05Z",
                    "rule_set_version": "2026.03.1",
                    "rules_fired": [
                        {"rule_id": "allergy.known_allergen", "outcome": "exclude_ingredient", "detail": "known allergy to a formulary ingredient"},
                        {"rule_id": "meds.washout_in_progress", "outcome": "note", "detail": "first session after the aspirin/NSAID washout"},
                    ],
                    "plan": {
                        "sessions": 6,
                        "interval_days": 14,
                        "maintenance_interval_weeks": 12,
                        "earliest_start": "2026-03-09",
                        "depth_mm": 2.0,
                        "technique": "gun",
                        "pattern": "grid",
                        "cocktail": [
                            {"ingredient": "hyaluronic_acid", "amount": 20.0, "unit": "mg"},
                            {"ingredient": "biotin", "amount": 5.0, "unit": "mg"},
                            {"ingredient": "minoxidil", "amount": 2.0, "unit": "mg"},
                        ],
                        "precautions": {
                            "avoid_aspirin_nsaids_days": 7,
                            "avoid_alcohol_days": 2,
                            "numbing_cream_minutes_before": 45,
                            "anticoagulant_clinician_review": False,
                        },
                        "concurrent_treatments": ["finasteride"],
                    },
                    "excluded_ingredients": [
                        {"ingredient": "dexpanthenol", "reason": "known_allergy", "rule_id": "allergy.known_allergen"}
                    ],
                    "expectations_discussed": True,
                    "consent_given": True,
                }
            ]
        }
    )

    patient_id: PatientId
    consultation_id: ConsultationId
    course_id: CourseId = Field(description="New treatment course this plan starts.")
    approved_at: Timestamp = Field(description="When the decision was made.")
    rule_set_version: RuleSetVersion = Field(description="Version of the screening rule set that decided.")
    rules_fired: tuple[RuleOutcome, ...] = Field(default=(), max_length=LINES, description="Every rule that fired, with its outcome and any override.")
    plan: TreatmentPlan = Field(description="The treatment plan with the customized cocktail.")
    excluded_ingredients: tuple[ExcludedIngredient, ...] = Field(default=(), max_length=INGREDIENTS, description="Ingredients left out of the cocktail, and why.")
    expectations_discussed: Literal[True] = Field(description="Always true: no approval without realistic expectations discussed.")
    consent_given: Literal[True] = Field(description="Always true: no approval without informed consent.")

    @model_validator(mode="after")
    def _nothing_blocking_left(self) -> ConsultationApproved:
        for rule in self.rules_fired:
            if rule.outcome == "reject" or (rule.outcome in ("defer", "review") and rule.cleared_by is None):
                raise ValueError(f"an approval cannot carry an uncleared {rule.outcome} rule ({rule.rule_id})")
        return self


class ConsultationDeferred(EventData):
    """The consultation cannot be approved yet: it lists exactly what is missing.

    Published by the consultation service (missing or out-of-range labs, a required allergy test, a
    washout, an active scalp infection, a clinician's review). Nothing is booked. The consultation is
    screened again when the missing result or review arrives.
    """

    event_type: ClassVar[str] = "clinic.consultation.deferred.v1"
    producer: ClassVar[str] = "consultation"
    subject_field: ClassVar[str | None] = "consultation_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": _PATIENT,
                    "consultation_id": _CONSULTATION,
                    "deferred_at": "2026-03-02T10:00:04Z",
                    "rule_set_version": "2026.03.1",
                    "rules_fired": [
                        {"rule_id": "labs.ferritin_missing", "outcome": "defer", "detail": "ferritin result required"},
                        {"rule_id": "allergy.test_required", "outcome": "defer", "detail": "allergy test required for new ingredients"},
                    ],
                    "missing": [
                        {
                            "requirement": "lab_result",
                            "rule_id": "labs.ferritin_missing",
                            "lab_test": "ferritin",
                            "detail": "ferritin result required",
                        },
                        {
                            "requirement": "allergy_test",
                            "rule_id": "allergy.test_required",
                            "ingredients": ["minoxidil"],
                            "detail": "allergy test required for new ingredients",
                        },
                    ],
                }
            ]
        }
    )

    patient_id: PatientId
    consultation_id: ConsultationId
    deferred_at: Timestamp = Field(description="When the decision was made.")
    rule_set_version: RuleSetVersion = Field(description="Version of the screening rule set that decided.")
    rules_fired: tuple[RuleOutcome, ...] = Field(min_length=1, max_length=LINES, description="Every rule that fired, with its outcome.")
    missing: tuple[MissingItem, ...] = Field(min_length=1, max_length=INGREDIENTS, description="What must arrive or happen before approval.")


class ConsultationRejected(EventData):
    """The patient is not a candidate for this treatment: contraindication or unsuitable hair-loss type.

    Published by the consultation service, with the rules that rejected and referral advice (e.g. a
    dermatologist for scarring alopecia). Nothing is booked; a rejection is final for this consultation.
    """

    event_type: ClassVar[str] = "clinic.consultation.rejected.v1"
    producer: ClassVar[str] = "consultation"
    subject_field: ClassVar[str | None] = "consultation_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt_3H8V1N6R",
                    "consultation_id": "cons_C19D55E2",
                    "rejected_at": "2026-03-02T11:30:02Z",
                    "rule_set_version": "2026.03.1",
                    "rules_fired": [
                        {
                            "rule_id": "suitability.scarring_alopecia",
                            "outcome": "reject",
                            "detail": "scarring alopecia does not respond to mesotherapy",
                        }
                    ],
                    "referral": "dermatologist",
                    "rejected_by": None,
                }
            ]
        }
    )

    patient_id: PatientId
    consultation_id: ConsultationId
    rejected_at: Timestamp = Field(description="When the decision was made.")
    rule_set_version: RuleSetVersion = Field(description="Version of the screening rule set that decided.")
    rules_fired: tuple[RuleOutcome, ...] = Field(min_length=1, max_length=LINES, description="The rules that fired; at least one rejects.")
    referral: Literal["dermatologist", "trichologist", "general_practitioner", "endocrinologist"] | None = Field(
        default=None, description="Who the patient is referred to, if anyone."
    )
    rejected_by: ClinicianId | None = Field(default=None, description="Clinician who rejected on review; null when a rule rejected.")

    @model_validator(mode="after")
    def _says_who_rejected(self) -> ConsultationRejected:
        if self.rejected_by is None and not any(rule.outcome == "reject" for rule in self.rules_fired):
            raise ValueError("a rejection needs a rule that rejects or the clinician who rejected")
        return self


class MedicationStopped(EventData):
    """The patient stopped a medication (the EHR recorded the last day it was taken).

    Published by the EHR. The consultation service records the stop on the patient's file and re-screens
    every open consultation of the patient: a consultation deferred because a medication was still taken
    (an aspirin/NSAID washout, a prescribed anticoagulant) is decided again without the EHR resending the
    assessment. A stop that matches no medication of an open consultation changes nothing.
    """

    event_type: ClassVar[str] = "clinic.medication.stopped.v1"
    producer: ClassVar[str] = "external"
    subject_field: ClassVar[str | None] = "patient_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": _PATIENT,
                    "category": "aspirin",
                    "atc_code": "B01AC06",
                    "stopped_on": "2026-03-03",
                    "recorded_at": "2026-03-03T11:00:00Z",
                }
            ]
        }
    )

    patient_id: PatientId
    category: MedicationCategory = Field(description="Category of the medication stopped (the screening rules' category).")
    atc_code: str | None = Field(
        default=None,
        pattern=r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$",
        description="WHO ATC code when known: then only a medication with this code (or none recorded) is stopped.",
        examples=["B01AC06"],
    )
    stopped_on: Day = Field(description="Last day the medication was taken.")
    recorded_at: Timestamp = Field(description="When the EHR recorded the stop.")


class ConsultationWashoutEnded(EventData):
    """The washout a consultation waited for has ended: the consultation is re-screened.

    Published by the consultation service itself, by its daily washout check, on the day a deferral that
    lapses by itself (a prescribed anticoagulant stopped within the washout, which needs a clinician's
    review only until the washout ends) stops applying, and consumed by the consultation service, which
    re-screens the consultation in the patient's order of events and answers with a new decision, or
    with nothing when the decision does not change (e.g. a review was still needed for another reason).
    """

    event_type: ClassVar[str] = "clinic.consultation.washout_ended.v1"
    producer: ClassVar[str] = "consultation"
    subject_field: ClassVar[str | None] = "consultation_id"
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"patient_id": _PATIENT, "consultation_id": _CONSULTATION, "washout_ended_on": "2026-03-10"}]}
    )

    patient_id: PatientId
    consultation_id: ConsultationId
    washout_ended_on: Day = Field(description="The first day after the washout.")


class ConsultationReviewApplied(EventData):
    """A clinician's review (ConsultationReviewed) was recorded and applied: what it cleared and what followed.

    Published by the consultation service for every review it accepts, also one that changes no decision
    (a review of a consultation not recorded yet, of one already decided for good, or one that leaves a
    deferral as it was). A new decision, if any, follows as its own ConsultationApproved, Deferred or
    Rejected; `result` says which, or `unchanged`.
    """

    event_type: ClassVar[str] = "clinic.consultation.review_applied.v1"
    producer: ClassVar[str] = "consultation"
    subject_field: ClassVar[str | None] = "consultation_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt_9C4R2T7W",
                    "consultation_id": "cons_B42K77Q1",
                    "clinician_id": "clin_0042",
                    "reviewed_at": "2026-03-03T16:20:00Z",
                    "applied_at": "2026-03-03T16:20:02Z",
                    "decision": "clear",
                    "cleared": ["suitability.alopecia_areata"],
                    "not_cleared": [],
                    "plan_adjusted": True,
                    "result": "approved",
                    "status": "approved",
                },
                {
                    "patient_id": _PATIENT,
                    "consultation_id": _CONSULTATION,
                    "clinician_id": "clin_0042",
                    "reviewed_at": "2026-03-03T16:20:00Z",
                    "applied_at": "2026-03-03T16:20:02Z",
                    "decision": "clear",
                    "cleared": ["review.bleeding_disorder"],
                    "not_cleared": ["contra.pregnancy"],
                    "plan_adjusted": False,
                    "result": "unchanged",
                    "status": "rejected",
                },
            ]
        }
    )

    patient_id: PatientId
    consultation_id: ConsultationId
    clinician_id: ClinicianId = Field(description="Clinician who reviewed.")
    reviewed_at: Timestamp = Field(description="When the review was signed.")
    applied_at: Timestamp = Field(description="When the consultation service applied it.")
    decision: Literal["clear", "reject"] = Field(description="The review's decision.")
    cleared: tuple[RuleId, ...] = Field(default=(), max_length=LINES, description="Rules of the review that a clinician may clear (now cleared).")
    not_cleared: tuple[RuleId, ...] = Field(
        default=(), max_length=LINES, description="Rules of the review that no review clears (absolute contraindications, notes): ignored."
    )
    plan_adjusted: bool = Field(description="The review set plan parameters (used by the next approval).")
    result: Literal["approved", "deferred", "rejected", "unchanged"] = Field(
        description="The new decision published after the review, or `unchanged` when none was."
    )
    status: Literal["pending", "deferred", "approved", "rejected"] = Field(
        description="The consultation's status after the review (`pending`: the assessment is not recorded yet)."
    )


EVENTS = (
    ConsultationRecorded,
    AllergyTestRecorded,
    LabResultsRecorded,
    ConsultationReviewed,
    ConsultationApproved,
    ConsultationDeferred,
    ConsultationRejected,
    MedicationStopped,
    ConsultationWashoutEnded,
    ConsultationReviewApplied,
)
