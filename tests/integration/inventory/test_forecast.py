"""The stock forecast through the real inventory service: a request is answered with a StockForecast per
ingredient and a StockShortageForecast when booked sessions will fall short; a request for an ingredient
inventory does not stock is dead-lettered with its reason and answered by nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime

from clinic.polling import eventually
from services.inventory.app import create_service
from shared.clock import ManualClock
from shared.contracts.inventory import IngredientShortage, IngredientsReserved, StockForecast, StockForecastRequested, StockShortageForecast
from tests.integration.inventory.stockroom import NOW, Stockroom, handled, stocked


def header(record, name: str) -> str:
    return dict(record.headers)[name].decode()


async def test_a_forecast_request_is_answered_with_the_booked_demand_and_a_shortage_warning(settings, bus, run_id):
    room = Stockroom(run_id)
    await bus.publish(room.received("biotin", room.lot("BIO-F"), 12, date(2026, 12, 31)))
    async with create_service(settings, ManualClock(NOW)) as service:
        await stocked(settings, 1)
        await bus.publish(room.scheduled(1, {"biotin": 5.0}, at=datetime(2026, 3, 4, 9, tzinfo=UTC)))
        await bus.wait_for(IngredientsReserved, lambda d: d.session_id == room.session(1))
        await bus.publish(room.scheduled(2, {"biotin": 10.0}, at=datetime(2026, 3, 18, 9, tzinfo=UTC)))
        await bus.wait_for(IngredientShortage, lambda d: d.session_id == room.session(2))
        request = StockForecastRequested(request_id=f"fcr_{run_id}", ingredient="biotin", weeks=4, requested_at=NOW)
        await handled(service, await bus.publish(request))
        [forecast] = await bus.wait_for(StockForecast, lambda d: d.request_id == request.request_id)
        [warning] = await bus.wait_for(StockShortageForecast, lambda d: d.request_id == request.request_id)

    data = forecast.data
    assert forecast.key == "biotin" and data.answers == 1 and data.usable_now == 12
    assert [(w.week_starting.isoformat(), w.sessions, w.demand, w.shortfall) for w in data.weeks] == [
        ("2026-03-02", 1, 5, 0), ("2026-03-09", 0, 0, 0), ("2026-03-16", 1, 10, 3), ("2026-03-23", 0, 0, 0),
    ]
    assert (warning.data.short_from, warning.data.missing, warning.data.reorder_by, warning.data.weeks_ahead) == (date(2026, 3, 18), 3, date(2026, 3, 11), 2)


async def test_a_forecast_for_an_ingredient_not_stocked_is_dead_lettered_with_its_reason_and_answered_by_nothing(settings, bus, run_id):
    async with create_service(settings, ManualClock(NOW)) as service:
        bad = await bus.publish(StockForecastRequested(request_id=f"fcr_BAD{run_id}", ingredient="unobtainium", requested_at=NOW))
        good = await bus.publish(StockForecastRequested(request_id=f"fcr_OK{run_id}", ingredient="zinc", weeks=2, requested_at=NOW))
        await handled(service, good)
        await bus.wait_for(StockForecast, lambda d: d.request_id == f"fcr_OK{run_id}")

        async def dead():
            return [r for r in await bus.dead_letters(StockForecastRequested) if header(r, "ce_id") == bad.id]

        [letter] = await eventually(dead, what="the refused request's dead letter")
        answers = await bus.events(StockForecast, lambda d: d.request_id == f"fcr_BAD{run_id}")

    assert header(letter, "dlq_reason") == "unknown-ingredient" and "unobtainium is not stocked" in header(letter, "dlq_error")
    assert answers == []
