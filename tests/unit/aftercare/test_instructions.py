from datetime import timedelta

import pytest

from services.aftercare.config import AftercareConfig, InstructionRule
from services.aftercare.domain import check_in_id, lots_of, plan_aftercare
from shared.contracts.aftercare import AftercareAdvice
from tests.unit.aftercare.factories import COMPLETED_AT, completed

NOW = COMPLETED_AT + timedelta(minutes=3)


def until(plan, advice):
    [instruction] = [i for i in plan.instructions.instructions if i.advice is advice]
    return instruction.until


@pytest.mark.parametrize(
    "advice", [AftercareAdvice.ICE_PACKS, AftercareAdvice.NO_MAKEUP, AftercareAdvice.NO_SWIMMING, AftercareAdvice.NO_TOUCHING]
)
def test_first_day_advice_ends_exactly_24_hours_after_completion(advice):
    assert until(plan_aftercare(completed(), AftercareConfig(), NOW), advice) == COMPLETED_AT + timedelta(hours=24)


@pytest.mark.parametrize("advice", [AftercareAdvice.NO_ALCOHOL, AftercareAdvice.NO_SMOKING, AftercareAdvice.NO_INTENSE_EXERCISE])
def test_lifestyle_advice_ends_exactly_48_hours_after_completion(advice):
    assert until(plan_aftercare(completed(), AftercareConfig(), NOW), advice) == COMPLETED_AT + timedelta(hours=48)


def test_sun_protection_lasts_two_weeks_by_default():
    assert until(plan_aftercare(completed(), AftercareConfig(), NOW), AftercareAdvice.SUN_PROTECTION) == COMPLETED_AT + timedelta(days=14)


def test_every_default_advice_is_issued_once_in_configured_order():
    plan = plan_aftercare(completed(), AftercareConfig(), NOW)
    issued = [i.advice for i in plan.instructions.instructions]
    assert issued == [rule.advice for rule in AftercareConfig().instructions]
    assert sorted(issued) == sorted(AftercareAdvice)


def test_windows_start_at_completion_not_at_issue_time():
    late = COMPLETED_AT + timedelta(hours=5)
    plan = plan_aftercare(completed(), AftercareConfig(), late)
    assert plan.instructions.issued_at == late
    assert until(plan, AftercareAdvice.ICE_PACKS) == COMPLETED_AT + timedelta(hours=24)


def test_a_clinic_can_change_the_advice_and_its_window():
    config = AftercareConfig(instructions=(InstructionRule(advice=AftercareAdvice.NO_ALCOHOL, hours=72),))
    [only] = plan_aftercare(completed(), config, NOW).instructions.instructions
    assert (only.advice, only.until) == (AftercareAdvice.NO_ALCOHOL, COMPLETED_AT + timedelta(hours=72))


def test_check_ins_fall_due_24_and_72_hours_after_completion_by_default():
    plan = plan_aftercare(completed(), AftercareConfig(), NOW)
    assert [(c.hours_after_session, c.due_at) for c in plan.check_ins] == [
        (24, COMPLETED_AT + timedelta(hours=24)),
        (72, COMPLETED_AT + timedelta(hours=72)),
    ]
    assert plan.instructions.check_ins_due_at == tuple(c.due_at for c in plan.check_ins)
    assert [c.check_in_id for c in plan.check_ins] == ["chk_UNIT5D0B_01_24h", "chk_UNIT5D0B_01_72h"]


def test_configured_check_in_hours_are_used_in_order():
    plan = plan_aftercare(completed(), AftercareConfig(check_in_hours=(168, 6)), NOW)
    assert [c.hours_after_session for c in plan.check_ins] == [6, 168]


def test_the_session_is_remembered_with_each_lot_once_and_its_suspect_ingredients():
    lines = [
        {"ingredient": "biotin", "lot_number": "BIO-2026-0311", "amount": 2.0, "unit": "mg"},
        {"ingredient": "minoxidil", "lot_number": "MNX-2026-0208", "amount": 1.0, "unit": "mg"},
        {"ingredient": "biotin", "lot_number": "BIO-2026-0311", "amount": 3.0, "unit": "mg"},
        {"ingredient": "biotin", "lot_number": "BIO-2026-0400", "amount": 1.0, "unit": "mg"},
    ]
    session = plan_aftercare(completed(lots_used=lines), AftercareConfig(), NOW).session
    assert [(lot.ingredient, lot.lot_number) for lot in session.lots] == [
        ("biotin", "BIO-2026-0311"),
        ("minoxidil", "MNX-2026-0208"),
        ("biotin", "BIO-2026-0400"),
    ]
    assert session.suspect_ingredients == ("biotin", "minoxidil")
    assert lots_of([]) == ()


def test_a_check_in_id_of_a_very_long_session_id_still_fits_the_contract():
    long_session = "ses_" + "A" * 60
    identifier = check_in_id(long_session, 24)
    assert identifier.startswith("chk_") and len(identifier) - 4 <= 60
    assert identifier == check_in_id(long_session, 24) != check_in_id(long_session, 72)
