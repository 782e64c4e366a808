"""Moving stock on one event's shelf (shelf.py): a session's reservation, release and consumption, a
delivery, a lot's withdrawal, the StockLow an event's movements cause, and the stock forecast. The rules are domain.py's;
what is written here is written through the shelf's ledger inserts and the named ``Claims``.

A round is one event's attempt at a session's stock (``round_id`` derives from the event). Every movement
names its round in its cause, so a re-run after a crash recognises what its round did. What the session
holds comes from its document (``Session.holds``), which its events keep up to date through their
Effects; the ledger refuses any movement decided from a holding that has moved on since. That record is
behind only when a round's Effects were never applied (a crash), or when a withdrawal moved the session;
then the session's entries are read back from the ledger instead (``Shelf.search``):
- a reservation writes its round on the session's document before it moves stock (``Claims.round``), so
  its re-run, or the session's next event, sees it unfinished;
- a withdrawal leaves its lot withdrawn, which the session's next event sees on the lot's head;
- anything else shows up as a refused insert.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from services.inventory import domain
from services.inventory.config import InventoryConfig
from services.inventory.domain import (
    EPS,
    Consumed,
    Crossing,
    Entry,
    Hold,
    Holding,
    Job,
    Lot,
    LotMeta,
    LotState,
    LotStock,
    Move,
    Movement,
    Outcome,
    Session,
    SessionRef,
    ShortageCause,
    Version,
    WithdrawalKind,
    allocate,
    by_ingredient,
    crossed,
    fefo,
    level,
    lot_of,
    meta_of,
    out_of_play,
    q,
    rearmed,
    recheck,
    reorder_signal,
    session_day,
    shortage_cause,
    state_of,
    stock_low,
)
from services.inventory.shelf import MAX_ATTEMPTS, Earlier, LedgerContention, Made, Request, Shelf
from shared.contracts.inventory import StockForecast, StockLow

TERMINAL = ("released", "consumed")

# -- rounds --------------------------------------------------------------------------------------------


async def begin(shelf: Shelf, ref: SessionRef, session: Session | None, lots: Iterable[str] = ()) -> str | None:
    """Know what the session holds, and read its lots and ``lots``. Returns the unfinished round, if any."""
    left = domain.unfinished(session)
    holds = session.holds if session is not None else {}
    shelf.seed(ref.session_id, holds)
    held = {n for n, h in holds.items() if h.amount > EPS}
    await shelf.load({*lots, *held})
    if left is not None or any((shelf.known(n) or {}).get("withdrawn") for n in held):
        await shelf.search(ref.session_id)
        await shelf.load(shelf.holdings(ref.session_id))
    return left


async def ahead(shelf: Shelf, ref: SessionRef, round_id: str, left: str | None) -> None:
    """Write the reservation's round on the session's document before it moves stock (once)."""
    if left != round_id:
        await shelf.claims.round(ref, round_id)


def release(ref: SessionRef, round_id: str, meta: LotMeta, amount: float | None = None, **extra: Any) -> Request:
    return Request(
        meta, f"release|{ref.session_id}|{round_id}|{meta.lot_number}", lambda state, held: domain.release(state, held, amount), ref,
        repeatable=True, extra={"round": round_id, **extra},
    )


async def release_all(shelf: Shelf, ref: SessionRef, round_id: str, now: datetime, **extra: Any) -> None:
    """Release everything the session holds (a refused insert may show it holds more than it knew)."""
    for _ in range(MAX_ATTEMPTS):
        held = shelf.holdings(ref.session_id)
        if not held:
            return
        await shelf.append_many([release(ref, round_id, h.meta, **extra) for h in held.values()], now)
    raise LedgerContention(f"{ref.session_id}: still holds stock after {MAX_ATTEMPTS} releases")


def released_in(shelf: Shelf, session_id: str, round_id: str) -> tuple[Holding, ...]:
    return domain.released_in(shelf.entries_of(session_id, round=round_id))


def taken_in(shelf: Shelf, session_id: str, round_id: str) -> dict[str, float]:
    return domain.taken_in(shelf.entries_of(session_id, round=round_id))


# -- a session's reservation, release and consumption -------------------------------------------------


async def reserve_session(
    shelf: Shelf, ref: SessionRef, needs: dict[str, float], round_id: str, today: date, now: datetime, session: Session | None,
) -> Outcome:
    """Make the session hold exactly its cocktail, FEFO from lots in date on its day; all or nothing.
    ``session`` is the session as the handler read it (None: inventory never saw it)."""
    session_id = ref.session_id
    book = await shelf.book()
    in_play = {m.lot_number: m for m in book.lots_of(needs)}
    left = await begin(shelf, ref, session, set(in_play))
    if left == round_id:
        marker = next((e for e in shelf.entries_of(session_id, round=round_id, kind="release") if e.get("shortage_cause")), None)
        if marker is not None:  # this round already gave up before a crash: finish giving up the same way
            return await _give_up(shelf, ref, round_id, left, _missing(marker), marker["shortage_cause"], now)
    held = shelf.holdings(session_id)
    metas = {**{n: h.meta for n, h in held.items()}, **in_play}
    lots = [lot_of(m, shelf.known(n)) for n, m in metas.items()]
    day = session_day(ref.scheduled_for)
    check = recheck(needs, list(held.values()), {lot.lot_number for lot in lots if lot.withdrawn}, day)
    plan = allocate(check.needs, lots, day)
    if not plan.complete:
        return await _give_up(shelf, ref, round_id, left, plan.missing, shortage_cause(check.needs, lots, day, today), now)
    if check.needs or check.release:
        await ahead(shelf, ref, round_id, left)
    missing = await take(shelf, ref, round_id, check.needs, lots, day, now)
    if missing:  # another session got there first
        return await _give_up(shelf, ref, round_id, round_id, missing, "insufficient_stock", now)
    await shelf.append_many([release(ref, round_id, h.meta, h.amount) for h in check.release], now)
    await shelf.flush()
    return Outcome(held=tuple(shelf.holdings(session_id).values()), released=check.release)


async def take(shelf: Shelf, ref: SessionRef, round_id: str, needs: dict[str, float], lots: list[Lot], day: date, now: datetime) -> dict[str, float]:
    """Reserve each need FEFO; what could not be had is returned. Planned from the lot entries this event
    read and made in one insert; where a lot moved meanwhile, the rest is reserved live, lot by lot."""
    got: dict[str, float] = {}

    def count(made: Made) -> float:
        if not isinstance(made, dict):
            return 0.0
        amount: float = made["amount"]
        got[made["ingredient"]] = q(got.get(made["ingredient"], 0.0) + amount)
        return amount

    planned = []
    for ingredient, needed in needs.items():
        remaining = needed
        for lot in fefo(lots, ingredient, day):
            if remaining <= EPS:
                break
            if (movement := domain.reserve(state_of(shelf.known(lot.lot_number)), remaining)) is not None:
                planned.append(_reservation(ref, round_id, lot, movement.amount))
                remaining = q(remaining - movement.amount)
    for made in await shelf.append_many(planned, now):
        count(made)
    for ingredient, needed in needs.items():
        remaining = q(needed - got.get(ingredient, 0.0))
        for lot in fefo(lots, ingredient, day):
            if remaining <= EPS:
                break
            r = _reservation(ref, round_id, lot, remaining)
            remaining = q(remaining - count(await shelf.append(r.meta, r.cause, r.decide, now, ref, repeatable=True, **r.extra)))
        if remaining > EPS:
            return {ingredient: remaining}
    return {}


def _reservation(ref: SessionRef, round_id: str, lot: Lot, wanted: float) -> Request:
    return Request(
        lot.meta, f"reserve|{ref.session_id}|{round_id}|{lot.lot_number}",
        lambda state, held: domain.reserve(state, wanted), ref, repeatable=True, extra={"round": round_id},
    )


async def _give_up(
    shelf: Shelf, ref: SessionRef, round_id: str, left: str | None, missing: dict[str, float], cause: ShortageCause, now: datetime
) -> Outcome:
    """Nothing is reserved for a session that is short: release all it holds. Every release carries the
    decision, so a re-run after a crash reaches the same one."""
    if shelf.holdings(ref.session_id):
        await ahead(shelf, ref, round_id, left)
    decision = {"shortage_cause": cause, "missing": [{"ingredient": i, "amount": a} for i, a in missing.items()]}
    await release_all(shelf, ref, round_id, now, **decision)
    await shelf.flush()
    return Outcome(missing=missing, shortage_cause=cause, released=released_in(shelf, ref.session_id, round_id))


async def release_session(shelf: Shelf, ref: SessionRef, round_id: str, now: datetime, session: Session | None) -> Outcome:
    await begin(shelf, ref, session)
    await release_all(shelf, ref, round_id, now)
    await shelf.flush()
    return Outcome(released=released_in(shelf, ref.session_id, round_id))


def _consume(state: LotState, held: float, amount: float) -> Movement | None:
    return domain.consume(state, held, amount)


async def consume_session(
    shelf: Shelf, ref: SessionRef, used: dict[str, float], metas: dict[str, LotMeta], round_id: str, now: datetime, session: Session | None
) -> list[Consumed]:
    """The session's holdings end; what was used leaves the shelf (``metas`` describes the used lots)."""
    await begin(shelf, ref, session, set(used))
    held = shelf.holdings(ref.session_id)
    numbers = sorted({*used, *held})
    described = {n: metas.get(n) or held[n].meta for n in numbers}
    requests = [
        Request(described[n], f"consume|{ref.session_id}|{n}", functools.partial(_consume, amount=used.get(n, 0.0)), ref, extra={"round": round_id})
        for n in numbers
    ]
    lines = []
    for made in await shelf.append_many(requests, now):
        entry = made.entry if isinstance(made, Earlier) else made  # an Earlier one was made by a run that crashed
        if entry is not None:
            meta = meta_of(entry)
            lines.append(Consumed(meta.ingredient, meta.lot_number, meta.unit, entry["amount"], -entry["held_delta"]))
    await shelf.flush()
    return lines


