"""Inventory's reactions to a session's life: decode, move stock on the ledger, return effects.

Each handler reads the session's document and the stock book once, and the lots it touches by ``_id``
(``Shelf``); nothing here searches a collection that grows with the clinic's history.

The lot-side reactions (deliveries, recalls, escalations, the expiry scan) are in lot_handlers.py.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from services.inventory import messages
from services.inventory.alerts import stock_watch
from services.inventory.domain import LotMeta, needs_of
from services.inventory.ledger import SessionRef
from services.inventory.reservations import consume_session, release_session, reserve_session
from services.inventory.rounds import unfinished
from services.inventory.shelf import Shelf
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

if TYPE_CHECKING:
    from services.inventory.app import Deps

handlers = Handlers("inventory")


def round_of(event: CloudEvent) -> str:
    """Names this event's attempt in ledger causes: the same on every redelivery."""
    return derived_id("round", inbox_id(event)).replace("-", "")[:20]


def today_of(now: datetime) -> date:
    """Expiry dates are compared with the UTC date, like session days (domain.session_day)."""
    return now.date()


async def watch(deps: Deps, shelf: Shelf, ingredients: set[str], event: CloudEvent, now: datetime) -> Effects:
    """StockLow for the ingredients this event moved, when it crossed the reorder point."""
    effects = Effects()
    for _, low in await stock_watch(deps.repo, shelf, deps.config, ingredients, inbox_id(event), today_of(now), now):
        effects.emit(low)
    return effects


@handlers.on(SessionScheduled)
async def on_session_scheduled(event: CloudEvent, deps: Deps) -> Effects:
    booked: SessionScheduled = event.data  # type: ignore[assignment]
    session = await deps.repo.session(booked.session_id)
    if session is not None and unfinished(session) != round_of(event):
        return ignored("already-known")  # a reschedule got here first, or the booking was published twice
    ref = SessionRef(booked.session_id, booked.patient_id, booked.course_id, booked.scheduled_for)
    return await _reserve(event, deps, ref, booked.cocktail, session, announced=False)


@handlers.on(SessionRescheduled)
async def on_session_rescheduled(event: CloudEvent, deps: Deps) -> Effects:
    moved: SessionRescheduled = event.data  # type: ignore[assignment]
    session = await deps.repo.session(moved.session_id)
    if _status(session) == "consumed":
        return ignored("already-consumed")
    ref = SessionRef(moved.session_id, moved.patient_id, moved.course_id, moved.scheduled_for)
    return await _reserve(event, deps, ref, moved.cocktail, session, announced=_status(session) == "reserved")


async def _reserve(event: CloudEvent, deps: Deps, ref: SessionRef, cocktail: tuple[DoseLine, ...], session: dict[str, Any] | None, announced: bool) -> Effects:
    _check_units(deps, cocktail)
    now = deps.clock.now()
    needs = needs_of((line.ingredient, line.amount) for line in cocktail)
    shelf = deps.repo.shelf()
    outcome = await reserve_session(deps.repo, shelf, ref, needs, round_of(event), today_of(now), now, session)
    effects = deps.repo.save_session(ref, "short" if outcome.short else "reserved", now, round_of(event), shelf.holds(ref.session_id), needs)
    if outcome.short:
        units = {line.ingredient: line.unit.value for line in cocktail}
        effects.emit(messages.shortage(ref, outcome.missing, units, outcome.shortage_cause or "insufficient_stock", now))
        if announced and outcome.released:
            effects.emit(messages.released(ref, outcome.released, "session_rescheduled", now))
        effects.outcome = "shortage"
    else:
        effects.emit(messages.reserved(ref, outcome.held, now))
        effects.outcome = "reserved"
    return effects + await watch(deps, shelf, outcome.ingredients, event, now)


def _check_units(deps: Deps, cocktail: tuple[DoseLine, ...]) -> None:
    for line in cocktail:
        ingredient = deps.config.ingredient(line.ingredient)
        if ingredient is not None and ingredient.unit != line.unit:
            raise Rejected("unit-mismatch", f"{line.ingredient} is stocked in {ingredient.unit.value}, not {line.unit.value}")


