"""Inventory against the real broker and store: receive, reserve, consume, release, reschedule."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.inventory.app import create_service
from shared.clock import ManualClock
from shared.contracts.inventory import IngredientShortage, IngredientsReserved, ReservationReleased, StockConsumed
from tests.integration.inventory.stockroom import NOW, Stockroom, handled, levels, stocked


async def stock_in(bus, room: Stockroom, *deliveries) -> None:
    for delivery in deliveries:
        await bus.publish(delivery)


async def test_a_session_is_reserved_first_expiry_first_and_consumed_with_the_lots_actually_used(settings, bus, run_id):
    room = Stockroom(run_id)
    ha, bio_soon, bio_late, mnx = room.lot("HA"), room.lot("BIO-SOON"), room.lot("BIO-LATE"), room.lot("MNX")
    await stock_in(
        bus, room,
        room.received("hyaluronic_acid", ha, 500, date(2026, 12, 31)),
        room.received("biotin", bio_late, 100, date(2026, 12, 31)),
        room.received("biotin", bio_soon, 3, date(2026, 6, 30)),
        room.received("minoxidil", mnx, 100, date(2026, 9, 30)),
    )
    async with create_service(settings, ManualClock(NOW)) as service:
        await stocked(settings, 4)
        scheduled = await bus.publish(room.scheduled(1))
        [reserved] = await bus.wait_for(IngredientsReserved, lambda d: d.session_id == room.session(1))

        used = [("hyaluronic_acid", ha, 20.0), ("biotin", bio_soon, 3.0), ("biotin", bio_late, 2.5), ("minoxidil", mnx, 2.0)]
        await bus.publish(room.completed(1, used))
        [consumed] = await bus.wait_for(StockConsumed, lambda d: d.session_id == room.session(1))
        await bus.send_event(scheduled)  # a late redelivery of the booking changes nothing
        await handled(service, scheduled)

    taken = sorted((a.ingredient, a.lot_number, a.amount) for a in reserved.data.allocations)
    assert taken == sorted([("hyaluronic_acid", ha, 20.0), ("biotin", bio_soon, 3.0), ("biotin", bio_late, 2.0), ("minoxidil", mnx, 2.0)])
    assert reserved.causation_id == scheduled.id
    lines = {line.lot_number: (line.amount, line.reserved_amount) for line in consumed.data.consumed}
    assert lines[bio_late] == (2.5, 2.0)  # used a little more than reserved: the difference is kept
    stock = await levels(settings)
    assert (stock[bio_late].on_hand, stock[bio_late].reserved) == (97.5, 0)
    assert (stock[bio_soon].on_hand, stock[ha].on_hand, stock[mnx].on_hand) == (0, 480, 98)
    assert len(await bus.events(IngredientsReserved, lambda d: d.session_id == room.session(1))) == 1


async def test_a_session_that_cannot_be_covered_gets_a_shortage_and_holds_nothing(settings, bus, run_id):
    room = Stockroom(run_id)
    await stock_in(
        bus, room,
        room.received("hyaluronic_acid", room.lot("HA"), 500, date(2026, 12, 31)),
        room.received("biotin", room.lot("BIO"), 3, date(2026, 12, 31)),
    )
    async with create_service(settings, ManualClock(NOW)):
        await stocked(settings, 2)
        await bus.publish(room.scheduled(1, {"hyaluronic_acid": 20.0, "biotin": 5.0}))
        [short] = await bus.wait_for(IngredientShortage, lambda d: d.session_id == room.session(1))

    assert short.data.cause == "insufficient_stock"
    assert [(m.ingredient, m.amount, m.unit) for m in short.data.missing] == [("biotin", 2.0, "mg")]
    assert short.data.needed_by == room.scheduled(1).scheduled_for
    assert all(lot.reserved == 0 for lot in (await levels(settings)).values())


async def test_a_lot_that_expires_before_the_session_day_is_not_reserved_and_the_shortage_says_why(settings, bus, run_id):
    room = Stockroom(run_id)
    await bus.publish(room.received("biotin", room.lot("BIO"), 50, date(2026, 3, 15)))
    async with create_service(settings, ManualClock(NOW)):
        await stocked(settings, 1)
        await bus.publish(room.scheduled(1, {"biotin": 5.0}))
        [short] = await bus.wait_for(IngredientShortage, lambda d: d.session_id == room.session(1))

    assert short.data.cause == "expires_before_session"


async def test_a_cancelled_session_gives_its_stock_back_once_even_when_the_cancellation_comes_twice(settings, bus, run_id):
    room = Stockroom(run_id)
    bio = room.lot("BIO")
    await bus.publish(room.received("biotin", bio, 10, date(2026, 12, 31)))
    async with create_service(settings, ManualClock(NOW)) as service:
        await stocked(settings, 1)
        await bus.publish(room.scheduled(1, {"biotin": 6.0}))
        await bus.wait_for(IngredientsReserved, lambda d: d.session_id == room.session(1))
        cancelled = await bus.publish(room.cancelled(1))
        await bus.send_event(cancelled)
        [released] = await bus.wait_for(ReservationReleased, lambda d: d.session_id == room.session(1))
        await handled(service, cancelled)
        # the stock is there again for the next patient
        await bus.publish(room.scheduled(2, {"biotin": 10.0}))
        await bus.wait_for(IngredientsReserved, lambda d: d.session_id == room.session(2))

    assert released.data.cause == "session_cancelled"
    assert [(r.lot_number, r.amount) for r in released.data.released] == [(bio, 6.0)]
    assert len(await bus.events(ReservationReleased)) == 1
    assert (await levels(settings))[bio].reserved == 10


async def test_a_paused_course_releases_every_released_session(settings, bus, run_id):
    room = Stockroom(run_id)
    bio = room.lot("BIO")
    await bus.publish(room.received("biotin", bio, 20, date(2026, 12, 31)))
    async with create_service(settings, ManualClock(NOW)):
        await stocked(settings, 1)
        await bus.publish(room.scheduled(1, {"biotin": 5.0}))
        await bus.wait_for(IngredientsReserved, lambda d: d.session_id == room.session(1))
        await bus.publish(room.paused(1, room.session(1), f"ses_INV{run_id}_unknown"))
        [released] = await bus.wait_for(ReservationReleased, lambda d: d.session_id == room.session(1))

    assert released.data.cause == "course_paused"
    assert (await levels(settings))[bio].reserved == 0


async def test_a_reschedule_past_a_lots_expiry_moves_the_reservation_to_a_lot_still_in_date(settings, bus, run_id):
    room = Stockroom(run_id)
    early, late = room.lot("BIO-EARLY"), room.lot("BIO-LATE")
    await stock_in(
        bus, room,
        room.received("biotin", early, 50, date(2026, 3, 20)),
        room.received("biotin", late, 50, date(2026, 12, 31)),
    )
    async with create_service(settings, ManualClock(NOW)):
        await stocked(settings, 2)
        await bus.publish(room.scheduled(1, {"biotin": 5.0}))
        [first] = await bus.wait_for(IngredientsReserved, lambda d: d.session_id == room.session(1))
        await bus.publish(room.rescheduled(1, datetime(2026, 3, 25, 9, tzinfo=UTC), {"biotin": 5.0}))
        [_, moved] = await bus.wait_for(IngredientsReserved, lambda d: d.session_id == room.session(1), count=2)

    assert [(a.lot_number, a.amount) for a in first.data.allocations] == [(early, 5.0)]
    assert [(a.lot_number, a.amount) for a in moved.data.allocations] == [(late, 5.0)]
    stock = await levels(settings)
    assert (stock[early].reserved, stock[late].reserved) == (0, 5)
