"""Inventory's reactions: a session's life (booked, moved, cancelled, missed, paused, completed) and the lot
side (deliveries, answered by StockAccepted or StockRefused; recalls and escalated adverse events, which
withdraw a lot at once and move its sessions in bounded LotWithdrawalStep steps; the expiry scan), and the
stock forecast (on request, StockForecastRequested, and weekly). Each decodes its event, moves stock on one
event's ``Shelf`` and returns Effects. A session's booking, move, release and completion also keep what it
needs in its ISO week's demand (a claim, ``Claims.demand``), which the forecast reads one week at a time.

Each handler reads the session's document and the stock book once, and the lots it touches by ``_id``;
nothing here searches a collection that grows with the clinic's history, and no call's work grows with it
(a withdrawal's steps are slices of bounded size). Only a session whose record is behind its ledger
entries (a withdrawal moved it, or a crash) has its entries read back, once. Its writes are Effects, except its claims on stock shared across patients (ledger entries,
stock book versions, a lot's definition and flags, StockLow crossings), made through ``Deps.claims``
(repository.py says why they cannot wait and why they are safe to make first).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from services.inventory import domain
from services.inventory.config import InventoryConfig
from services.inventory.domain import (
    Lot,
    LotMeta,
    Need,
    Refused,
    ReleaseCause,
    Session,
    SessionRef,
    ShortageCause,
    WithdrawalKind,
    check_receipt,
    needs_of,
    session_day,
    status_of,
    today_of,
    week_of,
)
from services.inventory.repository import Claims, Repository
from services.inventory.shelf import Shelf
from services.inventory.stock import (
    consume_session,
    receive_stock,
    release_session,
    reserve_session,
    shelf_levels,
    stock_forecasts,
    stock_watch,
    withdraw_entry,
    withdrawal_step,
)
from shared.clock import Clock
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.inventory import LotRecalled, LotWithdrawalStep, RecallReason, StockForecast, StockForecastRequested, StockReceived
from shared.contracts.plan import DoseLine
from shared.contracts.scheduling import (
    SessionCancelled,
    SessionCompleted,
    SessionNoShow,
    SessionRescheduled,
    SessionScheduled,
    TreatmentPaused,
)
from shared.envelope import CloudEvent
from shared.runtime import Effects, Handlers, Rejected, ignored
from shared.runtime.store import derived_id, inbox_id

SCAN_SECONDS = 900.0
"""Expiry and stock-level scan; each lot's warning is keyed, so scanning often announces nothing twice."""
FORECAST_CHECK_SECONDS = 3600.0
"""How often the weekly forecast job looks whether this ISO week's forecast is out yet (one ``_id`` read)."""


@dataclass(frozen=True)
class Deps:
    repo: Repository
    claims: Claims
    config: InventoryConfig
    clock: Clock

    def shelf(self) -> Shelf:
        """A fresh view of the stock for one event: it reads through ``repo``, and its ledger entries and
        stock book versions are claims made through ``claims``."""
        return Shelf(self.repo, self.claims)


handlers = Handlers[Deps]("inventory", concurrency=8)  # lots and weeks shared by patients: their claims are grouped (Claims.place, Claims.demand)


def round_of(event: CloudEvent[object]) -> str:
    """Names this event's attempt in ledger causes: the same on every redelivery."""
    return derived_id("round", inbox_id(event)).replace("-", "")[:20]


async def watch(deps: Deps, shelf: Shelf, ingredients: set[str], event: CloudEvent[object], now: datetime) -> Effects:
    """StockLow for the ingredients this event moved, when it crossed the reorder point."""
    effects = Effects()
    for _, low in await stock_watch(shelf, deps.config, ingredients, inbox_id(event), today_of(now), now):
        effects.emit(low)
    return effects


async def keep_demand(deps: Deps, session_id: str, session: Session | None, after: Need | None, now: datetime) -> None:
    """What the session needs from now on (None: nothing), in the demand of the weeks it was and is in."""
    changes = domain.demand_changes(session.demand if session is not None else None, after)
    await asyncio.gather(*(deps.claims.demand(deps.repo, session_id, week, need, now) for week, need in sorted(changes.items(), key=lambda c: c[0])))


