"""Documents in, domain objects out; domain decisions out as Effects. Every read is by ``_id``.

Collections:
- ``lots``: one per lot (ingredient, unit, expiry, status for operators); the first delivery defines it.
- ``ledger`` and ``lot_heads``: the stock movements and each lot's latest state (ledger.py).
- ``stock_book``: the lots in play per ingredient and where StockLow stands (book.py).
- ``sessions``: what inventory knows of a booked session, written by that patient's events only: status,
  cocktail, what it holds of each lot after its latest event with the holding's version (``holds``, see
  ledger.py), and that event's round (``round``: a reservation writes it directly before it moves stock,
  so that a re-run after a crash, or the session's next event, knows the record may be behind; the
  Effects mark it done).
- ``lot_flags`` and ``stock_alerts``: claims shared across patients, made by unique inserts.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.inventory.book import Book
from services.inventory.domain import Lot, LotMeta
from services.inventory.ledger import Hold, Ledger, SessionRef, lot_of, meta_of
from services.inventory.shelf import Shelf
from shared.runtime import Effects

LOTS = "lots"
SESSIONS = "sessions"
FLAGS = "lot_flags"
ALERTS = "stock_alerts"
MAX_FLAGS = 1000


def encode_holds(holds: dict[str, Hold]) -> dict[str, dict[str, Any]]:
    return {
        n: {"ingredient": h.meta.ingredient, "unit": h.meta.unit, "expires_on": h.meta.expires_on.isoformat(), "amount": h.amount, "version": h.version}
        for n, h in holds.items()
    }


def decode_holds(document: dict[str, Any] | None) -> dict[str, Hold]:
    return {
        n: Hold(LotMeta(n, h["ingredient"], h["unit"], date.fromisoformat(h["expires_on"])), h["amount"], h["version"])
        for n, h in (document or {}).items()
    }


class Repository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db
        self.ledger = Ledger(db)
        self.book = Book(db)

    async def ensure_indexes(self) -> None:
        await self.ledger.ensure_indexes()

    def shelf(self) -> Shelf:
        """A fresh view of the lots for one event."""
        return Shelf(self.ledger, self.book)

    # -- lots --------------------------------------------------------------------------------------

    async def lot(self, lot_number: str, shelf: Shelf) -> Lot | None:
        entry = await shelf.entry(lot_number)
        if entry is not None:
            return lot_of(meta_of(entry), entry)
        document = await self.db[LOTS].find_one({"_id": lot_number})
        return None if document is None else Lot(lot_number, document["ingredient"], document["unit"], date.fromisoformat(document["expires_on"]))

    async def claim_lot(self, lot: LotMeta, delivery_id: str, received_at: datetime) -> LotMeta:
        """The first delivery of a lot number defines it (ingredient, unit, expiry). Deliveries of one lot
        number under two ingredients arrive on different partitions, so this is a unique insert."""
        try:
            await self.db[LOTS].insert_one(
                {
                    "_id": lot.lot_number, "ingredient": lot.ingredient, "unit": lot.unit, "expires_on": lot.expires_on.isoformat(),
                    "status": "available", "first_delivery_id": delivery_id, "received_at": received_at,
                }
            )
            return lot
        except DuplicateKeyError:
            document = await self.db[LOTS].find_one({"_id": lot.lot_number})
            assert document is not None
            return LotMeta(lot.lot_number, document["ingredient"], document["unit"], date.fromisoformat(document["expires_on"]))

    def mark_lot(self, lot_number: str, status: str, now: datetime) -> Effects:
        return Effects().merge(LOTS, lot_number, status=status, status_at=now)

    # -- sessions ----------------------------------------------------------------------------------

    async def session(self, session_id: str) -> dict[str, Any] | None:
        return await self.db[SESSIONS].find_one({"_id": session_id})

    async def begin_round(self, ref: SessionRef, round_id: str) -> None:
        """Written directly, before a reservation moves stock: the write-ahead a re-run or the next event reads."""
        fields = {"patient_id": ref.patient_id, "course_id": ref.course_id, "scheduled_for": ref.scheduled_for, "round": {"id": round_id, "done": False}}
        await self.db[SESSIONS].update_one({"_id": ref.session_id}, {"$set": fields}, upsert=True)

    def save_session(
        self,
        ref: SessionRef,
        status: str,
        now: datetime,
        round_id: str,
        holds: dict[str, Hold],
        cocktail: dict[str, float] | None = None,
        consumed: list[str] | None = None,
    ) -> Effects:
        fields: dict[str, Any] = {
            "patient_id": ref.patient_id,
            "course_id": ref.course_id,
            "scheduled_for": ref.scheduled_for,
            "status": status,
            "updated_at": now,
            "holds": encode_holds(holds),
            "round": {"id": round_id, "done": True},
        }
        if cocktail is not None:
            fields["cocktail"] = [{"ingredient": i, "amount": a} for i, a in cocktail.items()]
        if consumed is not None:
            fields["consumed_lots"] = consumed
        return Effects().merge(SESSIONS, ref.session_id, **fields)

    # -- claims shared across patients ------------------------------------------------------------

    async def flag(self, lot_number: str, escalation_id: str, session_id: str, now: datetime) -> list[str]:
        """Record that an escalation implicates the lot (once); returns every escalation on the lot, first
        first. The flags of a lot are numbered slots ``<lot>|<k>``: concurrent escalations take the next
        free slot by unique insert, and reading them is a few ``_id`` probes (a lot has a handful)."""
        named: list[str] = []
        for k in range(1, MAX_FLAGS):
            slot = await self.db[FLAGS].find_one({"_id": f"{lot_number}|{k:04d}"})
            if slot is None:
                if escalation_id in named:
                    return named
                try:
                    await self.db[FLAGS].insert_one(
                        {"_id": f"{lot_number}|{k:04d}", "lot": lot_number, "escalation_id": escalation_id, "session_id": session_id, "at": now}
                    )
                except DuplicateKeyError:
                    slot = await self.db[FLAGS].find_one({"_id": f"{lot_number}|{k:04d}"})
                    assert slot is not None
                else:
                    return [*named, escalation_id]
            if slot["escalation_id"] not in named:
                named.append(slot["escalation_id"])
        raise RuntimeError(f"{lot_number}: more than {MAX_FLAGS} escalations")

    async def alert(self, alert_id: str) -> dict[str, Any] | None:
        return await self.db[ALERTS].find_one({"_id": alert_id})

    async def claim_alert(self, document: dict[str, Any]) -> dict[str, Any]:
        """Insert the claim, or return the one that got there first."""
        try:
            await self.db[ALERTS].insert_one(document)
            return document
        except DuplicateKeyError:
            return await self.alert(document["_id"]) or document
