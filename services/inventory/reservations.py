"""Reserving, releasing and consuming a session's stock on the ledger, one round at a time (rounds.py)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.inventory import balance
from services.inventory.balance import EPS, q
from services.inventory.domain import Holding, Lot, LotMeta, allocate, fefo, recheck, session_day, shortage_cause
from services.inventory.ledger import SessionRef, lot_of, meta_of, state_of
from services.inventory.repository import Repository
from services.inventory.rounds import ahead, begin, meta_of_holding, release, release_all, released_in
from services.inventory.shelf import Earlier, Made, Request, Shelf


@dataclass(frozen=True)
class Outcome:
    held: tuple[Holding, ...] = ()
    """What the session holds afterwards (empty after a shortage)."""
    missing: dict[str, float] = field(default_factory=dict)
    shortage_cause: str | None = None
    released: tuple[Holding, ...] = ()
    """What this round gave back to stock."""

    @property
    def short(self) -> bool:
        return bool(self.missing)

    @property
    def ingredients(self) -> set[str]:
        return {h.ingredient for h in (*self.held, *self.released)} | set(self.missing)


@dataclass(frozen=True)
class Consumed:
    ingredient: str
    lot_number: str
    unit: str
    amount: float
    """Used (taken off the shelf, or recorded as a shortfall)."""
    reserved: float
    """What the session held of the lot until then."""


async def reserve_session(
    repo: Repository, shelf: Shelf, ref: SessionRef, needs: dict[str, float], round_id: str, today: date, now: datetime,
    session: dict[str, Any] | None,
) -> Outcome:
    """Make the session hold exactly its cocktail, FEFO from lots in date on its day; all or nothing.
    ``session`` is the session's document as the handler read it (None: inventory never saw it)."""
    session_id = ref.session_id
    book = await shelf.book()
    in_play = {m.lot_number: m for m in book.lots_of(needs)}
    left = await begin(shelf, ref, session, set(in_play))
    if left == round_id:
        marker = next((e for e in shelf.entries_of(session_id, round=round_id, kind="release") if e.get("shortage_cause")), None)
        if marker is not None:  # this round already gave up before a crash: finish giving up the same way
            return await _give_up(repo, shelf, ref, round_id, left, _missing(marker), marker["shortage_cause"], now)
    held = shelf.holdings(session_id)
    metas = {**{n: meta_of_holding(h) for n, h in held.items()}, **in_play}
    lots = [lot_of(m, shelf.known(n)) for n, m in metas.items()]
    day = session_day(ref.scheduled_for)
    check = recheck(needs, list(held.values()), {lot.lot_number for lot in lots if lot.withdrawn}, day)
    plan = allocate(check.needs, lots, day)
    if not plan.complete:
        return await _give_up(repo, shelf, ref, round_id, left, plan.missing, shortage_cause(check.needs, lots, day, today), now)
    if check.needs or check.release:
        await ahead(repo, ref, round_id, left)
    missing = await take(shelf, ref, round_id, check.needs, lots, day, now)
    if missing:  # another session got there first
        return await _give_up(repo, shelf, ref, round_id, round_id, missing, "insufficient_stock", now)
    await shelf.append_many([release(ref, round_id, meta_of_holding(h), h.amount) for h in check.release], now)
    await shelf.flush()
    return Outcome(held=tuple(shelf.holdings(session_id).values()), released=check.release)


async def take(shelf: Shelf, ref: SessionRef, round_id: str, needs: dict[str, float], lots: list[Lot], day: date, now: datetime) -> dict[str, float]:
    """Reserve each need FEFO; what could not be had is returned. Planned from the lot entries this event
    read and made in one insert; where a lot moved meanwhile, the rest is reserved live, lot by lot."""
    got: dict[str, float] = {}

    def count(made: Made) -> float:
        if not isinstance(made, dict):
            return 0.0
        got[made["ingredient"]] = q(got.get(made["ingredient"], 0.0) + made["amount"])
        return made["amount"]

    planned = []
    for ingredient, needed in needs.items():
        remaining = needed
        for lot in fefo(lots, ingredient, day):
            if remaining <= EPS:
                break
            if (movement := balance.reserve(state_of(shelf.known(lot.lot_number)), remaining)) is not None:
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
        LotMeta(lot.lot_number, lot.ingredient, lot.unit, lot.expires_on), f"reserve|{ref.session_id}|{round_id}|{lot.lot_number}",
        lambda state, held: balance.reserve(state, wanted), ref, repeatable=True, extra={"round": round_id},
    )


async def _give_up(
    repo: Repository, shelf: Shelf, ref: SessionRef, round_id: str, left: str | None, missing: dict[str, float], cause: str, now: datetime
) -> Outcome:
    """Nothing is reserved for a session that is short: release all it holds. Every release carries the
    decision, so a re-run after a crash reaches the same one."""
    if shelf.holdings(ref.session_id):
        await ahead(repo, ref, round_id, left)
    decision = {"shortage_cause": cause, "missing": [{"ingredient": i, "amount": a} for i, a in missing.items()]}
    await release_all(shelf, ref, round_id, now, **decision)
    await shelf.flush()
    return Outcome(missing=missing, shortage_cause=cause, released=released_in(shelf, ref.session_id, round_id))


async def release_session(shelf: Shelf, ref: SessionRef, round_id: str, now: datetime, session: dict[str, Any] | None) -> Outcome:
    await begin(shelf, ref, session)
    await release_all(shelf, ref, round_id, now)
    await shelf.flush()
    return Outcome(released=released_in(shelf, ref.session_id, round_id))


def _consume(state: Any, holding: Any, amount: float) -> Any:
    return balance.consume(state, holding, amount)


async def consume_session(
    shelf: Shelf, ref: SessionRef, used: dict[str, float], metas: dict[str, LotMeta], round_id: str, now: datetime, session: dict[str, Any] | None
) -> list[Consumed]:
    """The session's holdings end; what was used leaves the shelf (``metas`` describes the used lots)."""
    await begin(shelf, ref, session, set(used))
    held = shelf.holdings(ref.session_id)
    numbers = sorted({*used, *held})
    described = {n: metas.get(n) or meta_of_holding(held[n]) for n in numbers}
    requests = [
        Request(
            described[n], f"consume|{ref.session_id}|{n}", functools.partial(_consume, amount=used.get(n, 0.0)),
            ref, extra={"round": round_id},
        )
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


def _missing(marker: dict[str, Any]) -> dict[str, float]:
    return {m["ingredient"]: m["amount"] for m in marker["missing"]}