# -- a session's life ----------------------------------------------------------------------------------


@handlers.on(SessionScheduled)
async def on_session_scheduled(event: CloudEvent[SessionScheduled], deps: Deps) -> Effects:
    booked = event.data
    shelf = deps.shelf()
    session, _ = await asyncio.gather(deps.repo.session(booked.session_id), shelf.book())  # both by _id, at once
    if session is not None and domain.unfinished(session) != round_of(event):
        return ignored("already-known")  # a reschedule got here first, or the booking was published twice
    ref = SessionRef(booked.session_id, booked.patient_id, booked.course_id, booked.scheduled_for)
    return await _reserve(event, deps, shelf, ref, booked.cocktail, session, announced=False)


@handlers.on(SessionRescheduled)
async def on_session_rescheduled(event: CloudEvent[SessionRescheduled], deps: Deps) -> Effects:
    moved = event.data
    shelf = deps.shelf()
    session, _ = await asyncio.gather(deps.repo.session(moved.session_id), shelf.book())
    if status_of(session) == "consumed":
        return ignored("already-consumed")
    ref = SessionRef(moved.session_id, moved.patient_id, moved.course_id, moved.scheduled_for)
    return await _reserve(event, deps, shelf, ref, moved.cocktail, session, announced=status_of(session) == "reserved")


async def _reserve(
    event: CloudEvent[object], deps: Deps, shelf: Shelf, ref: SessionRef, cocktail: tuple[DoseLine, ...], session: Session | None, announced: bool
) -> Effects:
    _check_units(deps, cocktail)
    now = deps.clock.now()
    needs = needs_of((line.ingredient, line.amount) for line in cocktail)
    outcome = await reserve_session(shelf, ref, needs, round_of(event), today_of(now), now, session)
    await keep_demand(deps, ref.session_id, session, Need(session_day(ref.scheduled_for), needs), now)
    effects = deps.repo.save_session(ref, "short" if outcome.short else "reserved", now, round_of(event), shelf.holds(ref.session_id), needs)
    if outcome.short:
        units = {line.ingredient: line.unit.value for line in cocktail}
        effects.emit(domain.ingredient_shortage(ref, outcome.missing, units, outcome.shortage_cause or "insufficient_stock", now))
        if announced and outcome.released:
            effects.emit(domain.reservation_released(ref, outcome.released, "session_rescheduled", now))
        effects.outcome = "shortage"
    else:
        effects.emit(domain.ingredients_reserved(ref, outcome.held, now))
        effects.outcome = "reserved"
    return effects + await watch(deps, shelf, outcome.ingredients, event, now)


def _check_units(deps: Deps, cocktail: tuple[DoseLine, ...]) -> None:
    for line in cocktail:
        ingredient = deps.config.ingredient(line.ingredient)
        if ingredient is not None and ingredient.unit != line.unit:
            raise Rejected("unit-mismatch", f"{line.ingredient} is stocked in {ingredient.unit.value}, not {line.unit.value}")


@handlers.on(SessionCancelled)
async def on_session_cancelled(event: CloudEvent[SessionCancelled], deps: Deps) -> Effects:
    cancelled = event.data
    ref = SessionRef(cancelled.session_id, cancelled.patient_id, cancelled.course_id, cancelled.scheduled_for)
    return await _release(event, deps, ref, "session_cancelled", await deps.repo.session(ref.session_id))


@handlers.on(SessionNoShow)
async def on_session_no_show(event: CloudEvent[SessionNoShow], deps: Deps) -> Effects:
    missed = event.data
    ref = SessionRef(missed.session_id, missed.patient_id, missed.course_id, missed.scheduled_for)
    return await _release(event, deps, ref, "no_show", await deps.repo.session(ref.session_id))


