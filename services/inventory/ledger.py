"""The append-only stock ledger: the one place where a lot's stock changes, safe across instances.

Every movement on lot L is one document with ``_id`` ``L|<seq>``, holding the balance after it. To move
stock an instance reads L's latest entry, computes, and inserts the next sequence number. Both MongoDB
and FerretDB enforce ``_id`` uniqueness atomically, so of two instances computing from the same entry
only one insert succeeds; the other re-reads and computes again. No update's filter is relied on
(FerretDB's updates are read-modify-write).

Every entry also has a unique ``cause`` (e.g. ``reserve|<session>|<round>|<lot>``): a redelivered event
or a handler re-run after a crash finds its movement already made and reuses it instead of moving twice.
These inserts are made directly by the handlers (docs/services.md: claims on resources shared across
patients); everything else goes through the returned Effects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.inventory.balance import EPS, LotState, Movement, q
from services.inventory.domain import Holding, LotMeta

LEDGER = "ledger"
MAX_ATTEMPTS = 200


class LedgerContention(RuntimeError):
    """Gave up appending after MAX_ATTEMPTS lost races (the runtime retries the event)."""


@dataclass(frozen=True)
class SessionRef:
    session_id: str
    patient_id: str
    course_id: str
    scheduled_for: datetime


Decide = Callable[[LotState, float], Movement | None]
"""From the lot's balance and what the session holds of it, the movement to make (None: nothing)."""


def entry_id(lot_number: str, seq: int) -> str:
    return f"{lot_number}|{seq:08d}"


def state_of(entry: dict[str, Any] | None) -> LotState:
    if entry is None:
        return LotState()
    return LotState(entry["on_hand"], entry["reserved"], entry["withdrawn"])


def holding_of(entry: dict[str, Any], amount: float) -> Holding:
    return Holding(entry["ingredient"], entry["lot"], entry["unit"], date.fromisoformat(entry["expires_on"]), q(amount))


def ref_of(entry: dict[str, Any]) -> SessionRef:
    return SessionRef(entry["session_id"], entry["patient_id"], entry["course_id"], entry["scheduled_for"])


class Ledger:
    def __init__(self, db: AsyncDatabase) -> None:
        self.entries = db[LEDGER]

    async def ensure_indexes(self) -> None:
        await self.entries.create_index([("cause", ASCENDING)], unique=True, name="cause")
        await self.entries.create_index([("session_id", ASCENDING)], name="session")
        await self.entries.create_index([("lot", ASCENDING), ("session_id", ASCENDING)], name="lot_session")

    async def head(self, lot_number: str) -> dict[str, Any] | None:
        # '|' sorts after every character a lot number may hold, so this range is exactly lot L's entries
        found = self.entries.find({"_id": {"$gte": f"{lot_number}|", "$lt": f"{lot_number}|~"}}).sort("_id", -1).limit(1)
        return next(iter(await found.to_list()), None)

    async def state(self, lot_number: str) -> LotState:
        return state_of(await self.head(lot_number))

    async def by_cause(self, cause: str) -> dict[str, Any] | None:
        return await self.entries.find_one({"cause": cause})

    async def held(self, lot_number: str, session_id: str, upto_seq: int) -> float:
        entries = self.entries.find({"lot": lot_number, "session_id": session_id, "seq": {"$lte": upto_seq}}, {"held_delta": 1})
        return q(sum(e["held_delta"] for e in await entries.to_list()))

    async def session_entries(self, session_id: str, **where: Any) -> list[dict[str, Any]]:
        return await self.entries.find({"session_id": session_id, **where}).sort("_id", ASCENDING).to_list()

    async def holdings(self, session_id: str) -> dict[str, Holding]:
        """What the session holds now, per lot."""
        totals: dict[str, float] = defaultdict(float)
        last: dict[str, dict[str, Any]] = {}
        for entry in await self.session_entries(session_id):
            totals[entry["lot"]] += entry["held_delta"]
            last[entry["lot"]] = entry
        return {lot: holding_of(last[lot], amount) for lot, amount in totals.items() if amount > EPS}

    async def holders(self, lot_number: str, before_seq: int) -> dict[str, tuple[SessionRef, float]]:
        """Sessions holding some of the lot just before entry ``before_seq``."""
        totals: dict[str, float] = defaultdict(float)
        refs: dict[str, SessionRef] = {}
        found = self.entries.find({"lot": lot_number, "seq": {"$lt": before_seq}, "session_id": {"$ne": None}})
        for entry in await found.sort("_id", ASCENDING).to_list():
            totals[entry["session_id"]] += entry["held_delta"]
            refs[entry["session_id"]] = ref_of(entry)
        return {s: (refs[s], q(amount)) for s, amount in totals.items() if amount > EPS}

    async def administered(self, lot_number: str) -> list[dict[str, Any]]:
        """Consumption entries of the lot for sessions that used some of it."""
        return await self.entries.find({"lot": lot_number, "kind": "consume", "amount": {"$gt": 0}}).to_list()

    async def append(
        self,
        meta: LotMeta,
        cause: str,
        decide: Decide,
        now: datetime,
        session: SessionRef | None = None,
        **extra: Any,
    ) -> dict[str, Any] | None:
        """Make one movement on the lot, once per cause. Returns its entry (maybe made earlier by the same
        cause), or None when there was nothing to move."""
        if (done := await self.by_cause(cause)) is not None:
            return done
        for _ in range(MAX_ATTEMPTS):
            head = await self.head(meta.lot_number)
            seq = -1 if head is None else head["seq"]
            held = await self.held(meta.lot_number, session.session_id, seq) if session else 0.0
            movement = decide(state_of(head), held)
            if movement is None:
                return None
            entry = _entry(meta, seq + 1, cause, movement, now, session, extra)
            try:
                await self.entries.insert_one(entry)
                return entry
            except DuplicateKeyError:
                # FerretDB does not say which index refused it: look the cause up to tell
                if (done := await self.by_cause(cause)) is not None:
                    return done
        raise LedgerContention(f"{meta.lot_number}: {MAX_ATTEMPTS} lost races")


def _entry(meta: LotMeta, seq: int, cause: str, movement: Movement, now: datetime, session: SessionRef | None, extra: dict[str, Any]) -> dict[str, Any]:
    after = movement.after
    return {
        "_id": entry_id(meta.lot_number, seq),
        "lot": meta.lot_number,
        "seq": seq,
        "cause": cause,
        "kind": movement.kind.value,
        "ingredient": meta.ingredient,
        "unit": meta.unit,
        "expires_on": meta.expires_on.isoformat(),
        "amount": movement.amount,
        "held_delta": movement.held_delta,
        "shortfall": movement.shortfall,
        "on_hand": after.on_hand,
        "reserved": after.reserved,
        "available": after.available,
        "withdrawn": after.withdrawn,
        "at": now,
        "session_id": session.session_id if session else None,
        "patient_id": session.patient_id if session else None,
        "course_id": session.course_id if session else None,
        "scheduled_for": session.scheduled_for if session else None,
        **extra,
    }
