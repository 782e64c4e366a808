"""Withdrawing a lot (quarantine after adverse events, or a recall) and moving what it was reserved for.

The withdrawal is itself a ledger entry, so once it is in no reservation can follow it on that lot, and
every session holding the lot holds it in the entries before it. One withdrawal per lot and cause kind:
the event whose key is on that entry owns it and is the only one to announce it.

A withdrawal is a rare operator path, so it reads the ledger back where it needs to: the lot's holders,
and each of them's entries (exact even when the session's own record is behind or a crash interrupted a
previous run). The session's next event finds the lot withdrawn and reads its entries back the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.inventory import balance
from services.inventory.balance import EPS, LotState, Movement, q
from services.inventory.domain import Holding, Lot, LotMeta, session_day
from services.inventory.ledger import SessionRef, lot_of
from services.inventory.repository import Repository
from services.inventory.reservations import take
from services.inventory.rounds import release, release_all, released_in, taken_in
from services.inventory.shelf import Earlier, Shelf

Kind = Literal["adverse_events", "recall"]
TERMINAL = ("released", "consumed")


@dataclass(frozen=True)
class Move:
    ref: SessionRef
    status: Literal["reservation_moved", "shortage"]
    held: tuple[Holding, ...] = ()
    missing: dict[str, float] | None = None
    released: tuple[Holding, ...] = ()


@dataclass(frozen=True)
class Withdrawal:
    lot: Lot
    entry: dict[str, Any]
    moves: list[Move]
    administered: list[dict[str, Any]]


async def withdraw_lot(repo: Repository, shelf: Shelf, lot: Lot, kind: Kind, owner: str, now: datetime, **extra: Any) -> Withdrawal | None:
    """Withdraw the lot and move its reservations; None when another event owns this withdrawal."""
    meta = LotMeta(lot.lot_number, lot.ingredient, lot.unit, lot.expires_on)
    entry = await shelf.append(meta, f"withdraw|{lot.lot_number}|{kind}", lambda state, held: balance.withdraw(state), now, by=owner, withdrawal=kind, **extra)
    if not isinstance(entry, dict):  # made by an earlier run: the lot's latest entry says where
        latest = await shelf.entry(lot.lot_number, exact=True)
        entry = await repo.ledger.entry(lot.lot_number, latest["withdrawals"][kind])  # type: ignore[index]
        assert entry is not None
    if entry["by"] != owner:
        return None
    moves = []
    for session_id, amount in (await repo.ledger.holders(lot.lot_number, entry["seq"])).items():
        if (move := await _move(repo, shelf, meta, kind, session_id, amount, now)) is not None:
            moves.append(move)
    administered = await _administered(repo, shelf, lot.lot_number)
    await shelf.flush()
    return Withdrawal(lot, entry, moves, administered)


async def _move(repo: Repository, shelf: Shelf, lot: LotMeta, kind: str, session_id: str, amount: float, now: datetime) -> Move | None:
    """Move one session's holding of the withdrawn lot to other lots, or leave it short (all or nothing)."""
    session = await repo.session(session_id)
    await shelf.search(session_id)
    ref = _ref(shelf, session_id, session)
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
            lot, out_cause, lambda state, held: balance.release(state, held) or _nothing(state), now, ref,
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
    session = await repo.session(session_id)
    if session is not None and session.get("status") in TERMINAL:  # cancelled while we moved it: what we took for it goes back
        await _give_back(shelf, ref, round_id, now)
        return None
    return Move(ref, "reservation_moved", held=tuple(shelf.holdings(session_id).values()))


def _nothing(state: LotState) -> Movement:
    return Movement(balance.Kind.RELEASE, 0.0, 0.0, state)


async def _give_back(shelf: Shelf, ref: SessionRef, round_id: str, now: datetime) -> None:
    holds = shelf.holds(ref.session_id)
    taken = taken_in(shelf, ref.session_id, round_id)
    await shelf.append_many([release(ref, round_id, holds[n].meta, amount) for n, amount in sorted(taken.items())], now)


def _ref(shelf: Shelf, session_id: str, session: dict[str, Any] | None) -> SessionRef:
    """The session as its own events last described it (a reschedule moves its day)."""
    if session is None:  # never expected (a round writes the document before it takes stock): its entries say
        session = shelf.entries_of(session_id)[-1]
    return SessionRef(session_id, session["patient_id"], session["course_id"], session["scheduled_for"])


async def _administered(repo: Repository, shelf: Shelf, lot_number: str) -> list[dict[str, Any]]:
    """The lot's consumption entries for sessions that used some of it, newest first: a walk back along
    the chain each consumption keeps to the previous one."""
    found = []
    seq = ((await shelf.entry(lot_number, exact=True)) or {}).get("last_consume")
    while seq is not None:
        entry = await repo.ledger.entry(lot_number, seq)
        assert entry is not None
        found.append(entry)
        seq = entry.get("prev_consume")
    return found