@handlers.on(TreatmentPaused)
async def on_treatment_paused(event: CloudEvent[TreatmentPaused], deps: Deps) -> Effects:
    paused = event.data
    effects = Effects(outcome="released")
    for session_id in paused.released_sessions:
        session = await deps.repo.session(session_id)
        # a session not seen yet (its SessionScheduled, on another topic, still to come) is recorded as
        # released too, like a cancellation that arrives first: the late booking then finds it known and
        # holds nothing for a paused course; a resume reserves it again by SessionRescheduled
        scheduled_for = session.ref.scheduled_for if session is not None else paused.paused_at
        ref = SessionRef(session_id, paused.patient_id, paused.course_id, scheduled_for)
        effects += await _release(event, deps, ref, "course_paused", session)
    return effects


async def _release(event: CloudEvent[object], deps: Deps, ref: SessionRef, cause: ReleaseCause, session: Session | None) -> Effects:
    if status_of(session) == "consumed":
        return ignored("already-consumed")
    now = deps.clock.now()
    shelf = deps.shelf()
    outcome = await release_session(shelf, ref, round_of(event), now, session)
    await keep_demand(deps, ref.session_id, session, None, now)
    effects = deps.repo.save_session(ref, "released", now, round_of(event), shelf.holds(ref.session_id))
    if not outcome.released:
        effects.outcome = "nothing-reserved"
        return effects
    effects.emit(domain.reservation_released(ref, outcome.released, cause, now))
    effects.outcome = "released"
    return effects + await watch(deps, shelf, outcome.ingredients, event, now)


@handlers.on(SessionCompleted)
async def on_session_completed(event: CloudEvent[SessionCompleted], deps: Deps) -> Effects:
    completed = event.data
    shelf = deps.shelf()
    await shelf.load(line.lot_number for line in completed.lots_used)
    used: dict[str, float] = {}
    metas: dict[str, LotMeta] = {}
    for line in completed.lots_used:
        lot = await shelf.lot(line.lot_number)
        if lot is None:
            raise Rejected("unknown-lot", line.lot_number)
        if (lot.ingredient, lot.unit) != (line.ingredient, line.unit.value):
            raise Rejected("lot-mismatch", f"{line.lot_number} is {lot.ingredient} in {lot.unit}")
        used[line.lot_number] = round(used.get(line.lot_number, 0.0) + line.amount, 6)
        metas[line.lot_number] = lot.meta
    session = await deps.repo.session(completed.session_id)
    if status_of(session) == "consumed":
        return ignored("already-consumed")
    scheduled_for = session.ref.scheduled_for if session is not None else completed.completed_at
    ref = SessionRef(completed.session_id, completed.patient_id, completed.course_id, scheduled_for)
    now = deps.clock.now()
    lines = await consume_session(shelf, ref, used, metas, round_of(event), now, session)
    await keep_demand(deps, ref.session_id, session, None, now)
    consumed = sorted({line.lot_number for line in lines if line.amount > 0})
    effects = deps.repo.save_session(ref, "consumed", now, round_of(event), shelf.holds(ref.session_id), consumed=consumed)
    effects.emit(domain.stock_consumed(ref, lines, completed.completed_at))
    effects.outcome = "consumed"
    return effects + await watch(deps, shelf, {line.ingredient for line in lines}, event, now)


# -- the lot side ----------------------------------------------------------------------------------------


@handlers.on(StockReceived)
async def on_stock_received(event: CloudEvent[StockReceived], deps: Deps) -> Effects:
    delivery = event.data
    now = deps.clock.now()
    meta = LotMeta(delivery.lot_number, delivery.ingredient, delivery.unit.value, delivery.expires_on)
    ingredient = deps.config.ingredient(delivery.ingredient)
    shelf = deps.shelf()
    known = await shelf.lot(delivery.lot_number)
    try:
        check_receipt(meta, delivery.quantity, ingredient, known, today_of(now))
        if known is None:  # two deliveries may race to define a new lot number: the claim decides
            claimed = await deps.claims.lot(meta, delivery.delivery_id, delivery.received_at)
            check_receipt(meta, delivery.quantity, ingredient, Lot(claimed.lot_number, claimed.ingredient, claimed.unit, claimed.expires_on), today_of(now))
    except Refused as refused:  # the answer is an event (StockRefused), not a dead letter: nothing is applied
        return Effects(outcome=f"refused:{refused.reason}").emit(domain.stock_refused(delivery, refused, now))
    await receive_stock(shelf, meta, delivery.quantity, delivery.delivery_id, today_of(now), now)
    effects = Effects().emit(domain.stock_accepted(delivery, domain.state_of(shelf.known(delivery.lot_number)).on_hand, now))
    effects += await watch(deps, shelf, {delivery.ingredient}, event, now)
    effects.outcome = "received"
    return effects


