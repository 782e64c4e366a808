"""What the service remembers: one file per consultation and one per patient (plain models, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import (
    AllergyTestRecorded,
    ConsultationRecorded,
    ConsultationReviewed,
    LabResult,
    Medication,
    MedicationCategory,
    MedicationStopped,
    PlanAdjustments,
)
from shared.contracts.plan import ReviewReason

Status = Literal["pending", "deferred", "approved", "rejected"]
FINAL: tuple[Status, ...] = ("approved", "rejected")


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Review(Record):
    clinician_id: str
    reviewed_at: datetime
    decision: Literal["clear", "reject"]
    rule_ids: tuple[str, ...] = ()
    reason: ReviewReason
    plan_adjustments: PlanAdjustments | None = None

    @classmethod
    def of(cls, event: ConsultationReviewed) -> Review:
        return cls.model_validate(event.model_dump(include=set(cls.model_fields)))


class AllergyTest(Record):
    ingredient: str
    result: Literal["positive", "negative", "inconclusive"]
    tested_at: datetime
    consultation_id: str


class Sensitivity(Record):
    ingredient: str
    escalation_id: str
    escalated_at: datetime


class StoppedMedication(Record):
    """A stop the EHR reported after an assessment (MedicationStopped)."""

    category: MedicationCategory
    atc_code: str | None = None
    stopped_on: date
    recorded_at: datetime

    def stops(self, medication: Medication, assessed_at: datetime) -> bool:
        """Whether this stop is news about a medication an assessment recorded as still taken."""
        return (
            medication.stopped_on is None
            and medication.category == self.category
            and (self.atc_code is None or medication.atc_code in (None, self.atc_code))
            and self.recorded_at >= assessed_at
        )


class PatientFile(Record):
    """Facts about the patient that outlive one consultation: labs, allergy tests, sensitivities."""

    patient_id: str
    lab_results: tuple[LabResult, ...] = ()
    allergy_tests: tuple[AllergyTest, ...] = ()
    sensitivities: tuple[Sensitivity, ...] = ()
    stopped_medications: tuple[StoppedMedication, ...] = ()
    open_consultations: tuple[str, ...] = ()
    """Ids of the patient's consultations not decided for good, sorted: what new facts re-screen. Kept
    here so that finding them is a read by ``_id``, never a query over every consultation ever."""

    def with_labs(self, results: tuple[LabResult, ...]) -> PatientFile:
        known = set(self.lab_results)
        return self.model_copy(update={"lab_results": (*self.lab_results, *(r for r in results if r not in known))})

    def with_allergy_tests(self, event: AllergyTestRecorded) -> PatientFile:
        tests = [AllergyTest(**r.model_dump(), tested_at=event.tested_at, consultation_id=event.consultation_id) for r in event.results]
        known = set(self.allergy_tests)
        return self.model_copy(update={"allergy_tests": (*self.allergy_tests, *(t for t in tests if t not in known))})

    def with_sensitivities(self, event: AdverseEventEscalated) -> PatientFile:
        new = [Sensitivity(ingredient=i, escalation_id=event.escalation_id, escalated_at=event.escalated_at) for i in event.suspect_ingredients]
        known = set(self.sensitivities)
        return self.model_copy(update={"sensitivities": (*self.sensitivities, *(s for s in new if s not in known))})

    def with_stop(self, event: MedicationStopped) -> PatientFile:
        stop = StoppedMedication.model_validate(event.model_dump(include=set(StoppedMedication.model_fields)))
        if stop in self.stopped_medications:
            return self
        return self.model_copy(update={"stopped_medications": (*self.stopped_medications, stop)})

    def medications(self, facts: ConsultationRecorded) -> tuple[Medication, ...]:
        """The assessment's medications, with the stops the EHR reported since (the latest stop wins)."""
        updated = []
        for medication in facts.current_medications:
            stops = [s for s in self.stopped_medications if s.stops(medication, facts.recorded_at)]
            if stops:
                latest = max(stops, key=lambda s: (s.recorded_at, s.stopped_on))
                medication = medication.model_copy(update={"stopped_on": latest.stopped_on})
            updated.append(medication)
        return tuple(updated)

    def with_saved(self, files: Iterable[ConsultationFile]) -> PatientFile:
        """The open list after these consultation files are saved."""
        open_ids = set(self.open_consultations)
        for file in files:
            if file.is_open:
                open_ids.add(file.consultation_id)
            else:
                open_ids.discard(file.consultation_id)
        return self.model_copy(update={"open_consultations": tuple(sorted(open_ids))})

    def positive_tests(self) -> set[str]:
        # A positive result stays: a later negative test does not make an allergy safe to ignore.
        return {t.ingredient for t in self.allergy_tests if t.result == "positive"}

    def negative_tests(self) -> set[str]:
        return {t.ingredient for t in self.allergy_tests if t.result == "negative"}

    def sensitive_to(self) -> set[str]:
        return {s.ingredient for s in self.sensitivities}


class ConsultationFile(Record):
    """The recorded assessment, the clinicians' reviews and every decision published for it."""

    consultation_id: str
    patient_id: str
    facts: ConsultationRecorded | None = None
    reviews: tuple[Review, ...] = ()
    status: Status = "pending"
    signature: str | None = None
    """What the last published decision said, to publish a re-screen only when the decision changes."""
    decisions: tuple[dict[str, Any], ...] = ()
    washout_ends: date | None = None
    """The day a deferral that lapses by itself (an anticoagulant's washout) stops applying: the consultation
    is listed under that day (repository ``WASHOUTS``) and re-screened then."""

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL
