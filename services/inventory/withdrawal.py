"""Withdrawing a lot (quarantine after adverse events, or a recall) and moving what it was reserved for.

The withdrawal is itself a ledger entry, so once it is in no reservation can follow it on that lot, and
every session holding the lot is found in the entries before it. One withdrawal per lot and cause kind:
the event whose key is on that entry owns it and is the only one to announce it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.inventory import balance
from services.inventory.balance import EPS, q
from services.inventory.domain import Holding, Lot, session_day
from services.inventory.ledger import Ledger, SessionRef
from services.inventory.repository import Repository, meta_of
from services.inventory.reservations import meta_of_holding, released_in, take

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


async def withdraw_lot(repo: Repository, lot: Lot, kind: Kind, owner: str, now: datetime, **extra: Any) -> Withdrawal | None:
    """Withdraw the lot and move its reservations; None when another event owns this withdrawal."""
    ledger = repo.ledger
    entry = await ledger.append(meta_of(lot), f"withdraw|{lot.lot_number}|{kind}", lambda state, held: balance.withdraw(state), now, by=owner, **extra)
    if entry is None or entry["by"] != owner:
        return None
    moves = []
    for _, (ref, _amount) in sorted((await ledger.holders(lot.lot_number, entry["seq"])).items()):
        if (move := await _move(repo, lot, ref, now)) is not None:
            moves.append(move)
    return Withdrawal(lot, entry, moves, await ledger.administered(lot.lot_number))


async def _move(repo: Repository, lot: Lot, holder: SessionRef, now: datetime) -> Move | None:
    """Move one session's holding of the withdrawn lot to other lots, or leave it short (all or nothing)."""
    ledger = repo.ledger
    session_id = holder.session_id
    ref = await repo.session_ref(session_id, holder)
    round_id = f"move:{lot.lot_number}"
    out_cause = f"move-out|{lot.lot_number}|{session_id}"
    marker = await ledger.by_cause(out_cause)
    if marker is None:
        holding = (await ledger.holdings(session_id)).get(lot.lot_number)
        if holding is None:  # released meanwhile (cancelled, completed)
            return None
        already = sum(e["amount"] for e in await ledger.session_entries(session_id, round=round_id, kind="reserve"))
        others = await repo.lots({lot.ingredient})
        missing = await take(ledger, ref, round_id, {lot.ingredient: q(holding.amount - already)}, others, session_day(ref.scheduled_for), now)
        marker = await ledger.append(
            meta_of(lot), out_cause, lambda state, held: balance.release(state, held), now, ref,
            round=round_id, outcome="shortage" if missing else "reservation_moved",
            missing=[{"ingredient": i, "amount": a} for i, a in missing.items()],
        )
        if marker is None:  # its holding went between our reads: undo what was taken for it
            await _release_all(ledger, ref, round_id, now)
            return None
    if marker["outcome"] == "shortage":
        await _release_all(ledger, ref, round_id, now)
        missing = {m["ingredient"]: m["amount"] for m in marker["missing"]}
        return Move(ref, "shortage", missing=missing, released=await released_in(ledger, session_id, round_id))
    session = await repo.session(session_id)
    if session is not None and session.get("status") in TERMINAL:
        # cancelled while we moved it: what we took for it goes back
        await _release_all(ledger, ref, round_id, now)
        return None
    return Move(ref, "reservation_moved", held=tuple((await ledger.holdings(session_id)).values()))


async def _release_all(ledger: Ledger, ref: SessionRef, round_id: str, now: datetime) -> None:
    for holding in (await ledger.holdings(ref.session_id)).values():
        if holding.amount > EPS:
            await ledger.append(
                meta_of_holding(holding), f"{round_id}|release|{ref.session_id}|{holding.lot_number}",
                lambda state, held: balance.release(state, held), now, ref, round=round_id,
            )