@handlers.on(LotRecalled)
async def on_lot_recalled(event: CloudEvent[LotRecalled], deps: Deps) -> Effects:
    recall = event.data
    shelf = deps.shelf()
    lot = await shelf.lot(recall.lot_number)
    if lot is None:
        return ignored("unknown-lot")
    if lot.ingredient != recall.ingredient:
        raise Rejected("lot-mismatch", f"{recall.lot_number} is {lot.ingredient}")
    effects = await _withdraw(event, deps, shelf, lot, "recall", recall.reason_code, recall_reason=recall.reason_code)
    return effects if effects is not None else ignored("already-recalled")


@handlers.on(AdverseEventEscalated)
async def on_adverse_event_escalated(event: CloudEvent[AdverseEventEscalated], deps: Deps) -> Effects:
    escalated = event.data
    named = {lot.lot_number for lot in escalated.lots}
    if not named:  # the report did not say: the lots used in that session
        session = await deps.repo.session(escalated.session_id)
        named = set(session.consumed_lots if session is not None else ())
    now = deps.clock.now()
    shelf = deps.shelf()
    effects = Effects(outcome="flagged")
    for lot_number in sorted(named):
        lot = await shelf.lot(lot_number)
        if lot is None:
            continue
        escalations = await deps.claims.flag(lot_number, escalated.escalation_id, escalated.session_id, now)
        ingredient = deps.config.ingredient(lot.ingredient)
        threshold = ingredient.quarantine_after_escalations if ingredient is not None else 1
        if len(escalations) >= threshold:
            quarantine = await _withdraw(event, deps, shelf, lot, "adverse_events", None, escalation_ids=escalations)
            if quarantine is not None:
                effects += quarantine
    return effects


async def _withdraw(
    event: CloudEvent[object], deps: Deps, shelf: Shelf, lot: Lot, kind: WithdrawalKind, reason: RecallReason | None, **extra: object
) -> Effects | None:
    """Withdraw the lot now (no reservation can take it any more); its sessions are found and moved in
    steps (LotWithdrawalStep), the last of which announces LotQuarantined."""
    now = deps.clock.now()
    entry = await withdraw_entry(shelf, lot, kind, inbox_id(event), now, **extra)
    if entry is None:
        return None
    effects = deps.repo.mark_lot(lot.lot_number, "recalled" if kind == "recall" else "quarantined", now)
    effects += deps.repo.save_withdrawal(domain.withdrawal_job(lot.meta, kind, entry, reason))
    effects.emit(LotWithdrawalStep(lot_number=lot.lot_number, ingredient=lot.ingredient, cause=kind, step=1, requested_at=now))
    effects.outcome = "quarantined"
    return effects + await watch(deps, shelf, {lot.ingredient}, event, now)


