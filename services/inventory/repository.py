"""Documents in, domain objects out; domain decisions out as Effects.

Collections: ``lots`` (one per lot: ingredient, unit, expiry, status for operators), ``sessions`` (what
inventory knows of a booked session, written by that patient's events only), ``ledger`` (stock
movements, see ledger.py), ``lot_flags`` and ``stock_alerts`` (claims shared across patients, made by
unique inserts).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.inventory.domain import Lot
from services.inventory.ledger import Ledger, LotMeta, SessionRef
from shared.runtime import Effects

LOTS = "lots"
SESSIONS = "sessions"
FLAGS = "lot_flags"
ALERTS = "stock_alerts"


def meta_of(lot: Lot) -> LotMeta:
    return LotMeta(lot.lot_number, lot.ingredient, lot.unit, lot.expires_on)


class Repository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db
        self.ledger = Ledger(db)

    async def ensure_indexes(self) -> None:
        await self.ledger.ensure_indexes()
        await self.db[LOTS].create_index([("ingredient", ASCENDING), ("expires_on", ASCENDING)], name="fefo")
        await self.db[FLAGS].create_index([("lot", ASCENDING)], name="lot")
        await self.db[ALERTS].create_index([("ingredient", ASCENDING)], name="ingredient")

    # -- lots --------------------------------------------------------------------------------------

    async def lot(self, lot_number: str) -> Lot | None:
        document = await self.db[LOTS].find_one({"_id": lot_number})
        return None if document is None else await self._with_balance(document)

    async def lots(self, ingredients: set[str] | None = None, usable_from: date | None = None) -> list[Lot]:
        """Lots with their live balance; ``usable_from`` leaves out lots expiring before that day."""
        where: dict[str, Any] = {}
        if ingredients is not None:
            where["ingredient"] = {"$in": sorted(ingredients)}
        if usable_from is not None:
            where["expires_on"] = {"$gte": usable_from.isoformat()}
        documents = await self.db[LOTS].find(where).sort([("expires_on", ASCENDING), ("_id", ASCENDING)]).to_list()
        return [await self._with_balance(d) for d in documents]

    async def _with_balance(self, document: dict[str, Any]) -> Lot:
        state = await self.ledger.state(document["_id"])
        expires_on = date.fromisoformat(document["expires_on"])
        return Lot(document["_id"], document["ingredient"], document["unit"], expires_on, state.available, state.withdrawn)

    async def claim_lot(self, lot: LotMeta, delivery_id: str, received_at: datetime) -> Lot:
        """The first delivery of a lot number defines it (ingredient, unit, expiry). Deliveries of one lot
        number under two ingredients arrive on different partitions, so this is a unique insert."""
        try:
            await self.db[LOTS].insert_one(
                {
                    "_id": lot.lot_number, "ingredient": lot.ingredient, "unit": lot.unit, "expires_on": lot.expires_on.isoformat(),
                    "status": "available", "first_delivery_id": delivery_id, "received_at": received_at,
                }
            )
        except DuplicateKeyError:
            pass
        claimed = await self.lot(lot.lot_number)
        assert claimed is not None
        return claimed

    def mark_lot(self, lot_number: str, status: str, now: datetime) -> Effects:
        return Effects().merge(LOTS, lot_number, status=status, status_at=now)

    # -- sessions ----------------------------------------------------------------------------------

    async def session(self, session_id: str) -> dict[str, Any] | None:
        return await self.db[SESSIONS].find_one({"_id": session_id})

    async def session_ref(self, session_id: str, fallback: SessionRef) -> SessionRef:
        """The session as its own events last described it (a reschedule moves its day)."""
        document = await self.session(session_id)
        if document is None:
            return fallback
        return SessionRef(session_id, document["patient_id"], document["course_id"], document["scheduled_for"])

    def save_session(self, ref: SessionRef, status: str, now: datetime, cocktail: dict[str, float] | None = None) -> Effects:
        fields: dict[str, Any] = {
            "patient_id": ref.patient_id,
            "course_id": ref.course_id,
            "scheduled_for": ref.scheduled_for,
            "status": status,
            "updated_at": now,
        }
        if cocktail is not None:
            fields["cocktail"] = [{"ingredient": i, "amount": a} for i, a in cocktail.items()]
        return Effects().merge(SESSIONS, ref.session_id, **fields)

    # -- claims shared across patients ------------------------------------------------------------

    async def flag(self, lot_number: str, escalation_id: str, session_id: str, now: datetime) -> list[str]:
        """Record that an escalation implicates the lot (once); returns every escalation on the lot."""
        try:
            await self.db[FLAGS].insert_one(
                {"_id": f"{lot_number}|{escalation_id}", "lot": lot_number, "escalation_id": escalation_id, "session_id": session_id, "at": now}
            )
        except DuplicateKeyError:
            pass
        flags = await self.db[FLAGS].find({"lot": lot_number}).sort("at", ASCENDING).to_list()
        return [f["escalation_id"] for f in flags]

    async def alerts(self, ingredient: str) -> list[dict[str, Any]]:
        return await self.db[ALERTS].find({"ingredient": ingredient}).to_list()

    async def claim_alert(self, document: dict[str, Any]) -> dict[str, Any]:
        """Insert the claim, or return the one that got there first."""
        try:
            await self.db[ALERTS].insert_one(document)
            return document
        except DuplicateKeyError:
            return await self.db[ALERTS].find_one({"_id": document["_id"]}) or document
