"""Invalid event data is refused at the edge, with a message that says what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.contracts import examples
from shared.contracts.aftercare import SideEffectReported
from shared.contracts.consultation import ConsultationApproved, ConsultationRecorded, LabResult, Severity
from shared.contracts.inventory import StockReceived
from shared.contracts.plan import PreTreatmentPrecautions, TreatmentPlan

pytestmark = pytest.mark.unit

PLAN = examples(ConsultationApproved)[0]["plan"]


def rejection(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return str(caught.value)


def test_a_timestamp_without_timezone_is_rejected() -> None:
    report = {**examples(SideEffectReported)[0], "reported_at": "2026-03-17T09:45:00"}
    message = rejection(SideEffectReported, report)
    assert "reported_at" in message and "timestamp must carry a timezone offset" in message


@pytest.mark.parametrize(("grade", "expected"), [(0, "greater than or equal to 1"), (6, "less than or equal to 5")])
def test_side_effect_grades_outside_1_to_5_are_rejected(grade: int, expected: str) -> None:
    message = rejection(SideEffectReported, {**examples(SideEffectReported)[0], "grade": grade})
    assert "grade" in message and expected in message


@pytest.mark.parametrize("quantity", [0, -5.0])
def test_a_delivery_of_zero_or_negative_stock_is_rejected(quantity: float) -> None:
    message = rejection(StockReceived, {**examples(StockReceived)[0], "quantity": quantity})
    assert "quantity" in message and "greater than 0" in message


@pytest.mark.parametrize(("sessions", "expected"), [(2, "greater than or equal to 3"), (11, "less than or equal to 10")])
def test_a_plan_with_fewer_than_3_or_more_than_10_sessions_is_rejected(sessions: int, expected: str) -> None:
    message = rejection(TreatmentPlan, {**PLAN, "sessions": sessions})
    assert "sessions" in message and expected in message


@pytest.mark.parametrize(("days", "expected"), [(6, "greater than or equal to 7"), (29, "less than or equal to 28")])
def test_an_interval_outside_1_to_4_weeks_is_rejected(days: int, expected: str) -> None:
    message = rejection(TreatmentPlan, {**PLAN, "interval_days": days})
    assert "interval_days" in message and expected in message


@pytest.mark.parametrize(("depth", "expected"), [(0.9, "greater than or equal to 1"), (4.1, "less than or equal to 4")])
def test_an_injection_depth_outside_1_to_4_mm_is_rejected(depth: float, expected: str) -> None:
    message = rejection(TreatmentPlan, {**PLAN, "depth_mm": depth})
    assert "depth_mm" in message and expected in message


def test_plans_at_the_edges_of_every_range_are_accepted() -> None:
    for sessions, days, depth in [(3, 7, 1.0), (10, 28, 4.0)]:
        assert TreatmentPlan.model_validate({**PLAN, "sessions": sessions, "interval_days": days, "depth_mm": depth})


@pytest.mark.parametrize("minutes", [29, 61])
def test_numbing_cream_outside_30_to_60_minutes_is_rejected(minutes: int) -> None:
    precautions = {**PLAN["precautions"], "numbing_cream_minutes_before": minutes}
    assert "numbing_cream_minutes_before" in rejection(PreTreatmentPrecautions, precautions)


@pytest.mark.parametrize("patient_id", ["John Smith", "john.smith@example.com", "pt_short"])
def test_a_patient_id_that_is_not_pseudonymous_is_rejected(patient_id: str) -> None:
    message = rejection(ConsultationRecorded, {**examples(ConsultationRecorded)[0], "patient_id": patient_id})
    assert "patient_id" in message and "should match pattern '^pt_" in message


@pytest.mark.parametrize(
    ("severity", "expected"),
    [({"scale": "ludwig", "value": 4}, "ludwig severity must be between 1 and 3"),
     ({"scale": "norwood", "value": 0}, "norwood severity must be between 1 and 7")],
)
def test_a_severity_outside_its_scale_is_rejected(severity: dict[str, Any], expected: str) -> None:
    assert expected in rejection(Severity, severity)


def test_a_lab_result_in_a_unit_foreign_to_the_test_is_rejected() -> None:
    result = {"test": "tsh", "value": 1.9, "unit": "ng/mL", "measured_at": "2026-02-24T08:10:00Z"}
    assert "tsh is reported in mIU/L, not ng/mL" in rejection(LabResult, result)


def test_an_approval_cannot_carry_an_uncleared_deferral() -> None:
    approval = examples(ConsultationApproved)[0]
    deferral = {"rule_id": "labs.ferritin_required", "outcome": "defer", "detail": "ferritin result required"}
    message = rejection(ConsultationApproved, {**approval, "rules_fired": [deferral]})
    assert "uncleared defer rule (labs.ferritin_required)" in message


def test_an_approval_without_consent_is_rejected() -> None:
    message = rejection(ConsultationApproved, {**examples(ConsultationApproved)[0], "consent_given": False})
    assert "consent_given" in message