@handlers.on(LotWithdrawalStep)
async def on_lot_withdrawal_step(event: CloudEvent[LotWithdrawalStep], deps: Deps) -> Effects:
    """One bounded step of a withdrawal: the next one is its own event, so others interleave."""
    step = event.data
    job = await deps.repo.withdrawal(step.lot_number, step.cause)
    if job is None:
        return ignored("unknown-withdrawal")
    if job["step"] != step.step:
        return ignored("step-done")
    now = deps.clock.now()
    shelf = deps.shelf()
    job, moves = await withdrawal_step(shelf, job, now)
    job["step"] = step.step + 1
    effects = deps.repo.save_withdrawal(job)
    short_cause: ShortageCause = "lot_recalled" if step.cause == "recall" else "lot_quarantined"
    for move in moves:
        if move.status == "reservation_moved":
            effects.emit(domain.ingredients_reserved(move.ref, move.held, now))
            continue
        effects.emit(domain.ingredient_shortage(move.ref, move.missing or {}, {job["ingredient"]: job["unit"]}, short_cause, now))
        if move.released:
            effects.emit(domain.reservation_released(move.ref, move.released, "lot_withdrawn", now))
    if job["phase"] != "done":
        effects.emit(step.model_copy(update={"step": step.step + 1, "requested_at": now}))
        effects.outcome = "withdrawal-step"
        return effects
    effects.emit(domain.lot_quarantined(job))
    effects.outcome = "quarantined"
    return effects + await watch(deps, shelf, {step.ingredient}, event, now)


@handlers.every(SCAN_SECONDS)
async def scan_lots(deps: Deps, now: datetime) -> list[tuple[str, Effects]]:
    """Expiry warnings and StockLow over the lots in play (the stock book's), read to their real end; the
    heads found behind are brought up to date."""
    today = today_of(now)
    shelf = deps.shelf()
    book = await shelf.book()
    await shelf.load((m.lot_number for m in book.lots.values()), exact=True)
    levels = await shelf_levels(shelf, book, today)
    pairs = [(f"expiring|{soon.lot_number}", Effects().emit(soon)) for soon in domain.lots_expiring(levels, deps.config, today, now)]
    lows = await stock_watch(shelf, deps.config, {lot.ingredient for lot in levels}, "scan", today, now)
    pairs += [(f"stock-low|{low.ingredient}|{n}", Effects().emit(low)) for n, low in lows]
    await shelf.flush()
    return pairs


# -- the stock forecast ----------------------------------------------------------------------------------


@handlers.on(StockForecastRequested)
async def on_stock_forecast_requested(event: CloudEvent[StockForecastRequested], deps: Deps) -> Effects:
    """The forecast now, of one ingredient or of every one stocked; an ingredient not stocked is rejected."""
    request = event.data
    stocked = [i.code for i in deps.config.ingredients]
    if request.ingredient is not None and request.ingredient not in stocked:
        raise Rejected("unknown-ingredient", f"{request.ingredient} is not stocked; forecasts are for: {', '.join(stocked)}"[:300])
    codes = [request.ingredient] if request.ingredient is not None else stocked
    now = deps.clock.now()
    found = await stock_forecasts(deps.shelf(), deps.config, codes, request.weeks, today_of(now), now, request.request_id)
    effects = Effects()
    for forecast in found:
        effects += _published(forecast)
    effects.outcome = "forecast"
    return effects


def _published(forecast: StockForecast) -> Effects:
    """The forecast, and the shortage warning beside it when it falls short."""
    effects = Effects().emit(forecast)
    warning = domain.shortage_forecast(forecast)
    if warning is not None:
        effects.emit(warning)
    return effects


@handlers.every(FORECAST_CHECK_SECONDS)
async def publish_forecasts(deps: Deps, now: datetime) -> list[tuple[str, Effects]]:
    """Every ISO week, once, the forecast of every ingredient stocked for ``forecast_weeks`` weeks ahead (and
    its shortage warnings). Until it is out, each run costs one ``_id`` read."""
    today = today_of(now)
    week = week_of(today)
    if await deps.repo.forecast_published(week):
        return []
    codes = [i.code for i in deps.config.ingredients]
    found = await stock_forecasts(deps.shelf(), deps.config, codes, deps.config.forecast_weeks, today, now)
    pairs = [(f"forecast|{week.isoformat()}|{forecast.ingredient}", _published(forecast)) for forecast in found]
    pairs.append((f"forecast|{week.isoformat()}", deps.repo.mark_forecast_published(week, codes, now)))
    return pairs
