"""Inventory's handlers in-process (tests/support/unit_of_work.py) over the memory store: reservations FEFO,
consumption, releases, deliveries, recalls and quarantines, shortages and StockLow, and the rejections,
checked in milliseconds. The ledger's races and crashes are the integration tier's (tests/integration/inventory)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from services.inventory.app import create_service
from services.inventory.domain import Need
from services.inventory.handlers import Deps
from shared.clock import ManualClock
from shared.contracts import examples
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.inventory import (
    IngredientShortage,
    IngredientsReserved,
    LotQuarantined,
    LotRecalled,
    LotWithdrawalStep,
    ReservationReleased,
    StockAccepted,
    StockConsumed,
    StockForecast,
    StockForecastRequested,
    StockLow,
    StockReceived,
    StockRefused,
    StockShortageForecast,
)
from shared.contracts.scheduling import SessionCancelled, SessionCompleted, SessionRescheduled, SessionScheduled, TreatmentPaused
from shared.settings import Settings
from tests.support.unit_of_work import Handled, UnitOfWork

NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)
SESSION_AT = datetime(2026, 3, 16, 9, tzinfo=UTC)
SOON, LATER = date(2026, 6, 30), date(2026, 12, 31)
M = TypeVar("M")


async def work() -> UnitOfWork[Deps]:
    return await UnitOfWork.of(create_service(Settings(), ManualClock(NOW)))


def received(lot: str, quantity: float, expires_on: date = LATER, ingredient: str = "biotin", unit: str = "mg") -> StockReceived:
    return StockReceived(
        delivery_id=f"dlv_UNIT{lot.replace('-', '')}", ingredient=ingredient, lot_number=lot, expires_on=expires_on, quantity=quantity, unit=unit,
        received_at=NOW,
    )


def ids(n: int) -> dict[str, str]:
    return {"patient_id": f"pt_UNIT{n:04d}", "course_id": f"crs_UNIT{n:04d}", "session_id": f"ses_UNIT{n:04d}_01"}


def dose(cocktail: dict[str, float], unit: str = "mg") -> list[dict[str, Any]]:
    return [{"ingredient": i, "amount": a, "unit": unit} for i, a in cocktail.items()]


def scheduled(n: int, cocktail: dict[str, float], at: datetime = SESSION_AT, unit: str = "mg") -> SessionScheduled:
    return SessionScheduled.model_validate({**examples(SessionScheduled)[0], **ids(n), "scheduled_for": at, "cocktail": dose(cocktail, unit)})


def rescheduled(n: int, cocktail: dict[str, float], at: datetime) -> SessionRescheduled:
    return SessionRescheduled.model_validate(
        {**examples(SessionRescheduled)[0], **ids(n), "previous_start": SESSION_AT, "scheduled_for": at, "cocktail": dose(cocktail), "reason": "clinic_closure"}
    )


def cancelled(n: int) -> SessionCancelled:
    return SessionCancelled.model_validate({**examples(SessionCancelled)[0], **ids(n), "scheduled_for": SESSION_AT, "cancelled_at": NOW})


def completed(n: int, used: list[tuple[str, str, float]]) -> SessionCompleted:
    return SessionCompleted(
        **ids(n), completed_at=SESSION_AT + timedelta(minutes=40), practitioner_id="clin_0107", depth_mm=2.0,
        lots_used=[{"ingredient": i, "lot_number": lot, "amount": a, "unit": "mg"} for i, lot, a in used],
    )


def recalled(lot: str, ingredient: str = "biotin") -> LotRecalled:
    return LotRecalled(lot_number=lot, ingredient=ingredient, reason_code="sterility_failure", recalled_by="supplier", recalled_at=NOW)


def escalated(n: int, letter: str, lots: list[tuple[str, str]]) -> AdverseEventEscalated:
    return AdverseEventEscalated.model_validate(
        {
            **examples(AdverseEventEscalated)[0], **ids(n), "escalation_id": f"esc_UNIT{n:04d}_{letter}", "report_id": f"sfx_UNIT{n:04d}_{letter}",
            "lots": [{"ingredient": i, "lot_number": lot} for i, lot in lots],
        }
    )


async def everything(uow: UnitOfWork[Deps], data: Any) -> list[Any]:
    """Handle the event and every event of inventory's own it leads to (a withdrawal's steps), in order;
    all the events published on the way."""
    return await steps(uow, await uow.handle(data))


async def steps(uow: UnitOfWork[Deps], handled: Handled) -> list[Any]:
    """The events of one handled event and of the steps it leads to (LotWithdrawalStep), handled in turn."""
    assert handled.rejected is None, handled.rejected
    found: list[Any] = [e.data for e in handled.events]
    queue = [d for d in found if isinstance(d, LotWithdrawalStep)]
    while queue:
        step = await uow.handle(queue.pop(0))
        assert step.rejected is None, step.rejected
        found += [e.data for e in step.events]
        queue += [e.data for e in step.events if isinstance(e.data, LotWithdrawalStep)]
    return found


def of(events: list[Any], model: type[M]) -> list[M]:
    return [e for e in events if isinstance(e, model)]


async def state(uow: UnitOfWork[Deps], lot: str) -> tuple[float, float]:
    found = await uow.deps.repo.state(lot)
    return found.on_hand, found.reserved


# -- StockReceived -----------------------------------------------------------------------------------------


async def test_a_delivery_defines_its_lot_and_puts_the_receipt_on_the_ledger_as_claims():
    uow = await work()

    handled = await uow.handle(received("BIO-A", 100))

    [accepted] = handled.emitted(StockAccepted)
    assert handled.outcome == "received" and len(handled.events) == 1
    assert (accepted.delivery_id, accepted.lot_number, accepted.quantity, accepted.on_hand) == ("dlv_UNITBIOA", "BIO-A", 100, 100)
    assert {(w.collection, w.op) for w in handled.claims} >= {("lots", "insert"), ("ledger", "insert"), ("stock_book", "insert")}
    assert handled.effects.writes == [], "a delivery moves only shared stock: its writes are claims"
    assert await state(uow, "BIO-A") == (100, 0)


async def test_deliveries_that_cannot_be_taken_in_are_refused_with_a_reason_and_nothing_applied():
    uow = await work()
    await uow.handle(received("BIO-A", 100))

    wrong_unit = await uow.handle(received("BIO-B", 100, unit="ml"))
    expired = await uow.handle(received("BIO-C", 100, expires_on=NOW.date() - timedelta(days=1)))
    conflict = await uow.handle(received("BIO-A", 100, expires_on=SOON))
    unknown = await uow.handle(received("UNO-A", 100, ingredient="unobtainium"))

    refusals = [h.emitted(StockRefused) for h in (wrong_unit, expired, conflict, unknown)]
    assert [h.outcome for h in (wrong_unit, expired, conflict, unknown)] == [
        "refused:unit-mismatch", "refused:expired-on-receipt", "refused:lot-conflict", "refused:unknown-ingredient",
    ]
    assert [(r.delivery_id, r.reason) for [r] in refusals] == [
        ("dlv_UNITBIOB", "unit-mismatch"), ("dlv_UNITBIOC", "expired-on-receipt"), ("dlv_UNITBIOA", "lot-conflict"), ("dlv_UNITUNOA", "unknown-ingredient"),
    ]
    assert refusals[0][0].detail == "biotin is counted in mg, not ml"
    assert all(h.claims == [] and h.effects.writes == [] and not h.emitted(StockAccepted) for h in (wrong_unit, expired, conflict, unknown))
    assert await state(uow, "BIO-A") == (100, 0)


# -- SessionScheduled ----------------------------------------------------------------------------------------


async def test_a_booking_reserves_first_expiry_first_out_splitting_across_lots():
    uow = await work()
    await uow.handle(received("BIO-LATER", 50, LATER))
    await uow.handle(received("BIO-SOONER", 3, SOON))

    handled = await uow.handle(scheduled(1, {"biotin": 5.0}))

    [reserved] = handled.emitted(IngredientsReserved)
    assert handled.outcome == "reserved"
    assert [(a.lot_number, a.amount) for a in reserved.allocations] == [("BIO-SOONER", 3.0), ("BIO-LATER", 2.0)]
    assert {w.collection for w in handled.claims} >= {"ledger", "sessions"}, "the round is written ahead, the entries are claims"
    assert [(w.collection, w.id) for w in handled.effects.writes] == [("sessions", "ses_UNIT0001_01")]
    assert (await state(uow, "BIO-SOONER"), await state(uow, "BIO-LATER")) == ((3, 3), (50, 2))


async def test_a_booking_seen_before_is_not_reserved_twice():
    uow = await work()
    await uow.handle(received("BIO-A", 50))
    await uow.handle(scheduled(1, {"biotin": 5.0}))

    again = await uow.handle(scheduled(1, {"biotin": 5.0}))

    assert again.outcome == "already-known" and again.events == [] and again.claims == []
    assert await state(uow, "BIO-A") == (50, 5)


async def test_a_booking_the_stock_cannot_cover_reserves_nothing_and_says_what_is_missing():
    uow = await work()
    await uow.handle(received("BIO-A", 4))
    await uow.handle(received("MNX-A", 50, ingredient="minoxidil"))

    handled = await uow.handle(scheduled(1, {"biotin": 5.0, "minoxidil": 2.0}))

    [short] = handled.emitted(IngredientShortage)
    assert handled.outcome == "shortage" and handled.emitted(IngredientsReserved) == []
    assert short.cause == "insufficient_stock" and [(m.ingredient, m.amount) for m in short.missing] == [("biotin", 1.0)]
    assert (await state(uow, "BIO-A"), await state(uow, "MNX-A")) == ((4, 0), (50, 0)), "all or nothing"


async def test_lots_that_expire_before_the_session_day_are_not_reserved_for_it():
    uow = await work()
    await uow.handle(received("BIO-A", 50, expires_on=date(2026, 3, 10)))

    handled = await uow.handle(scheduled(1, {"biotin": 5.0}))

    [short] = handled.emitted(IngredientShortage)
    assert short.cause == "expires_before_session"


async def test_a_cocktail_in_another_unit_than_the_stock_is_rejected_before_anything_is_written():
    uow = await work()
    await uow.handle(received("BIO-A", 50))
    before = len(uow.db.writes)

    handled = await uow.handle(scheduled(1, {"biotin": 5.0}, unit="ml"))

    assert handled.outcome == "rejected:unit-mismatch" and len(uow.db.writes) == before


async def test_stock_falling_to_the_reorder_point_is_announced_once():
    uow = await work()
    delivery = await uow.handle(received("BIO-A", 54))  # biotin's reorder point is 50

    first = await uow.handle(scheduled(1, {"biotin": 5.0}))
    second = await uow.handle(scheduled(2, {"biotin": 5.0}))

    [low] = first.emitted(StockLow)
    assert delivery.emitted(StockLow) == []
    assert (low.ingredient, low.on_hand, low.reserved, low.available, low.reorder_point) == ("biotin", 54.0, 5.0, 49.0, 50.0)
    assert ("stock_alerts", "insert") in {(w.collection, w.op) for w in first.claims}, "the crossing is a claim"
    assert second.emitted(StockLow) == [], "once per crossing"


# -- SessionRescheduled, SessionCancelled, TreatmentPaused ----------------------------------------------------


async def test_a_session_moved_past_its_lots_expiry_is_moved_to_lots_in_date_and_the_old_ones_released():
    uow = await work()
    await uow.handle(received("BIO-SOON", 50, SOON))
    await uow.handle(received("BIO-LATE", 50, LATER))
    await uow.handle(scheduled(1, {"biotin": 5.0}))

    moved = await uow.handle(rescheduled(1, {"biotin": 5.0}, datetime(2026, 8, 3, 9, tzinfo=UTC)))

    [reserved] = moved.emitted(IngredientsReserved)
    assert [(a.lot_number, a.amount) for a in reserved.allocations] == [("BIO-LATE", 5.0)]
    assert (await state(uow, "BIO-SOON"), await state(uow, "BIO-LATE")) == ((50, 0), (50, 5))


async def test_a_cancellation_releases_what_the_session_held():
    uow = await work()
    await uow.handle(received("BIO-A", 50))
    await uow.handle(scheduled(1, {"biotin": 5.0}))

    handled = await uow.handle(cancelled(1))
    again = await uow.handle(cancelled(1))

    [released] = handled.emitted(ReservationReleased)
    assert handled.outcome == "released" and released.cause == "session_cancelled"
    assert [(a.lot_number, a.amount) for a in released.released] == [("BIO-A", 5.0)]
    assert again.outcome == "nothing-reserved" and again.events == []
    assert await state(uow, "BIO-A") == (50, 0)


async def test_a_paused_course_releases_its_released_sessions():
    uow = await work()
    await uow.handle(received("BIO-A", 50))
    await uow.handle(scheduled(1, {"biotin": 5.0}))

    paused = TreatmentPaused(
        patient_id=ids(1)["patient_id"], course_id=ids(1)["course_id"], paused_at=NOW, reason="clinician_decision",
        released_sessions=(ids(1)["session_id"], "ses_UNKNOWN_01"),
    )
    handled = await uow.handle(paused)

    assert [r.cause for r in handled.emitted(ReservationReleased)] == ["course_paused"]
    assert await state(uow, "BIO-A") == (50, 0)


async def test_a_pause_that_arrives_before_the_booking_leaves_the_late_booking_holding_nothing_until_a_resume():
    uow = await work()
    await uow.handle(received("BIO-A", 50))
    paused = TreatmentPaused(
        patient_id=ids(1)["patient_id"], course_id=ids(1)["course_id"], paused_at=NOW, reason="clinician_decision",
        released_sessions=(ids(1)["session_id"],),
    )

    first = await uow.handle(paused)
    late = await uow.handle(scheduled(1, {"biotin": 5.0}))

    assert first.outcome == "nothing-reserved" and first.events == []
    assert late.outcome == "already-known" and late.emitted(IngredientsReserved) == []
    assert await state(uow, "BIO-A") == (50, 0), "no stock held for a session of a paused course"
    resumed = await uow.handle(rescheduled(1, {"biotin": 5.0}, datetime(2026, 8, 3, 9, tzinfo=UTC)))
    assert [a.lot_number for r in resumed.emitted(IngredientsReserved) for a in r.allocations] == ["BIO-A"]


# -- SessionCompleted ------------------------------------------------------------------------------------------


async def test_a_completed_session_consumes_what_was_used_and_returns_the_rest_once():
    uow = await work()
    await uow.handle(received("BIO-A", 50))
    await uow.handle(received("MNX-A", 50, ingredient="minoxidil"))
    await uow.handle(scheduled(1, {"biotin": 5.0, "minoxidil": 2.0}))

    handled = await uow.handle(completed(1, [("biotin", "BIO-A", 4.0)]))
    again = await uow.handle(completed(1, [("biotin", "BIO-A", 4.0)]))

    [consumed] = handled.emitted(StockConsumed)
    assert handled.outcome == "consumed"
    assert [(c.lot_number, c.amount, c.reserved_amount) for c in consumed.consumed] == [("BIO-A", 4.0, 5.0)]
    assert [(r.lot_number, r.amount) for r in consumed.returned] == [("MNX-A", 2.0)]
    assert (await state(uow, "BIO-A"), await state(uow, "MNX-A")) == ((46, 0), (50, 0))
    assert again.outcome == "already-consumed" and again.events == []


async def test_a_completion_naming_an_unknown_or_mismatched_lot_is_rejected_with_nothing_moved():
    uow = await work()
    await uow.handle(received("BIO-A", 50))
    await uow.handle(scheduled(1, {"biotin": 5.0}))

    unknown = await uow.handle(completed(1, [("biotin", "BIO-NOPE", 4.0)]))
    mismatch = await uow.handle(completed(1, [("minoxidil", "BIO-A", 4.0)]))

    assert (unknown.outcome, mismatch.outcome) == ("rejected:unknown-lot", "rejected:lot-mismatch")
    assert unknown.claims == mismatch.claims == []
    assert await state(uow, "BIO-A") == (50, 5)


# -- LotRecalled, AdverseEventEscalated --------------------------------------------------------------------------


async def test_a_recall_withdraws_the_lot_and_moves_its_reservations_to_another_lot():
    uow = await work()
    await uow.handle(received("BIO-BAD", 50, SOON))
    await uow.handle(received("BIO-SPARE", 50, LATER))
    await uow.handle(scheduled(1, {"biotin": 5.0}))

    handled = await uow.handle(recalled("BIO-BAD"))
    events = await steps(uow, handled)
    again = await uow.handle(recalled("BIO-BAD"))

    [quarantined] = of(events, LotQuarantined)
    [moved] = of(events, IngredientsReserved)
    assert handled.outcome == "quarantined" and quarantined.cause == "recall" and quarantined.recall_reason == "sterility_failure"
    assert [(a.session_id, a.status) for a in quarantined.affected] == [(ids(1)["session_id"], "reservation_moved")]
    assert [(a.lot_number, a.amount) for a in moved.allocations] == [("BIO-SPARE", 5.0)]
    assert ("lots", "update") in {(w.collection, w.op) for w in uow.db.writes}, "the lot's status is an Effect"
    assert again.outcome == "already-recalled" and again.events == []
    assert (await state(uow, "BIO-BAD"), await state(uow, "BIO-SPARE")) == ((50, 0), (50, 5))


async def test_a_recall_that_leaves_a_session_short_releases_it_and_says_so():
    uow = await work()
    await uow.handle(received("BIO-BAD", 50))
    await uow.handle(scheduled(1, {"biotin": 5.0}))

    events = await everything(uow, recalled("BIO-BAD"))

    [short] = of(events, IngredientShortage)
    [released] = of(events, ReservationReleased)
    assert short.cause == "lot_recalled" and released.cause == "lot_withdrawn"


async def test_recalls_of_an_unknown_lot_are_ignored_and_of_another_ingredient_rejected():
    uow = await work()
    await uow.handle(received("BIO-A", 50))

    unknown = await uow.handle(recalled("BIO-NOPE"))
    mismatch = await uow.handle(recalled("BIO-A", ingredient="minoxidil"))

    assert (unknown.outcome, mismatch.outcome) == ("unknown-lot", "rejected:lot-mismatch")
    assert unknown.claims == mismatch.claims == []


async def test_a_lot_named_by_two_escalations_is_quarantined_on_the_second():
    uow = await work()
    await uow.handle(received("MNX-A", 50, ingredient="minoxidil"))

    first = await uow.handle(escalated(1, "A", [("minoxidil", "MNX-A")]))
    same = await uow.handle(escalated(1, "A", [("minoxidil", "MNX-A")]))
    second = await uow.handle(escalated(2, "B", [("minoxidil", "MNX-A")]))

    assert (first.outcome, same.outcome, second.outcome) == ("flagged", "flagged", "quarantined")
    assert [w.collection for w in first.claims] == ["lot_flags"] and same.claims == []
    [quarantined] = of(await steps(uow, second), LotQuarantined)
    assert quarantined.cause == "adverse_events" and list(quarantined.escalation_ids) == ["esc_UNIT0001_A", "esc_UNIT0002_B"]


async def test_an_escalation_naming_no_lot_flags_the_lots_its_session_used():
    uow = await work()
    await uow.handle(received("BIO-A", 50))
    await uow.handle(scheduled(1, {"biotin": 5.0}))
    await uow.handle(completed(1, [("biotin", "BIO-A", 5.0)]))

    first = await uow.handle(escalated(1, "A", []))
    second = await uow.handle(escalated(1, "B", []))

    assert (first.outcome, second.outcome) == ("flagged", "quarantined")
    [quarantined] = of(await steps(uow, second), LotQuarantined)
    assert [(a.session_id, a.status) for a in quarantined.affected] == [(ids(1)["session_id"], "administered")]


# -- a recall racing a cancellation ---------------------------------------------------------------------------


async def test_a_recall_moving_a_session_while_its_cancellation_runs_leaves_nothing_held_for_it():
    """The cancellation reads the session and its lot, then the recall moves the session to another lot, then
    the cancellation releases: it must release the lot the recall moved it to as well."""
    uow = await work()
    await uow.handle(received("BIO-BAD", 50, SOON))
    await uow.handle(received("BIO-SPARE", 50, LATER))
    await uow.handle(scheduled(1, {"biotin": 5.0}))
    hint = uow.deps.repo.hint
    recall: list[list[Any]] = []

    async def hint_then_recall(lot_number: str) -> Any:
        found = await hint(lot_number)
        uow.deps.repo.hint = hint  # type: ignore[method-assign]
        recall.append(await everything(uow, recalled("BIO-BAD")))  # the cancellation has read the lot: the whole recall now
        return found

    uow.deps.repo.hint = hint_then_recall  # type: ignore[method-assign]
    cancelling = await uow.handle(cancelled(1))

    [moved] = [e for e in recall[0] if isinstance(e, IngredientsReserved)]
    assert [(a.lot_number, a.amount) for a in moved.allocations] == [("BIO-SPARE", 5.0)], "the recall did move it"
    [released] = cancelling.emitted(ReservationReleased)
    assert [(a.lot_number, a.amount) for a in released.released] == [("BIO-SPARE", 5.0)]
    assert (await state(uow, "BIO-BAD"), await state(uow, "BIO-SPARE")) == ((50, 0), (50, 0)), "nothing held for the cancelled session"


async def test_a_cancellation_between_a_recall_and_its_moves_leaves_nothing_held_for_it():
    uow = await work()
    await uow.handle(received("BIO-BAD", 50, SOON))
    await uow.handle(received("BIO-SPARE", 50, LATER))
    await uow.handle(scheduled(1, {"biotin": 5.0}))
    await uow.handle(scheduled(2, {"biotin": 5.0}))
    session = uow.deps.repo.session
    cancelling: list[Any] = []

    async def session_then_cancel(session_id: str) -> Any:
        found = await session(session_id)
        if session_id == ids(1)["session_id"]:  # the recall has read the session: it is cancelled now
            uow.deps.repo.session = session  # type: ignore[method-assign]
            cancelling.append(await uow.handle(cancelled(1)))
        return found

    uow.deps.repo.session = session_then_cancel  # type: ignore[method-assign]
    events = await everything(uow, recalled("BIO-BAD"))

    assert cancelling, "the cancellation ran in the middle of the recall"
    assert (await state(uow, "BIO-BAD"), await state(uow, "BIO-SPARE")) == ((50, 0), (50, 5)), "only session 2 holds stock"
    [quarantined] = [e for e in events if isinstance(e, LotQuarantined)]
    assert {a.session_id for a in quarantined.affected} <= {ids(1)["session_id"], ids(2)["session_id"]}
    assert [a.session_id for e in events if isinstance(e, IngredientsReserved) for a in [e]] == [ids(2)["session_id"]]


async def test_a_cancellation_after_a_recall_releases_what_the_recall_moved_the_session_to():
    uow = await work()
    await uow.handle(received("BIO-BAD", 50, SOON))
    await uow.handle(received("BIO-SPARE", 50, LATER))
    await uow.handle(scheduled(1, {"biotin": 5.0}))

    await everything(uow, recalled("BIO-BAD"))
    handled = await uow.handle(cancelled(1))

    [released] = handled.emitted(ReservationReleased)
    assert [(a.lot_number, a.amount) for a in released.released] == [("BIO-SPARE", 5.0)]
    assert (await state(uow, "BIO-BAD"), await state(uow, "BIO-SPARE")) == ((50, 0), (50, 0))


async def test_a_quarantine_of_a_lot_many_sessions_hold_is_done_in_small_steps_other_events_interleave_with():
    uow = await work()
    await uow.handle(received("BIO-BAD", 500, SOON))
    await uow.handle(received("BIO-SPARE", 500, LATER))
    for n in range(25):
        await uow.handle(scheduled(n, {"biotin": 5.0}))

    handled = await uow.handle(recalled("BIO-BAD"))
    assert not handled.emitted(LotQuarantined) and [s.step for s in handled.emitted(LotWithdrawalStep)] == [1]
    assert await state(uow, "BIO-BAD") == (500, 125), "withdrawn at once; moved in the steps"
    await uow.handle(cancelled(3))  # between the withdrawal and its steps
    events = await steps(uow, handled)

    assert len(of(events, LotWithdrawalStep)) >= 4, "scan, three batches of moves, the consumption walk"
    [quarantined] = of(events, LotQuarantined)
    assert len(quarantined.affected) == 24 and ids(3)["session_id"] not in {a.session_id for a in quarantined.affected}
    assert {r.session_id for r in of(events, IngredientsReserved)} == {ids(n)["session_id"] for n in range(25) if n != 3}
    assert (await state(uow, "BIO-BAD"), await state(uow, "BIO-SPARE")) == ((500, 0), (500, 120))
    again = await uow.handle(LotWithdrawalStep(lot_number="BIO-BAD", ingredient="biotin", cause="recall", step=1, requested_at=NOW))
    assert again.outcome == "step-done" and again.events == []


# -- the stock forecast ------------------------------------------------------------------------------------


def forecast_requested(ingredient: str | None, weeks: int = 4, request_id: str = "fcr_UNIT0001") -> StockForecastRequested:
    return StockForecastRequested(request_id=request_id, ingredient=ingredient, weeks=weeks, requested_at=NOW)


async def forecast_of(uow: UnitOfWork[Deps], ingredient: str = "biotin", weeks: int = 4) -> tuple[StockForecast, list[StockShortageForecast]]:
    handled = await uow.handle(forecast_requested(ingredient, weeks))
    assert handled.rejected is None and handled.outcome == "forecast"
    [forecast] = handled.emitted(StockForecast)
    return forecast, handled.emitted(StockShortageForecast)


def demand_by_week(forecast: StockForecast) -> list[tuple[str, int, float]]:
    return [(w.week_starting.isoformat(), w.sessions, w.demand) for w in forecast.weeks]


async def test_a_forecast_request_answers_with_the_booked_demand_per_week_and_warns_of_the_shortage_weeks_ahead():
    uow = await work()
    await uow.handle(received("BIO-SOON", 12, expires_on=date(2026, 3, 20)))
    await uow.handle(received("BIO-LATE", 10))
    await uow.handle(scheduled(1, {"biotin": 5}, at=datetime(2026, 3, 4, 9, tzinfo=UTC)))
    await uow.handle(scheduled(2, {"biotin": 5}, at=datetime(2026, 3, 11, 9, tzinfo=UTC)))
    short = await uow.handle(scheduled(3, {"biotin": 15}, at=datetime(2026, 3, 25, 9, tzinfo=UTC)))
    assert short.emitted(IngredientShortage)  # BIO-SOON is out of date by then, BIO-LATE alone is not enough

    forecast, [warning] = await forecast_of(uow)

    assert forecast.request_id == "fcr_UNIT0001" and forecast.answers == 1 and forecast.usable_now == 22 and forecast.reorder_lead_days == 7
    assert demand_by_week(forecast) == [("2026-03-02", 1, 5), ("2026-03-09", 1, 5), ("2026-03-16", 0, 0), ("2026-03-23", 1, 15)]
    assert [(w.usable, w.balance, w.shortfall) for w in forecast.weeks] == [(22, 17, 0), (17, 12, 0), (12, 12, 0), (10, -5, 5)]
    assert (warning.short_from, warning.week_starting, warning.weeks_ahead, warning.missing) == (date(2026, 3, 25), date(2026, 3, 23), 3, 5)
    assert warning.reorder_by == date(2026, 3, 18) and not warning.reorder_overdue and warning.request_id == "fcr_UNIT0001"


async def test_the_forecast_follows_moves_cancellations_pauses_and_completions_of_booked_sessions():
    uow = await work()
    await uow.handle(received("BIO-A", 100))
    for n, day in ((1, 4), (2, 11), (3, 18)):
        await uow.handle(scheduled(n, {"biotin": 5}, at=datetime(2026, 3, day, 9, tzinfo=UTC)))
    await uow.handle(rescheduled(2, {"biotin": 6}, datetime(2026, 3, 25, 9, tzinfo=UTC)))
    await uow.handle(cancelled(3))

    forecast, warnings = await forecast_of(uow)
    assert demand_by_week(forecast) == [("2026-03-02", 1, 5), ("2026-03-09", 0, 0), ("2026-03-16", 0, 0), ("2026-03-23", 1, 6)]
    assert warnings == [] and forecast.shortage is None

    await uow.handle(completed(1, [("biotin", "BIO-A", 5)]))
    forecast, _ = await forecast_of(uow)
    assert demand_by_week(forecast)[0] == ("2026-03-02", 0, 0) and forecast.usable_now == 95


async def test_a_bookings_demand_written_again_by_a_rerun_counts_once():
    uow = await work()
    await uow.handle(received("BIO-A", 100))
    first = await uow.handle(scheduled(1, {"biotin": 5}, at=datetime(2026, 3, 4, 9, tzinfo=UTC)))
    again = await uow.deps.claims.demand(uow.deps.repo, "ses_UNIT0001_01", date(2026, 3, 2), Need(date(2026, 3, 4), {"biotin": 5.0}), NOW)

    assert [w.collection for w in first.claims].count("demand") == 1
    assert again.upto == 2  # a re-run after a crash writes the same need again: the latest slot of a session wins
    forecast, _ = await forecast_of(uow)
    assert demand_by_week(forecast)[0] == ("2026-03-02", 1, 5)


async def test_a_forecast_of_every_ingredient_answers_once_per_ingredient_stocked():
    uow = await work()

    handled = await uow.handle(forecast_requested(None, weeks=2))

    forecasts = handled.emitted(StockForecast)
    assert sorted(f.ingredient for f in forecasts) == sorted(i.code for i in uow.deps.config.ingredients)
    assert all(f.answers == len(forecasts) and len(f.weeks) == 2 and f.request_id == "fcr_UNIT0001" and f.usable_now == 0 for f in forecasts)


async def test_a_forecast_for_an_ingredient_not_stocked_is_rejected_with_nothing_published_or_written():
    uow = await work()

    handled = await uow.handle(forecast_requested("unobtainium"))

    assert handled.outcome == "rejected:unknown-ingredient" and "unobtainium is not stocked" in handled.rejected.detail
    assert handled.events == [] and handled.claims == []


async def test_the_weekly_forecast_is_published_once_a_week_for_every_ingredient():
    uow = await work()
    await uow.handle(received("BIO-A", 4))
    await uow.handle(scheduled(1, {"biotin": 5}, at=datetime(2026, 3, 4, 9, tzinfo=UTC)))

    first = (await uow.run_jobs(NOW))["publish_forecasts"]
    again = (await uow.run_jobs(NOW + timedelta(days=2)))["publish_forecasts"]
    next_week = (await uow.run_jobs(NOW + timedelta(days=7)))["publish_forecasts"]

    published = [e.data for _, effects in first for e in effects.events]
    forecasts = of(published, StockForecast)
    assert len(forecasts) == len(uow.deps.config.ingredients) and all(f.request_id is None and len(f.weeks) == 8 for f in forecasts)
    [warning] = of(published, StockShortageForecast)
    assert warning.ingredient == "biotin" and warning.short_from == date(2026, 3, 4) and warning.reorder_overdue
    assert sorted(key for key, _ in first)[0] == "forecast|2026-03-02" and again == []
    assert len(next_week) == len(uow.deps.config.ingredients) + 1
