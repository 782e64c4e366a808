"""Facts for consultation tests: a patient who passes every rule, changed one field at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.consultation.state import ConsultationFile, PatientFile, Review
from shared.contracts.consultation import ConsultationRecorded

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
PATIENT = "pt_FACTORY01"
CONSULTATION = "cons_FACTORY01"
# The androgenetic alopecia (moderate) cocktail of the default formulary.
AGA_MODERATE = ("hyaluronic_acid", "biotin", "dexpanthenol", "minoxidil", "saw_palmetto", "zinc")
GOOD_LABS = (("ferritin", 80.0, "ng/mL"), ("vitamin_d", 40.0, "ng/mL"), ("zinc", 90.0, "ug/dL"), ("tsh", 1.8, "mIU/L"))
NO_HISTORY = {
    "bleeding_disorder": False,
    "autoimmune_disease": False,
    "history_of_allergies": False,
    "thyroid_disorder": False,
    "hormonal_disorder": False,
    "keloid_tendency": False,
    "immunosuppressed": False,
}


def lab(test: str, value: float, unit: str, measured_at: datetime = NOW) -> dict[str, Any]:
    return {"test": test, "value": value, "unit": unit, "measured_at": measured_at.isoformat()}


def recorded(patient_id: str = PATIENT, consultation_id: str = CONSULTATION, history: dict[str, bool] | None = None, **changes: Any) -> ConsultationRecorded:
    return ConsultationRecorded.model_validate(
        {
            "patient_id": patient_id,
            "consultation_id": consultation_id,
            "clinician_id": "clin_0042",
            "recorded_at": NOW.isoformat(),
            "hair_loss_type": "androgenetic_alopecia",
            "severity": {"scale": "norwood", "value": 3},
            "sex_at_birth": "male",
            "age_years": 38,
            "pregnant": False,
            "breastfeeding": False,
            "scalp_condition": "healthy",
            "medical_history": {**NO_HISTORY, **(history or {})},
            "current_medications": [],
            "known_allergies": [],
            "lab_results": [lab(*row) for row in GOOD_LABS],
            "goals": ["regrowth"],
            "concurrent_treatments": ["finasteride"],
            "previously_received_ingredients": list(AGA_MODERATE),
            "expectations_discussed": True,
            "consent_given": True,
            **changes,
        }
    )


def consultation(facts: ConsultationRecorded | None = None, reviews: tuple[Review, ...] = (), **changes: Any) -> ConsultationFile:
    facts = facts or recorded()
    return ConsultationFile(consultation_id=facts.consultation_id, patient_id=facts.patient_id, facts=facts, reviews=reviews, **changes)


def patient(**changes: Any) -> PatientFile:
    return PatientFile(patient_id=PATIENT, **changes)


def review(*rule_ids: str, decision: str = "clear", clinician: str = "clin_0077", at: datetime = NOW, reason: str = "clinical_judgement", **changes: Any) -> Review:
    return Review(clinician_id=clinician, reviewed_at=at, decision=decision, rule_ids=rule_ids, reason=reason, **changes)