def _missing(marker: Entry) -> dict[str, float]:
    return {m["ingredient"]: m["amount"] for m in marker["missing"]}


# -- deliveries ---------------------------------------------------------------------------------------


async def receive_stock(shelf: Shelf, lot: LotMeta, quantity: float, delivery_id: str, today: date, now: datetime) -> None:
    """The lot joins the stock book, then the receipt goes on the ledger. The book is updated first, so a
    lot never holds stock that reservations cannot find; a re-run after a crash between the two finds the
    lot in the book and makes the receipt (once: its cause is unique). The same update drops the
    ingredient's lots that are out of play, so the book stays as small as the shelf. Deliveries are keyed
    by ingredient, so one ingredient's deliveries arrive one at a time."""
    book = await shelf.book()
    others = [m for m in book.lots_of({lot.ingredient}) if m.lot_number != lot.lot_number]
    await shelf.load((m.lot_number for m in others), exact=True)
    spent = [m.lot_number for m in others if out_of_play(m, shelf.known(m.lot_number), today)]

    def edit(version: Version) -> Version:
        return version.with_lots(add=[lot], drop=spent)

    await shelf.change_book(edit)
    await shelf.append(lot, f"receive|{delivery_id}|{lot.lot_number}", lambda state, held: domain.receive(state, quantity), now, delivery_id=delivery_id)
    await shelf.flush()


