"""Reserving, releasing and consuming a session's stock on the ledger.

A *round* is one event's attempt at a session (``round_id`` derives from the event), and every ledger
cause names it, so a handler re-run after a crash continues its own round instead of starting another.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.inventory import balance
from services.inventory.balance import EPS, q
from services.inventory.domain import Holding, Lot, allocate, fefo, recheck, session_day, shortage_cause
from services.inventory.ledger import Ledger, LotMeta, SessionRef, holding_of
from services.inventory.repository import Repository, meta_of


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


def meta_of_holding(holding: Holding) -> LotMeta:
    return LotMeta(holding.lot_number, holding.ingredient, holding.unit, holding.expires_on)


async def reserve_session(repo: Repository, ref: SessionRef, needs: dict[str, float], round_id: str, today: date, now: datetime) -> Outcome:
    """Make the session hold exactly its cocktail, FEFO from lots in date on its day; all or nothing."""
    ledger = repo.ledger
    marker = await _shortage_marker(ledger, ref.session_id, round_id)
    if marker is not None:  # this round already gave up before a crash: finish giving up the same way
        return await _give_up(ledger, ref, round_id, _missing(marker), marker["shortage_cause"], now)
    holdings = await ledger.holdings(ref.session_id)
    day = session_day(ref.scheduled_for)
    lots = await repo.lots({*needs, *(h.ingredient for h in holdings.values())})
    check = recheck(needs, list(holdings.values()), {lot.lot_number for lot in lots if lot.withdrawn}, day)
    plan = allocate(check.needs, lots, day)
    if not plan.complete:
        return await _give_up(ledger, ref, round_id, plan.missing, shortage_cause(check.needs, lots, day, today), now)
    missing = await take(ledger, ref, round_id, check.needs, lots, day, now)
    if missing:  # another session got there first
        return await _give_up(ledger, ref, round_id, missing, "insufficient_stock", now)
    for holding in check.release:
        await ledger.append(
            meta_of_holding(holding), f"release|{ref.session_id}|{round_id}|{holding.lot_number}",
            lambda state, held, amount=holding.amount: balance.release(state, held, amount), now, ref, round=round_id,
        )
    return Outcome(held=tuple((await ledger.holdings(ref.session_id)).values()), released=await released_in(ledger, ref.session_id, round_id))


async def take(ledger: Ledger, ref: SessionRef, round_id: str, needs: dict[str, float], lots: list[Lot], day: date, now: datetime) -> dict[str, float]:
    """Reserve each need live, FEFO; what could not be had is returned. Lots this round already took from
    (before a crash) count in the session's holdings, so they are skipped here."""
    done = {e["lot"] for e in await ledger.session_entries(ref.session_id, round=round_id, kind="reserve")}
    for ingredient, needed in needs.items():
        remaining = needed
        for lot in fefo(lots, ingredient, day):
            if remaining <= EPS:
                break
            if lot.lot_number in done:
                continue
            entry = await ledger.append(
                meta_of(lot), f"reserve|{ref.session_id}|{round_id}|{lot.lot_number}",
                lambda state, held, wanted=remaining: balance.reserve(state, wanted), now, ref, round=round_id,
            )
            if entry is not None:
                remaining = q(remaining - entry["amount"])
        if remaining > EPS:
            return {ingredient: remaining}
    return {}


async def _give_up(ledger: Ledger, ref: SessionRef, round_id: str, missing: dict[str, float], cause: str, now: datetime) -> Outcome:
    """Nothing is reserved for a session that is short: release all it holds. Every release carries the
    decision, so a re-run after a crash reaches the same one."""
    for holding in (await ledger.holdings(ref.session_id)).values():
        await ledger.append(
            meta_of_holding(holding), f"release|{ref.session_id}|{round_id}|{holding.lot_number}",
            lambda state, held: balance.release(state, held), now, ref,
            round=round_id, shortage_cause=cause, missing=[{"ingredient": i, "amount": a} for i, a in missing.items()],
        )
    return Outcome(missing=missing, shortage_cause=cause, released=await released_in(ledger, ref.session_id, round_id))


async def release_session(ledger: Ledger, ref: SessionRef, round_id: str, now: datetime) -> Outcome:
    for holding in (await ledger.holdings(ref.session_id)).values():
        await ledger.append(
            meta_of_holding(holding), f"release|{ref.session_id}|{round_id}|{holding.lot_number}",
            lambda state, held: balance.release(state, held), now, ref, round=round_id,
        )
    return Outcome(released=await released_in(ledger, ref.session_id, round_id))


async def consume_session(repo: Repository, ref: SessionRef, used: dict[str, float], now: datetime) -> list[dict[str, Any]]:
    """The session's holdings end; what was used leaves the shelf. Returns the consumption entries."""
    ledger = repo.ledger
    lots = {*used, *(await ledger.holdings(ref.session_id))}
    for lot_number in sorted(lots):
        lot = await repo.lot(lot_number)
        if lot is None:  # held lots always exist; used ones were checked by the handler
            continue
        await ledger.append(
            meta_of(lot), f"consume|{ref.session_id}|{lot_number}",
            lambda state, held, amount=used.get(lot_number, 0.0): balance.consume(state, held, amount), now, ref,
        )
    return await ledger.session_entries(ref.session_id, kind="consume")


async def released_in(ledger: Ledger, session_id: str, round_id: str) -> tuple[Holding, ...]:
    """What the round gave back, net of what the same round took (a reservation undone within a round
    was never announced)."""
    entries = await ledger.session_entries(session_id, round=round_id)
    net: dict[str, float] = defaultdict(float)
    last: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry["kind"] in ("reserve", "release"):
            net[entry["lot"]] -= entry["held_delta"]
            last[entry["lot"]] = entry
    return tuple(holding_of(last[lot], amount) for lot, amount in net.items() if amount > EPS)


async def _shortage_marker(ledger: Ledger, session_id: str, round_id: str) -> dict[str, Any] | None:
    for entry in await ledger.session_entries(session_id, round=round_id, kind="release"):
        if entry.get("shortage_cause"):
            return entry
    return None


def _missing(entry: dict[str, Any]) -> dict[str, float]:
    return {m["ingredient"]: m["amount"] for m in entry["missing"]}
