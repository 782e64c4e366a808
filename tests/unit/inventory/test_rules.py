"""Reorder crossings, expiry warnings, refused deliveries, configuration."""

from datetime import date

import pytest
from pydantic import ValidationError

from services.inventory.config import Ingredient, InventoryConfig
from services.inventory.domain import Lot, LotMeta, Refused, check_receipt, expiring_soon, reorder_signal, session_day
from shared.contracts.plan import Unit

TODAY = date(2026, 3, 10)
BIOTIN = Ingredient(code="biotin", unit=Unit.MG, reorder_point=50)


def meta(**changes) -> LotMeta:
    values = {"lot_number": "BIO-2026-0311", "ingredient": "biotin", "unit": "mg", "expires_on": date(2026, 11, 30)} | changes
    return LotMeta(**values)


@pytest.mark.parametrize(
    ("available", "armed", "signal"),
    [(51, True, None), (50, True, "low"), (10, True, "low"), (10, False, None), (50, False, None), (50.5, False, "rearm"), (80, True, None)],
)
def test_stock_low_fires_once_per_downward_crossing_of_the_reorder_point(available, armed, signal):
    assert reorder_signal(available, 50, armed) == signal


@pytest.mark.parametrize(("expires_on", "remaining", "soon"), [
    (date(2026, 4, 9), 5, True),    # 30 days left: inside the window
    (date(2026, 4, 10), 5, False),  # 31 days left
    (TODAY, 5, True),               # last usable day
    (date(2026, 3, 9), 5, False),   # already expired: not "soon"
    (date(2026, 3, 20), 0, False),  # nothing left to warn about
])
def test_a_lot_is_expiring_soon_inside_its_warning_window_with_stock_left(expires_on, remaining, soon):
    assert expiring_soon(expires_on, TODAY, 30, remaining) is soon


def test_a_sound_delivery_is_accepted():
    check_receipt(meta(), 10, BIOTIN, None, TODAY)
    check_receipt(meta(expires_on=TODAY), 10, BIOTIN, None, TODAY)


@pytest.mark.parametrize(
    ("lot", "quantity", "ingredient", "existing", "reason"),
    [
        (meta(ingredient="unobtainium"), 10, None, None, "unknown-ingredient"),
        (meta(unit="ml"), 10, BIOTIN, None, "unit-mismatch"),
        (meta(), 0, BIOTIN, None, "quantity-not-positive"),
        (meta(), -3, BIOTIN, None, "quantity-not-positive"),
        (meta(expires_on=date(2026, 3, 9)), 10, BIOTIN, None, "expired-on-receipt"),
        (meta(), 10, BIOTIN, Lot("BIO-2026-0311", "biotin", "mg", date(2027, 1, 1)), "lot-conflict"),
        (meta(), 10, BIOTIN, Lot("BIO-2026-0311", "biotin", "mg", date(2026, 11, 30), withdrawn=True), "lot-withdrawn"),
    ],
)
def test_a_delivery_that_cannot_be_taken_in_is_refused_with_a_reason(lot, quantity, ingredient, existing, reason):
    with pytest.raises(Refused) as refused:
        check_receipt(lot, quantity, ingredient, existing, TODAY)

    assert refused.value.reason == reason


def test_the_session_day_is_the_utc_date_of_its_start():
    from datetime import datetime, timedelta, timezone

    assert session_day(datetime(2026, 3, 16, 0, 30, tzinfo=timezone(timedelta(hours=2)))) == date(2026, 3, 15)


def test_the_configuration_names_each_ingredient_once_with_a_positive_reorder_point():
    assert InventoryConfig().ingredient("minoxidil").unit == Unit.MG
    with pytest.raises(ValidationError):
        InventoryConfig(ingredients=(BIOTIN, BIOTIN))
    with pytest.raises(ValidationError):
        Ingredient(code="biotin", unit=Unit.MG, reorder_point=0)
