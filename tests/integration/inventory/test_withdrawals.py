"""Recalls and quarantines against the real broker and store: every affected session is accounted for."""

from __future__ import annotations

from datetime import date

from services.inventory.app import create_service
from services.inventory.config import Ingredient, InventoryConfig
from shared.clock import ManualClock
from shared.contracts.inventory import IngredientShortage, IngredientsReserved, LotQuarantined, ReservationReleased, StockConsumed
from shared.contracts.plan import Unit
from tests.integration.inventory.stockroom import NOW, Stockroom, handled, levels, stocked


async def test_a_recalled_lot_moves_its_reservations_and_lists_every_affected_session_and_patient(settings, bus, run_id):
    room = Stockroom(run_id)
    recalled, spare = room.lot("BIO-BAD"), room.lot("BIO-SPARE")
    await bus.publish(room.received("biotin", recalled, 20, date(2026, 6, 30)))
    await bus.publish(room.received("biotin", spare, 5, date(2026, 12, 31)))
    async with create_service(settings, ManualClock(NOW)):
        await stocked(settings, 2)
        for n in (1, 2, 3):  # FEFO: all three take from the lot that expires first
            await bus.publish(room.scheduled(n, {"biotin": 5.0}))
            await bus.wait_for(IngredientsReserved, lambda d, n=n: d.session_id == room.session(n))
        await bus.publish(room.completed(1, [("biotin", recalled, 5.0)]))
        await bus.wait_for(StockConsumed)  # on another partition than the recall: wait, so the order is known
        await bus.publish(room.recalled(recalled, "biotin"))
        [quarantined] = await bus.wait_for(LotQuarantined, lambda d: d.lot_number == recalled)
        [short] = await bus.wait_for(IngredientShortage)
        [released] = await bus.wait_for(ReservationReleased)
        moved = await bus.wait_for(IngredientsReserved, lambda d: d.allocations[0].lot_number == spare)

    affected = {a.session_id: (a.patient_id, a.status) for a in quarantined.data.affected}
    assert affected == {
        room.session(1): (room.patient(1), "administered"),
        room.session(2): (room.patient(2), "reservation_moved"),
        room.session(3): (room.patient(3), "shortage"),
    }
    assert quarantined.data.cause == "recall" and quarantined.data.recall_reason == "sterility_failure"
    assert [m.session_id for m in (d.data for d in moved)] == [room.session(2)]
    assert short.data.session_id == room.session(3) and short.data.cause == "lot_recalled"
    assert [(m.ingredient, m.amount) for m in short.data.missing] == [("biotin", 5.0)]
    assert released.data.cause == "lot_withdrawn" and released.data.session_id == room.session(3)
    stock = await levels(settings)
    assert (stock[recalled].status, stock[recalled].reserved, stock[recalled].available) == ("recalled", 0, 0)
    assert (stock[spare].reserved, stock[spare].available) == (5, 0)


async def test_a_lot_named_in_enough_escalations_is_quarantined_and_no_longer_reserved(settings, bus, run_id):
    room = Stockroom(run_id)
    suspect, other = room.lot("MNX-SUSPECT"), room.lot("MNX-OTHER")
    config = InventoryConfig(ingredients=(Ingredient(code="minoxidil", unit=Unit.MG, reorder_point=1, quarantine_after_escalations=2),))
    await bus.publish(room.received("minoxidil", suspect, 10, date(2026, 6, 30)))
    await bus.publish(room.received("minoxidil", other, 10, date(2026, 12, 31)))
    async with create_service(settings, ManualClock(NOW), config) as service:
        await stocked(settings, 2)
        await bus.publish(room.scheduled(3, {"minoxidil": 2.0}))
        await bus.wait_for(IngredientsReserved, lambda d: d.session_id == room.session(3))
        first = await bus.publish(room.escalated(1, "A", [("minoxidil", suspect)]))
        await handled(service, first)
        assert await bus.events(LotQuarantined) == []  # one escalation flags the lot, it does not quarantine it
        second = await bus.publish(room.escalated(2, "B", [("minoxidil", suspect)]))
        await bus.send_event(second)
        [quarantined] = await bus.wait_for(LotQuarantined)
        [_, moved] = await bus.wait_for(IngredientsReserved, lambda d: d.session_id == room.session(3), count=2)
        await bus.publish(room.scheduled(4, {"minoxidil": 2.0}))
        [later] = await bus.wait_for(IngredientsReserved, lambda d: d.session_id == room.session(4))

    assert quarantined.data.cause == "adverse_events"
    assert set(quarantined.data.escalation_ids) == {f"esc_INV{run_id}_A", f"esc_INV{run_id}_B"}
    assert [(a.session_id, a.status) for a in quarantined.data.affected] == [(room.session(3), "reservation_moved")]
    assert [a.lot_number for a in moved.data.allocations] == [other]
    assert [a.lot_number for a in later.data.allocations] == [other]
    assert len(await bus.events(LotQuarantined)) == 1
    assert (await levels(settings))[suspect].status == "quarantined"


async def test_a_recall_and_a_cancellation_published_together_leave_nothing_held_for_the_cancelled_session(settings, bus, run_id):
    """Issue 16: the recall moves reservations while the cancellation releases them, in one batch and in any
    order; afterwards the cancelled session holds nothing anywhere."""
    room = Stockroom(run_id)
    bad, spare = room.lot("BIO-BAD"), room.lot("BIO-SPARE")
    await bus.publish(room.received("biotin", bad, 50, date(2026, 6, 30)))
    await bus.publish(room.received("biotin", spare, 50, date(2026, 12, 31)))
    async with create_service(settings, ManualClock(NOW)):
        await stocked(settings, 2)
        for n in (1, 2, 3):
            await bus.publish(room.scheduled(n, {"biotin": 5.0}))
            await bus.wait_for(IngredientsReserved, lambda d, n=n: d.session_id == room.session(n))
        await bus.publish(room.cancelled(1))
        await bus.publish(room.recalled(bad, "biotin"))
        await bus.wait_for(ReservationReleased, lambda d: d.session_id == room.session(1) and d.cause == "session_cancelled")
        [quarantined] = await bus.wait_for(LotQuarantined, lambda d: d.lot_number == bad)

    assert {a.session_id for a in quarantined.data.affected} >= {room.session(2), room.session(3)}
    stock = await levels(settings)
    assert (stock[bad].reserved, stock[spare].reserved) == (0, 10), "only sessions 2 and 3 hold stock"