# -- withdrawing a lot --------------------------------------------------------------------------------
#
# The withdrawal (quarantine after adverse events, or a recall) is itself a ledger entry, so once it is in
# no reservation can follow it on that lot, and every session holding the lot holds it in the entries
# before it. One withdrawal per lot and cause kind: the event whose key is on that entry owns it and is the
# only one to announce it. The rest is done in bounded steps (``withdrawal_step``, one LotWithdrawalStep
# event each, its state in a ``withdrawals`` document): walk the lot's entries before the withdrawal by
# ``_id`` to find who holds it, move a few sessions per step, walk the lot's consumptions back. No step
# reads more than a slice, and nothing searches the ledger except a step re-run after a crash.

SCAN_SLICE = 100
"""Ledger entries of the lot read per step, in one read by ``_id`` (``$in``)."""
MOVE_BATCH = 10
"""Sessions moved to other lots per step."""
WALK_SLICE = 100
"""Consumption entries walked back per step."""


async def withdraw_entry(shelf: Shelf, lot: Lot, kind: WithdrawalKind, owner: str, now: datetime, **extra: Any) -> Entry | None:
    """Withdraw the lot (one ledger entry); its entry, or None when another event owns this withdrawal."""
    meta = lot.meta
    made = await shelf.append(meta, f"withdraw|{lot.lot_number}|{kind}", lambda state, held: domain.withdraw(state), now, by=owner, withdrawal=kind, **extra)
    entry = made if isinstance(made, dict) else None
    if entry is None:  # made by an earlier run: the lot's latest entry says where
        latest = await shelf.entry(lot.lot_number, exact=True)
        assert latest is not None
        entry = await shelf.repo.entry(lot.lot_number, latest["withdrawals"][kind])
        assert entry is not None
    await shelf.flush()
    return entry if entry["by"] == owner else None


