"""The stock forecast, pure: booked demand per ISO week against the lots' stock, first expiry first, lots
withdrawn or expired left out, the first shortage and the date by which to reorder."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.inventory.config import Ingredient
from services.inventory.domain import LotStock, Need, WeekDemand, demand_changes, horizon, same_need, shortage_forecast, stock_forecast, week_of
from shared.contracts.plan import Unit

TODAY = date(2026, 3, 4)  # a Wednesday: the current ISO week began on Monday 2 March
NOW = datetime(2026, 3, 4, 8, tzinfo=UTC)
BIOTIN = Ingredient(code="biotin", unit=Unit.MG, reorder_point=8, reorder_lead_days=10)
WEEKS = horizon(TODAY, 4)  # 2, 9, 16 and 23 March


def lot(number: str, on_hand: float, expires_on: date, status: str = "available", ingredient: str = "biotin") -> LotStock:
    return LotStock(number, ingredient, "mg", expires_on, status, on_hand, 0.0, on_hand if status == "available" else 0.0)


def demand(*sessions: tuple[str, date, float]) -> list[WeekDemand]:
    """The four weeks' demand with these (session, day, biotin) bookings."""
    weeks = {w: WeekDemand(w) for w in WEEKS}
    for k, (session_id, day, amount) in enumerate(sessions, start=1):
        weeks[week_of(day)] = weeks[week_of(day)].with_slot(k, session_id, Need(day, {"biotin": amount, "zinc": 1.0}))
    return list(weeks.values())


def test_the_horizon_is_iso_weeks_from_the_current_one():
    assert WEEKS == [date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16), date(2026, 3, 23)]
    assert week_of(date(2026, 3, 8)) == date(2026, 3, 2) and week_of(date(2026, 3, 9)) == date(2026, 3, 9)


def test_weeks_covered_by_stock_show_demand_usable_and_balance_and_no_shortage():
    forecast = stock_forecast(BIOTIN, [lot("BIO-A", 30, date(2026, 12, 31))], demand(("s1", date(2026, 3, 5), 5), ("s2", date(2026, 3, 12), 5)), TODAY, NOW)

    assert [(w.week_starting, w.sessions, w.demand, w.usable, w.balance, w.shortfall) for w in forecast.weeks] == [
        (date(2026, 3, 2), 1, 5, 30, 25, 0), (date(2026, 3, 9), 1, 5, 25, 20, 0), (date(2026, 3, 16), 0, 0, 20, 20, 0), (date(2026, 3, 23), 0, 0, 20, 20, 0),
    ]
    assert forecast.usable_now == 30 and forecast.shortage is None and shortage_forecast(forecast) is None
    assert not any(w.below_reorder_point for w in forecast.weeks)


def test_a_lot_expiring_inside_the_horizon_stops_counting_from_its_expiry_and_the_shortage_week_and_reorder_by_follow():
    lots = [lot("BIO-SOON", 20, date(2026, 3, 18)), lot("BIO-LATE", 6, date(2026, 12, 31))]
    booked = demand(("s1", date(2026, 3, 5), 5), ("s2", date(2026, 3, 19), 4), ("s3", date(2026, 3, 24), 4))

    forecast = stock_forecast(BIOTIN, lots, booked, TODAY, NOW, request_id="fcr_UNIT0001", answers=2)

    week1, _, week3, week4 = forecast.weeks
    assert (week1.usable, week1.balance) == (26, 21)
    assert (week3.usable, week3.demand, week3.shortfall) == (21, 4, 0)  # BIO-SOON still counts on Monday 16th ...
    assert (week4.usable, week4.demand, week4.balance, week4.shortfall) == (2, 4, -2, 2)  # ... but not for the 19th's session: BIO-LATE did
    assert week3.below_reorder_point is False and week4.below_reorder_point is True
    shortage = forecast.shortage
    assert shortage is not None
    assert (shortage.short_from, shortage.week_starting, shortage.missing, shortage.weeks_ahead) == (date(2026, 3, 24), date(2026, 3, 23), 2, 2)
    assert (shortage.reorder_lead_days, shortage.reorder_by, shortage.reorder_overdue) == (10, date(2026, 3, 14), False)
    warning = shortage_forecast(forecast)
    assert warning is not None and warning.request_id == "fcr_UNIT0001" and warning.reorder_by == date(2026, 3, 14) and warning.missing == 2
    assert forecast.answers == 2 and forecast.request_id == "fcr_UNIT0001"


def test_a_session_after_a_lots_expiry_in_the_same_week_is_short_although_the_week_balance_is_positive():
    forecast = stock_forecast(BIOTIN, [lot("BIO-A", 20, date(2026, 3, 10))], demand(("s1", date(2026, 3, 12), 5)), TODAY, NOW)

    assert forecast.weeks[1].usable == 20 and forecast.weeks[1].balance == 15 and forecast.weeks[1].shortfall == 5
    assert forecast.shortage is not None and forecast.shortage.short_from == date(2026, 3, 12)


@pytest.mark.parametrize("status", ["quarantined", "recalled", "expired"])
def test_withdrawn_or_expired_lots_are_not_usable_stock(status):
    lots = [lot("BIO-OUT", 100, date(2026, 12, 31), status), lot("BIO-IN", 3, date(2026, 12, 31)), lot("ZN-A", 50, date(2026, 12, 31), ingredient="zinc")]

    forecast = stock_forecast(BIOTIN, lots, demand(("s1", date(2026, 3, 5), 5)), TODAY, NOW)

    assert forecast.usable_now == 3 and forecast.weeks[0].usable == 3 and forecast.weeks[0].shortfall == 2
    assert forecast.shortage is not None and forecast.shortage.short_from == date(2026, 3, 5)


def test_a_reorder_by_date_already_past_is_overdue():
    forecast = stock_forecast(BIOTIN, [], demand(("s1", date(2026, 3, 6), 5)), TODAY, NOW)

    assert forecast.shortage is not None and forecast.shortage.reorder_by == date(2026, 2, 24) and forecast.shortage.reorder_overdue
    assert forecast.shortage.weeks_ahead == 0 and forecast.usable_now == 0


def test_a_sessions_change_touches_the_weeks_it_was_and_is_in():
    before, after = Need(date(2026, 3, 5), {"biotin": 5.0}), Need(date(2026, 3, 19), {"biotin": 5.0})

    assert demand_changes(before, after) == {date(2026, 3, 2): None, date(2026, 3, 16): after}
    assert demand_changes(before, Need(date(2026, 3, 6), {"biotin": 4.0})) == {date(2026, 3, 2): Need(date(2026, 3, 6), {"biotin": 4.0})}
    assert demand_changes(None, None) == {} and demand_changes(before, None) == {date(2026, 3, 2): None}
    assert demand_changes(before, Need(date(2026, 3, 5), {"biotin": 5.0})) == {}, "a move to the same day with the same needs changes nothing"
    assert same_need(None, Need(date(2026, 3, 5), {})) and not same_need(before, after) and same_need(before, Need(date(2026, 3, 5), {"biotin": 5.0000000001}))


def test_a_week_folds_its_slots_the_latest_need_of_each_session_winning():
    week = WeekDemand(date(2026, 3, 2)).with_slot(1, "s1", Need(date(2026, 3, 5), {"biotin": 5.0})).with_slot(2, "s2", Need(date(2026, 3, 3), {"biotin": 2.0}))
    week = week.with_slot(3, "s1", None)

    assert week.upto == 3 and week.of("biotin") == [(date(2026, 3, 3), 2.0)] and week.of("zinc") == []