def _status(session: dict[str, Any] | None) -> str | None:
    """What the session's events last decided (None before any of them was applied)."""
    return None if session is None else session.get("status")


@handlers.on(SessionCancelled)
async def on_session_cancelled(event: CloudEvent, deps: Deps) -> Effects:
    cancelled: SessionCancelled = event.data  # type: ignore[assignment]
    ref = SessionRef(cancelled.session_id, cancelled.patient_id, cancelled.course_id, cancelled.scheduled_for)
    return await _release(event, deps, ref, "session_cancelled", await deps.repo.session(ref.session_id))


@handlers.on(SessionNoShow)
async def on_session_no_show(event: CloudEvent, deps: Deps) -> Effects:
    missed: SessionNoShow = event.data  # type: ignore[assignment]
    ref = SessionRef(missed.session_id, missed.patient_id, missed.course_id, missed.scheduled_for)
    return await _release(event, deps, ref, "no_show", await deps.repo.session(ref.session_id))


@handlers.on(TreatmentPaused)
async def on_treatment_paused(event: CloudEvent, deps: Deps) -> Effects:
    paused: TreatmentPaused = event.data  # type: ignore[assignment]
    effects = Effects(outcome="released")
    for session_id in paused.released_sessions:
        session = await deps.repo.session(session_id)
        if session is None:
            continue
        ref = SessionRef(session_id, paused.patient_id, paused.course_id, session["scheduled_for"])
        effects += await _release(event, deps, ref, "course_paused", session)
    return effects


async def _release(event: CloudEvent, deps: Deps, ref: SessionRef, cause: str, session: dict[str, Any] | None) -> Effects:
    if _status(session) == "consumed":
        return ignored("already-consumed")
    now = deps.clock.now()
    shelf = deps.repo.shelf()
    outcome = await release_session(shelf, ref, round_of(event), now, session)
    effects = deps.repo.save_session(ref, "released", now, round_of(event), shelf.holds(ref.session_id))
    if not outcome.released:
        effects.outcome = "nothing-reserved"
        return effects
    effects.emit(messages.released(ref, outcome.released, cause, now))
    effects.outcome = "released"
    return effects + await watch(deps, shelf, outcome.ingredients, event, now)


@handlers.on(SessionCompleted)
async def on_session_completed(event: CloudEvent, deps: Deps) -> Effects:
    completed: SessionCompleted = event.data  # type: ignore[assignment]
    shelf = deps.repo.shelf()
    await shelf.load(line.lot_number for line in completed.lots_used)
    used: dict[str, float] = {}
    metas: dict[str, LotMeta] = {}
    for line in completed.lots_used:
        lot = await deps.repo.lot(line.lot_number, shelf)
        if lot is None:
            raise Rejected("unknown-lot", line.lot_number)
        if (lot.ingredient, lot.unit) != (line.ingredient, line.unit.value):
            raise Rejected("lot-mismatch", f"{line.lot_number} is {lot.ingredient} in {lot.unit}")
        used[line.lot_number] = round(used.get(line.lot_number, 0.0) + line.amount, 6)
        metas[line.lot_number] = LotMeta(lot.lot_number, lot.ingredient, lot.unit, lot.expires_on)
    session = await deps.repo.session(completed.session_id)
    if _status(session) == "consumed":
        return ignored("already-consumed")
    scheduled_for = session["scheduled_for"] if session is not None else completed.completed_at
    ref = SessionRef(completed.session_id, completed.patient_id, completed.course_id, scheduled_for)
    now = deps.clock.now()
    lines = await consume_session(shelf, ref, used, metas, round_of(event), now, session)
    consumed = sorted({line.lot_number for line in lines if line.amount > 0})
    effects = deps.repo.save_session(ref, "consumed", now, round_of(event), shelf.holds(ref.session_id), consumed=consumed)
    effects.emit(messages.consumed(ref, lines, completed.completed_at))
    effects.outcome = "consumed"
    return effects + await watch(deps, shelf, {line.ingredient for line in lines}, event, now)