async def withdrawal_step(shelf: Shelf, job: Job, now: datetime) -> tuple[Job, list[Move]]:
    """One bounded step of the withdrawal ``job`` (domain.withdrawal_job); the job as it stands after it."""
    job = dict(job)
    meta = LotMeta(job["lot"], job["ingredient"], job["unit"], date.fromisoformat(job["expires_on"]))
    moves: list[Move] = []
    if job["phase"] == "scan":
        start, end = job["cursor"], min(job["cursor"] + SCAN_SLICE, job["seq"])
        holders = dict(job["holders"])
        for entry in await shelf.repo.entries(meta.lot_number, range(start, end)):
            if entry is None or entry.get("session_id") is None:
                continue
            holders[entry["session_id"]] = {
                "hold": entry["hold"], "held": entry["held"], "patient_id": entry["patient_id"], "course_id": entry["course_id"],
                "scheduled_for": entry["scheduled_for"],
            }
        holders = {s: h for s, h in holders.items() if h["held"] > EPS}
        job.update(holders=holders, cursor=end)
        if end >= job["seq"]:
            job.update(phase="move", pending=sorted(holders))
    elif job["phase"] == "move":
        moved = list(job["moved"])
        for session_id in job["pending"][:MOVE_BATCH]:
            holder = job["holders"][session_id]
            if (move := await _move(shelf, meta, job["kind"], session_id, holder, now)) is not None:
                moves.append(move)
                moved.append({"session_id": session_id, "patient_id": move.ref.patient_id, "scheduled_for": move.ref.scheduled_for, "status": move.status})
        job.update(moved=moved, pending=job["pending"][MOVE_BATCH:])
        if not job["pending"]:
            job.update(phase="administered", cursor=job["last_consume"])
    elif job["phase"] == "administered":
        administered = list(job["administered"])
        seq = job["cursor"]
        for _ in range(WALK_SLICE):
            if seq is None:
                break
            entry = await shelf.repo.entry(meta.lot_number, seq)
            assert entry is not None
            administered.append({"session_id": entry["session_id"], "patient_id": entry["patient_id"], "scheduled_for": entry["scheduled_for"]})
            seq = entry.get("prev_consume")
        job.update(administered=administered, cursor=seq)
        if seq is None:
            job.update(phase="done")
    await shelf.flush()
    return job, moves


async def _move(shelf: Shelf, lot: LotMeta, kind: str, session_id: str, holder: dict[str, Any], now: datetime) -> Move | None:
    """Move one session's holding of the withdrawn lot to other lots, or leave it short (all or nothing).
    What it holds: its document, or the lot's entry the scan found when that is later. A step re-run after a
    crash (its claim ``moving`` already made) reads the session's entries back instead (a search, rare)."""
    session = await shelf.repo.session(session_id)
    if await shelf.claims.moving(lot.lot_number, kind, session_id):
        shelf.seed(session_id, session.holds if session is not None else {})
        shelf.know_hold(session_id, Hold(lot, holder["held"], holder["hold"]))
    else:
        await shelf.search(session_id)
    ref = session.ref if session is not None else SessionRef(session_id, holder["patient_id"], holder["course_id"], holder["scheduled_for"])
    amount = holder["held"]
    round_id = f"move:{lot.lot_number}:{kind}"
    out_cause = f"move-out|{lot.lot_number}|{session_id}|{kind}"
    marker = next((e for e in shelf.entries_of(session_id) if e["cause"] == out_cause), None)
    if marker is None:
        if shelf.hold(session_id, lot).amount <= EPS:  # released meanwhile (cancelled, completed)
            return None
        others = [m for m in (await shelf.book()).lots_of({lot.ingredient}) if m.lot_number != lot.lot_number]
        await shelf.load((m.lot_number for m in others), exact=True)
        need = q(amount - sum(taken_in(shelf, session_id, round_id).values()))
        lots = [lot_of(m, shelf.known(m.lot_number)) for m in others]
        missing = await take(shelf, ref, round_id, {lot.ingredient: need}, lots, session_day(ref.scheduled_for), now) if need > EPS else {}
        # made even when nothing is left to move out, so that a re-run tells its own move-out from a release
        made = await shelf.append(
            lot, out_cause, lambda state, held: domain.release(state, held) or domain.nothing(state), now, ref,
            round=round_id, outcome="shortage" if missing else "reservation_moved", missing=[{"ingredient": i, "amount": a} for i, a in missing.items()],
        )
        marker = made.entry if isinstance(made, Earlier) else made
        assert marker is not None
        if marker["amount"] <= EPS:  # its holding went between our reads: undo what was taken for it
            await _give_back(shelf, ref, round_id, now)
            return None
    if marker["outcome"] == "shortage":
        await release_all(shelf, ref, round_id, now)
        missing = {m["ingredient"]: m["amount"] for m in marker["missing"]}
        return Move(ref, "shortage", missing=missing, released=released_in(shelf, session_id, round_id))
    session = await shelf.repo.session(session_id)
    if session is not None and session.status in TERMINAL:  # cancelled while we moved it: what we took for it goes back
        await _give_back(shelf, ref, round_id, now)
        return None
    return Move(ref, "reservation_moved", held=tuple(shelf.holdings(session_id).values()))


