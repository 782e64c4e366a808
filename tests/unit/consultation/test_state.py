"""The patient's file accumulates facts once each, and survives a round trip through a document."""

from __future__ import annotations

from services.consultation.state import ConsultationFile, PatientFile
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import AllergyTestRecorded
from tests.unit.consultation.factories import NOW, PATIENT, consultation, lab, patient, recorded, review


def allergy_test(*results: tuple[str, str]) -> AllergyTestRecorded:
    return AllergyTestRecorded(
        patient_id=PATIENT,
        consultation_id="cons_FACTORY01",
        clinician_id="clin_0042",
        tested_at=NOW,
        recorded_at=NOW,
        results=[{"ingredient": i, "result": r} for i, r in results],
    )


def test_the_same_lab_results_are_kept_once():
    labs = recorded(lab_results=[lab("ferritin", 60.0, "ng/mL")]).lab_results
    assert len(patient().with_labs(labs).with_labs(labs).lab_results) == 1


def test_a_positive_allergy_test_stays_positive_after_a_later_negative_one():
    file = patient().with_allergy_tests(allergy_test(("zinc", "positive"))).with_allergy_tests(allergy_test(("zinc", "negative"), ("biotin", "negative")))
    assert file.positive_tests() == {"zinc"}
    assert file.negative_tests() == {"zinc", "biotin"}


def test_every_suspect_ingredient_of_an_escalation_becomes_a_sensitivity():
    escalation = AdverseEventEscalated(
        escalation_id="esc_FACTORY01",
        patient_id=PATIENT,
        session_id="ses_FACTORY01_01",
        report_id="sfx_FACTORY01",
        symptom="infection",
        grade=3,
        onset_at=NOW,
        escalated_at=NOW,
        reasons=["infection"],
        suspect_ingredients=["biotin", "zinc"],
    )
    file = patient().with_sensitivities(escalation).with_sensitivities(escalation)
    assert [s.ingredient for s in file.sensitivities] == ["biotin", "zinc"]


def test_files_round_trip_through_their_json_documents():
    file = consultation(reviews=(review("review.anticoagulant", plan_adjustments={"sessions": 4}),))
    assert ConsultationFile.model_validate(file.model_dump(mode="json")) == file
    pat = patient(open_consultations=("cons_FACTORY02",)).with_allergy_tests(allergy_test(("zinc", "positive")))
    assert PatientFile.model_validate(pat.model_dump(mode="json")) == pat


def test_the_open_list_gains_an_undecided_consultation_and_loses_a_decided_one():
    waiting = consultation(recorded(consultation_id="cons_FACTORY03"), status="deferred")
    decided = consultation(status="approved")
    file = patient(open_consultations=("cons_FACTORY01", "cons_FACTORY02")).with_saved([waiting, decided])
    assert file.open_consultations == ("cons_FACTORY02", "cons_FACTORY03")
    assert file.with_saved([waiting]) == file
