"""FEFO allocation, expiry on the session day, splitting across lots, re-checks after a move."""

from datetime import date

from services.inventory.domain import Holding, Lot, allocate, fefo, needs_of, recheck, shortage_cause

DAY = date(2026, 3, 16)


def lot(number: str, expires_on: date, available: float, ingredient: str = "biotin", withdrawn: bool = False) -> Lot:
    return Lot(number, ingredient, "mg", expires_on, available, withdrawn)


def test_the_lot_that_expires_first_is_taken_first():
    later = lot("BIO-LATER", date(2026, 12, 31), 50)
    sooner = lot("BIO-SOONER", date(2026, 6, 30), 50)

    plan = allocate({"biotin": 5}, [later, sooner], DAY)

    assert [(h.lot_number, h.amount) for h in plan.taken] == [("BIO-SOONER", 5)]
    assert plan.complete


def test_a_need_larger_than_the_first_lot_is_split_across_lots_in_expiry_order():
    lots = [lot("BIO-C", date(2026, 9, 1), 10), lot("BIO-A", date(2026, 4, 1), 3), lot("BIO-B", date(2026, 5, 1), 4)]

    plan = allocate({"biotin": 9}, lots, DAY)

    assert [(h.lot_number, h.amount) for h in plan.taken] == [("BIO-A", 3), ("BIO-B", 4), ("BIO-C", 2)]


def test_a_lot_expiring_on_the_session_day_is_still_usable():
    plan = allocate({"biotin": 5}, [lot("BIO-TODAY", DAY, 5)], DAY)

    assert plan.complete


def test_a_lot_expiring_the_day_before_the_session_is_not_used():
    plan = allocate({"biotin": 5}, [lot("BIO-EVE", date(2026, 3, 15), 50), lot("BIO-OK", date(2026, 3, 17), 2)], DAY)

    assert [(h.lot_number, h.amount) for h in plan.taken] == [("BIO-OK", 2)]
    assert plan.missing == {"biotin": 3}


def test_withdrawn_lots_and_other_ingredients_are_never_taken():
    lots = [
        lot("BIO-RECALLED", date(2026, 4, 1), 50, withdrawn=True),
        lot("MNX-1", date(2026, 4, 1), 50, ingredient="minoxidil"),
    ]

    assert fefo(lots, "biotin", DAY) == []
    assert allocate({"biotin": 1}, lots, DAY).missing == {"biotin": 1}


def test_equal_expiry_is_ordered_by_lot_number_so_every_instance_agrees():
    lots = [lot("BIO-B", date(2026, 4, 1), 1), lot("BIO-A", date(2026, 4, 1), 1)]

    assert [x.lot_number for x in fefo(lots, "biotin", DAY)] == ["BIO-A", "BIO-B"]


def test_every_ingredient_short_is_named_with_what_is_missing():
    lots = [lot("BIO-1", date(2026, 4, 1), 2), lot("HA-1", date(2026, 4, 1), 100, ingredient="hyaluronic_acid")]

    plan = allocate({"biotin": 5, "hyaluronic_acid": 20, "minoxidil": 2}, lots, DAY)

    assert plan.missing == {"biotin": 3, "minoxidil": 2}


def test_a_shortage_because_lots_expire_before_the_session_says_so():
    lots = [lot("BIO-SOON", date(2026, 3, 10), 50)]

    assert shortage_cause({"biotin": 5}, lots, DAY, today=date(2026, 3, 1)) == "expires_before_session"
    assert shortage_cause({"biotin": 500}, lots, DAY, today=date(2026, 3, 1)) == "insufficient_stock"


def test_a_cocktail_naming_an_ingredient_twice_needs_the_sum():
    assert needs_of([("biotin", 2.5), ("zinc", 2), ("biotin", 2.5)]) == {"biotin": 5, "zinc": 2}


def test_a_reschedule_keeps_holdings_still_in_date_and_releases_those_expiring_first():
    holdings = [
        Holding("biotin", "BIO-EARLY", "mg", date(2026, 3, 20), 2),
        Holding("biotin", "BIO-LATE", "mg", date(2026, 9, 1), 3),
    ]

    check = recheck({"biotin": 5}, holdings, set(), date(2026, 3, 25))

    assert [(h.lot_number, h.amount) for h in check.keep] == [("BIO-LATE", 3)]
    assert [(h.lot_number, h.amount) for h in check.release] == [("BIO-EARLY", 2)]
    assert check.needs == {"biotin": 2}


def test_a_recheck_releases_withdrawn_lots_excess_and_ingredients_no_longer_in_the_cocktail():
    holdings = [
        Holding("biotin", "BIO-1", "mg", date(2026, 9, 1), 8),
        Holding("zinc", "ZN-1", "mg", date(2026, 9, 1), 2),
        Holding("minoxidil", "MNX-X", "mg", date(2026, 9, 1), 2),
    ]

    check = recheck({"biotin": 5, "minoxidil": 2}, holdings, {"MNX-X"}, DAY)

    assert [(h.lot_number, h.amount) for h in check.keep] == [("BIO-1", 5)]
    assert sorted((h.lot_number, h.amount) for h in check.release) == [("BIO-1", 3), ("MNX-X", 2), ("ZN-1", 2)]
    assert check.needs == {"minoxidil": 2}


def test_an_unchanged_session_needs_nothing_more():
    holdings = [Holding("biotin", "BIO-1", "mg", date(2026, 9, 1), 5)]

    check = recheck({"biotin": 5}, holdings, set(), DAY)

    assert check.needs == {} and check.release == () and len(check.keep) == 1
