"""A lot's balance: reservations never exceed what is on hand."""

import pytest

from services.inventory.domain import LotState, consume, receive, release, reserve, withdraw


def test_a_reservation_takes_at_most_what_is_available():
    state = LotState(on_hand=10, reserved=7)

    taken = reserve(state, 5)

    assert taken is not None and taken.amount == 3 and taken.after.reserved == 10 and taken.after.available == 0


def test_nothing_is_reserved_from_an_empty_or_withdrawn_lot():
    assert reserve(LotState(on_hand=10, reserved=10), 1) is None
    assert reserve(LotState(on_hand=10, withdrawn=True), 1) is None


def test_a_release_gives_back_only_what_the_session_holds():
    freed = release(LotState(on_hand=10, reserved=6), held=4, amount=9)

    assert freed is not None and freed.amount == 4 and freed.held_delta == -4 and freed.after.available == 8
    assert release(LotState(on_hand=10, reserved=6), held=0) is None


def test_consumption_ends_the_holding_and_takes_what_was_used():
    used = consume(LotState(on_hand=10, reserved=6), held=5, used=4)

    assert used is not None
    assert (used.after.on_hand, used.after.reserved, used.after.available) == (6, 1, 5)
    assert used.held_delta == -5 and used.shortfall == 0


def test_using_more_than_reserved_takes_from_unreserved_stock_only_and_records_the_rest():
    used = consume(LotState(on_hand=10, reserved=8), held=2, used=6)

    assert used is not None
    assert used.after.on_hand == 6 and used.after.reserved == 6  # another session's 6 stay covered
    assert used.shortfall == 2


def test_a_receipt_must_be_positive_and_adds_to_what_is_on_hand():
    assert receive(LotState(on_hand=1), 2.5).after.on_hand == 3.5
    with pytest.raises(ValueError):
        receive(LotState(), 0)


def test_a_withdrawn_lot_keeps_its_stock_on_hand_but_has_none_available():
    after = withdraw(LotState(on_hand=10, reserved=4)).after

    assert after.on_hand == 10 and after.available == 0


def test_tenths_of_a_milligram_add_up_without_drift():
    state = LotState(on_hand=1.0)
    for _ in range(10):
        movement = reserve(state, 0.1)
        assert movement is not None
        state = movement.after

    assert state.available == 0 and reserve(state, 0.1) is None