async def _give_back(shelf: Shelf, ref: SessionRef, round_id: str, now: datetime) -> None:
    holds = shelf.holds(ref.session_id)
    taken = taken_in(shelf, ref.session_id, round_id)
    await shelf.append_many([release(ref, round_id, holds[n].meta, amount) for n, amount in sorted(taken.items())], now)


# -- stock levels and StockLow ------------------------------------------------------------------------
#
# StockLow once per crossing: a crossing is a claim made by a unique insert (``<ingredient>|low|<n>``,
# re-armed by ``<ingredient>|armed|<n>``, ``Claims.crossing``/``Claims.rearm``): stock of one ingredient
# moves under many patients' events on several instances at once, so a state document updated by each
# would not say "once". The stock book mirrors where each ingredient stands (crossings so far, re-armed,
# cause of the last one), so no event looks through the claims; it is set after the claim, and an event
# that finds its claim already taken brings the book up to the claim.


async def shelf_levels(shelf: Shelf, book: Version, today: date, ingredients: set[str] | None = None) -> list[LotStock]:
    """The lots in play (the stock book's), as this event's shelf sees them: what an event needs for
    StockLow and the expiry scan, without reading every lot ever received."""
    metas = book.lots_of(book.ingredients() if ingredients is None else ingredients)
    await shelf.load(m.lot_number for m in metas)
    return [level(m, shelf.known(m.lot_number), today) for m in metas]


async def stock_watch(shelf: Shelf, config: InventoryConfig, ingredients: set[str], cause: str, today: date, now: datetime) -> list[tuple[int, StockLow]]:
    """The StockLow events ``cause`` is to announce, with their crossing numbers."""
    book = await shelf.book()
    totals = by_ingredient(await shelf_levels(shelf, book, today, ingredients))
    found = []
    for code in sorted(ingredients):
        ingredient = config.ingredient(code)
        if ingredient is None or code not in totals:
            continue
        alert = book.alert(code)
        stock = totals[code]
        signal = reorder_signal(stock.available, ingredient.reorder_point, alert.armed)
        claim: Crossing | None = None
        if signal == "low":
            n = alert.n + 1
            mine = Crossing(code, n, cause, now, stock.unit, stock.on_hand, stock.reserved, stock.available, ingredient.reorder_point)
            claim = await shelf.claims.crossing(mine)
            book = await shelf.change_book(crossed(code, n, claim.cause))
        elif signal == "rearm":
            await shelf.claims.rearm(code, alert.n, cause, now)
            book = await shelf.change_book(rearmed(code, alert.n))
        alert = book.alert(code)
        if alert.n and alert.cause == cause:
            if claim is None or claim.n != alert.n:
                claim = await shelf.repo.crossing(code, alert.n)
            if claim is not None and claim.cause == cause:
                found.append((alert.n, stock_low(claim)))
    return found


# -- the stock forecast -------------------------------------------------------------------------------


async def stock_forecasts(
    shelf: Shelf, config: InventoryConfig, codes: list[str], weeks: int, today: date, now: datetime, request_id: str | None = None
) -> list[StockForecast]:
    """The forecast of each ingredient in ``codes`` (stocked ones): its lots in play (the stock book's, read
    to their real end) and the demand of the ``weeks`` ISO weeks from today's, one document per week. Reads
    are bounded by the lots in play and the horizon; nothing here reads a session or searches the ledger."""
    book = await shelf.book()
    await shelf.load((m.lot_number for m in book.lots_of(set(codes))), exact=True)
    levels = await shelf_levels(shelf, book, today, set(codes))
    demands = await asyncio.gather(*(shelf.repo.week_demand(week) for week in domain.horizon(today, weeks)))
    await shelf.flush()
    found = []
    for code in codes:
        ingredient = config.ingredient(code)
        if ingredient is not None:
            found.append(domain.stock_forecast(ingredient, [lot for lot in levels if lot.ingredient == code], demands, today, now, request_id, len(codes)))
    return found
