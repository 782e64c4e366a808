"""Refused deliveries, StockLow once per crossing, LotExpiringSoon once per lot."""

from __future__ import annotations

import json
from datetime import date, timedelta

from clinic.polling import eventually
from services.inventory.app import create_service
from services.inventory.config import Ingredient, InventoryConfig
from shared.clock import ManualClock
from shared.contracts.inventory import IngredientsReserved, LotExpiringSoon, ReservationReleased, StockAccepted, StockLow, StockReceived, StockRefused
from shared.contracts.plan import Unit
from tests.integration.inventory.stockroom import NOW, Stockroom, handled, levels, stocked


def header(record, name: str) -> str:
    return dict(record.headers)[name].decode()


async def test_deliveries_that_cannot_be_taken_in_are_refused_with_a_reason_and_change_nothing(settings, bus, run_id):
    room = Stockroom(run_id)
    bad = [
        room.received("unobtainium", room.lot("UNO"), 10, date(2026, 12, 31)),
        room.received("biotin", room.lot("BIO-ML"), 10, date(2026, 12, 31), unit="ml"),
        room.received("biotin", room.lot("BIO-OLD"), 10, NOW.date() - timedelta(days=1)),
    ]
    async with create_service(settings, ManualClock(NOW)) as service:
        for delivery in bad:
            await bus.publish(delivery)
        negative = room.received("biotin", room.lot("BIO-NEG"), 10, date(2026, 12, 31)).model_dump(mode="json") | {"quantity": -5}
        await bus.send(bus.topic(StockReceived), _json(negative), _headers(run_id), key="biotin")
        good = await bus.publish(room.received("biotin", room.lot("BIO-OK"), 10, date(2026, 12, 31)))
        await handled(service, good)
        refused = await bus.wait_for(StockRefused, count=3)
        [accepted] = await bus.wait_for(StockAccepted)
        dead = await _eventually_dead(bus, 1)

    assert sorted((r.data.lot_number, r.data.reason) for r in refused) == sorted(
        [(room.lot("UNO"), "unknown-ingredient"), (room.lot("BIO-ML"), "unit-mismatch"), (room.lot("BIO-OLD"), "expired-on-receipt")]
    )
    assert {r.data.delivery_id for r in refused} == {d.delivery_id for d in bad}
    assert (accepted.data.lot_number, accepted.data.quantity, accepted.data.on_hand) == (room.lot("BIO-OK"), 10, 10)
    assert [header(r, "dlq_reason") for r in dead] == ["schema-invalid"], "only what cannot be read as a delivery is dead-lettered"
    assert list(await levels(settings)) == [room.lot("BIO-OK")]


async def test_stock_low_is_announced_once_when_bookings_cross_the_reorder_point_and_again_after_a_refill(settings, bus, run_id):
    room = Stockroom(run_id)
    config = InventoryConfig(ingredients=(Ingredient(code="biotin", unit=Unit.MG, reorder_point=10),))
    await bus.publish(room.received("biotin", room.lot("BIO-1"), 20, date(2026, 12, 31)))
    async with create_service(settings, ManualClock(NOW), config) as service:
        await stocked(settings, 1)
        for n in range(4):  # available 20 -> 15 -> 10 (crossed) -> 5 -> 0
            await bus.publish(room.scheduled(n, {"biotin": 5.0}))
            await bus.wait_for(IngredientsReserved, lambda d, n=n: d.session_id == room.session(n))
        await service.run_jobs()
        [low] = await bus.wait_for(StockLow)
        refill = await bus.publish(room.received("biotin", room.lot("BIO-2"), 30, date(2026, 12, 31)))
        await handled(service, refill)  # available 30: above the point, re-armed
        await bus.publish(room.scheduled(9, {"biotin": 25.0}))
        await bus.wait_for(IngredientsReserved, lambda d: d.session_id == room.session(9))
        [_, again] = await bus.wait_for(StockLow, count=2)

    assert (low.data.on_hand, low.data.reserved, low.data.available, low.data.reorder_point) == (20, 10, 10, 10)
    assert low.data.unit == "mg" and low.key == "biotin"
    assert (again.data.on_hand, again.data.available) == (50, 5)
    assert len(await bus.events(StockLow)) == 2


async def test_a_lot_nearing_expiry_is_flagged_once_and_a_cancellation_does_not_unflag_it(settings, bus, run_id):
    room = Stockroom(run_id)
    soon, later = room.lot("MNX-SOON"), room.lot("MNX-LATER")
    clock = ManualClock(NOW)
    await bus.publish(room.received("minoxidil", soon, 40, NOW.date() + timedelta(days=40)))
    await bus.publish(room.received("minoxidil", later, 40, NOW.date() + timedelta(days=200)))
    async with create_service(settings, clock) as service:
        await stocked(settings, 2)
        assert await service.run_jobs() == 0  # 40 days left: outside the 30-day window
        clock.advance(timedelta(days=11))
        await service.run_jobs()
        await service.run_jobs()
        [flagged] = await bus.wait_for(LotExpiringSoon)
        await bus.publish(room.scheduled(1, {"minoxidil": 2.0}, at=clock.now() + timedelta(days=3)))
        await bus.wait_for(IngredientsReserved)
        await bus.publish(room.cancelled(1))
        await bus.wait_for(ReservationReleased)
        clock.advance(timedelta(days=1))
        await service.run_jobs()

    assert (flagged.data.lot_number, flagged.data.days_left, flagged.data.remaining) == (soon, 29, 40)
    assert flagged.key == soon
    assert len(await bus.events(LotExpiringSoon)) == 1


def _json(data) -> bytes:
    return json.dumps(data).encode()


def _headers(run_id: str) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"), ("ce_id", f"neg-{run_id}".encode()), ("ce_source", b"/clinic/supplier"),
        ("ce_type", StockReceived.event_type.encode()), ("content-type", b"application/json"),
    ]


async def _eventually_dead(bus, count: int):
    async def probe():
        found = await bus.dead_letters(StockReceived)
        return found if len(found) >= count else None

    return await eventually(probe, what=f"{count} dead letters")
