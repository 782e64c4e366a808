from datetime import UTC, datetime

from services.aftercare.side_effects import reports_from_answer
from shared.contracts.aftercare import CheckInAnswered, Symptom

ANSWERED_AT = datetime(2026, 3, 17, 9, 45, tzinfo=UTC)


def answer(*symptoms: dict, check_in_id: str = "chk_UNIT5D0B_01_24h") -> CheckInAnswered:
    return CheckInAnswered(
        check_in_id=check_in_id, patient_id="pt_UNIT7Q2M9K", session_id="ses_UNIT5D0B_01", answered_at=ANSWERED_AT, symptoms=symptoms
    )


def line(symptom: str, grade: int = 1, still_present: bool = True) -> dict:
    return {"symptom": symptom, "grade": grade, "onset_at": "2026-03-16T12:00:00Z", "still_present": still_present}


def test_every_symptom_of_an_answer_becomes_a_report_observed_when_answered():
    reports = reports_from_answer(answer(line("redness"), line("allergic_reaction", 2, False)))
    assert [(r.report_id, r.symptom, r.grade, r.still_present) for r in reports] == [
        ("sfx_UNIT5D0B_01_24h_1", Symptom.REDNESS, 1, True),
        ("sfx_UNIT5D0B_01_24h_2", Symptom.ALLERGIC_REACTION, 2, False),
    ]
    assert {(r.observed_at, r.reported_by, r.check_in_id) for r in reports} == {(ANSWERED_AT, "check_in", "chk_UNIT5D0B_01_24h")}


def test_an_answer_without_symptoms_raises_no_report():
    assert reports_from_answer(answer()) == ()


def test_report_ids_of_a_long_check_in_id_fit_the_contract_and_stay_distinct():
    long_id = "chk_" + "B" * 60
    first, second = reports_from_answer(answer(line("pain"), line("pain"), check_in_id=long_id))
    assert first.report_id != second.report_id
    assert all(r.report_id.startswith("sfx_") and len(r.report_id) - 4 <= 60 for r in (first, second))
