"""A round: one event's attempt at a session's stock (``round_id`` derives from the event).

Every movement names its round in its cause, so a re-run after a crash recognises what its round did.
What the session holds comes from its document (``holds``), which its events keep up to date through
their Effects; the ledger refuses any movement decided from a holding that has moved on since (ledger.py).
That record is behind only when a round's Effects were never applied (a crash), or when a withdrawal moved
the session; then the session's entries are read back from the ledger instead (``Shelf.search``):
- a reservation writes its round on the session's document before it moves stock, so its re-run, or the
  session's next event, sees it unfinished;
- a withdrawal leaves its lot withdrawn, which the session's next event sees on the lot's head;
- anything else shows up as a refused insert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.inventory import balance
from services.inventory.balance import EPS, q
from services.inventory.domain import Holding, LotMeta
from services.inventory.ledger import SessionRef, meta_of
from services.inventory.repository import Repository, decode_holds
from services.inventory.shelf import MAX_ATTEMPTS, LedgerContention, Request, Shelf


def unfinished(session: dict[str, Any] | None) -> str | None:
    """The round a reservation began on the session whose event's Effects were never applied."""
    found = (session or {}).get("round")
    return None if not found or found.get("done") else found["id"]


async def begin(shelf: Shelf, ref: SessionRef, session: dict[str, Any] | None, lots: Iterable[str] = ()) -> str | None:
    """Know what the session holds, and read its lots and ``lots``. Returns the unfinished round, if any."""
    left = unfinished(session)
    holds = decode_holds((session or {}).get("holds"))
    shelf.seed(ref.session_id, holds)
    held = {n for n, h in holds.items() if h.amount > EPS}
    await shelf.load({*lots, *held})
    if left is not None or any((shelf.known(n) or {}).get("withdrawn") for n in held):
        await shelf.search(ref.session_id)
        await shelf.load(shelf.holdings(ref.session_id))
    return left


async def ahead(repo: Repository, ref: SessionRef, round_id: str, left: str | None) -> None:
    """Write the reservation's round on the session's document before it moves stock (once)."""
    if left != round_id:
        await repo.begin_round(ref, round_id)


def release(ref: SessionRef, round_id: str, meta: LotMeta, amount: float | None = None, **extra: Any) -> Request:
    return Request(
        meta, f"release|{ref.session_id}|{round_id}|{meta.lot_number}", lambda state, held: balance.release(state, held, amount), ref,
        repeatable=True, extra={"round": round_id, **extra},
    )


async def release_all(shelf: Shelf, ref: SessionRef, round_id: str, now: datetime, **extra: Any) -> None:
    """Release everything the session holds (a refused insert may show it holds more than it knew)."""
    for _ in range(MAX_ATTEMPTS):
        held = shelf.holdings(ref.session_id)
        if not held:
            return
        await shelf.append_many([release(ref, round_id, meta_of_holding(h), **extra) for h in held.values()], now)
    raise LedgerContention(f"{ref.session_id}: still holds stock after {MAX_ATTEMPTS} releases")


def released_in(shelf: Shelf, session_id: str, round_id: str) -> tuple[Holding, ...]:
    """What the round gave back, net of what the same round took (a reservation undone within a round
    was never announced)."""
    net: dict[str, float] = defaultdict(float)
    last: dict[str, dict[str, Any]] = {}
    for entry in shelf.entries_of(session_id, round=round_id):
        if entry["kind"] in ("reserve", "release"):
            net[entry["lot"]] -= entry["held_delta"]
            last[entry["lot"]] = entry
    return tuple(_holding(last[n], amount) for n, amount in sorted(net.items()) if amount > EPS)


def taken_in(shelf: Shelf, session_id: str, round_id: str) -> dict[str, float]:
    """What the round reserved and still holds, per lot."""
    net: dict[str, float] = defaultdict(float)
    for entry in shelf.entries_of(session_id, round=round_id):
        if entry["kind"] in ("reserve", "release"):
            net[entry["lot"]] += entry["held_delta"]
    return {n: q(amount) for n, amount in net.items() if amount > EPS}


def meta_of_holding(holding: Holding) -> LotMeta:
    return LotMeta(holding.lot_number, holding.ingredient, holding.unit, holding.expires_on)


def _holding(entry: dict[str, Any], amount: float) -> Holding:
    m = meta_of(entry)
    return Holding(m.ingredient, m.lot_number, m.unit, m.expires_on, q(amount))
