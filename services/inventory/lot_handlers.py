"""Inventory's reactions on the lot side: deliveries, recalls, escalated adverse events, expiry scan."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from services.inventory import messages
from services.inventory.alerts import expiring, stock_watch
from services.inventory.deliveries import receive_stock
from services.inventory.domain import Lot, LotMeta, Refused, check_receipt
from services.inventory.handlers import handlers, today_of, watch
from services.inventory.shelf import Shelf
from services.inventory.stock import shelf_levels
from services.inventory.withdrawal import Kind, withdraw_lot
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.inventory import LotRecalled, StockReceived
from shared.envelope import CloudEvent
from shared.runtime import Effects, Rejected, ignored
from shared.runtime.store import inbox_id

if TYPE_CHECKING:
    from services.inventory.app import Deps

SCAN_SECONDS = 900.0
"""Expiry and stock-level scan; each lot's warning is keyed, so scanning often announces nothing twice."""


@handlers.on(StockReceived)
async def on_stock_received(event: CloudEvent, deps: Deps) -> Effects:
    delivery: StockReceived = event.data  # type: ignore[assignment]
    now = deps.clock.now()
    meta = LotMeta(delivery.lot_number, delivery.ingredient, delivery.unit.value, delivery.expires_on)
    ingredient = deps.config.ingredient(delivery.ingredient)
    shelf = deps.repo.shelf()
    known = await deps.repo.lot(delivery.lot_number, shelf)
    try:
        check_receipt(meta, delivery.quantity, ingredient, known, today_of(now))
        if known is None:  # two deliveries may race to define a new lot number: the claim decides
            claimed = await deps.repo.claim_lot(meta, delivery.delivery_id, delivery.received_at)
            check_receipt(meta, delivery.quantity, ingredient, Lot(claimed.lot_number, claimed.ingredient, claimed.unit, claimed.expires_on), today_of(now))
    except Refused as refused:
        raise Rejected(refused.reason, refused.detail) from None
    await receive_stock(deps.repo, shelf, meta, delivery.quantity, delivery.delivery_id, today_of(now), now)
    effects = await watch(deps, shelf, {delivery.ingredient}, event, now)
    effects.outcome = "received"
    return effects


@handlers.on(LotRecalled)
async def on_lot_recalled(event: CloudEvent, deps: Deps) -> Effects:
    recall: LotRecalled = event.data  # type: ignore[assignment]
    shelf = deps.repo.shelf()
    lot = await deps.repo.lot(recall.lot_number, shelf)
    if lot is None:
        return ignored("unknown-lot")
    if lot.ingredient != recall.ingredient:
        raise Rejected("lot-mismatch", f"{recall.lot_number} is {lot.ingredient}")
    effects = await _withdraw(event, deps, shelf, lot, "recall", recall_reason=recall.reason_code)
    return effects if effects is not None else ignored("already-recalled")


@handlers.on(AdverseEventEscalated)
async def on_adverse_event_escalated(event: CloudEvent, deps: Deps) -> Effects:
    escalated: AdverseEventEscalated = event.data  # type: ignore[assignment]
    named = {lot.lot_number for lot in escalated.lots}
    if not named:  # the report did not say: the lots used in that session
        named = set((await deps.repo.session(escalated.session_id) or {}).get("consumed_lots", []))
    now = deps.clock.now()
    shelf = deps.repo.shelf()
    effects = Effects(outcome="flagged")
    for lot_number in sorted(named):
        lot = await deps.repo.lot(lot_number, shelf)
        if lot is None:
            continue
        escalations = await deps.repo.flag(lot_number, escalated.escalation_id, escalated.session_id, now)
        ingredient = deps.config.ingredient(lot.ingredient)
        threshold = ingredient.quarantine_after_escalations if ingredient is not None else 1
        if len(escalations) >= threshold:
            quarantine = await _withdraw(event, deps, shelf, lot, "adverse_events", escalation_ids=escalations)
            if quarantine is not None:
                effects += quarantine
    return effects


async def _withdraw(event: CloudEvent, deps: Deps, shelf: Shelf, lot: Lot, kind: Kind, **extra: object) -> Effects | None:
    now = deps.clock.now()
    withdrawal = await withdraw_lot(deps.repo, shelf, lot, kind, inbox_id(event), now, **extra)
    if withdrawal is None:
        return None
    recall_reason = extra.get("recall_reason") if kind == "recall" else None
    effects = deps.repo.mark_lot(lot.lot_number, "recalled" if kind == "recall" else "quarantined", now)
    effects.emit(messages.quarantined(withdrawal, recall_reason))  # type: ignore[arg-type]
    short_cause = "lot_recalled" if kind == "recall" else "lot_quarantined"
    for move in withdrawal.moves:
        if move.status == "reservation_moved":
            effects.emit(messages.reserved(move.ref, move.held, now))
            continue
        effects.emit(messages.shortage(move.ref, move.missing or {}, {lot.ingredient: lot.unit}, short_cause, now))
        if move.released:
            effects.emit(messages.released(move.ref, move.released, "lot_withdrawn", now))
    effects.outcome = "quarantined"
    return effects + await watch(deps, shelf, {lot.ingredient}, event, now)


@handlers.every(SCAN_SECONDS)
async def scan_lots(deps: Deps, now: datetime) -> list[tuple[str, Effects]]:
    """Expiry warnings and StockLow over the lots in play (the stock book's), read to their real end; the
    heads found behind are brought up to date."""
    today = today_of(now)
    shelf = deps.repo.shelf()
    book = await shelf.book()
    await shelf.load((m.lot_number for m in book.lots.values()), exact=True)
    levels = await shelf_levels(shelf, book, today)
    pairs = [(f"expiring|{soon.lot_number}", Effects().emit(soon)) for soon in expiring(levels, deps.config, today, now)]
    lows = await stock_watch(deps.repo, shelf, deps.config, {lot.ingredient for lot in levels}, "scan", today, now)
    pairs += [(f"stock-low|{low.ingredient}|{n}", Effects().emit(low)) for n, low in lows]
    await shelf.flush()
    return pairs
