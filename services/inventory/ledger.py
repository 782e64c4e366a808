"""The append-only stock ledger: the one place where a lot's stock changes, safe across instances.

Every movement on lot L is one small document with ``_id`` ``L|<seq>`` holding the lot's balance after
it. To move stock an instance computes from the latest entry it knows and inserts the next sequence
number. Both MongoDB and FerretDB enforce ``_id`` uniqueness atomically, so that insert is a
compare-and-set: of two instances computing from the same entry only one succeeds; the other reads the
entry that won (by ``_id``) and computes again. No update's filter is relied on (FerretDB's updates are
read-modify-write).

A movement for a session also changes what that session holds of the lot. Its entry says what the
session holds afterwards (``held``) and the how-manyth change of that holding it is (``hold``), and its
``key`` ``L|<session>|<hold>`` is unique too: one insert checks both the lot's balance and the
session's holding it was decided from, so a release or a consumption never frees more than the session
held, whoever else moves the session meanwhile (a withdrawal). Each session's document keeps its
holdings and their versions (sessions in repository.py), so no event adds up entries.

Every entry also has a unique ``cause`` (e.g. ``reserve|<session>|<round>|<lot>``): a redelivered event
or a handler re-run after a crash never makes a movement twice, its insert fails (shelf.py tells the
refusals apart). ``lot_heads`` keeps a copy of each lot's latest entry, read by ``_id`` instead of
searching the ledger; it is only a hint, written after the entries (late after a crash, or overwritten
by an older copy when instances race), and a stale head only makes the next insert fail and step
forward through ``L|seq+1`` ... by ``_id``. These inserts are made directly by the handlers
(docs/services.md: claims on resources shared across patients); everything else goes through Effects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.inventory.balance import EPS, Kind, LotState, Movement, q
from services.inventory.domain import Holding, Lot, LotMeta

LEDGER = "ledger"
HEADS = "lot_heads"


@dataclass(frozen=True)
class SessionRef:
    session_id: str
    patient_id: str
    course_id: str
    scheduled_for: datetime


@dataclass(frozen=True)
class Hold:
    """What a session holds of a lot, and how many movements of the session's there have been (version)."""

    meta: LotMeta
    amount: float = 0.0
    version: int = 0


Decide = Callable[[LotState, float], Movement | None]
"""From the lot's balance and what the session holds of it, the movement to make (None: nothing)."""


def entry_id(lot_number: str, seq: int) -> str:
    return f"{lot_number}|{seq:08d}"


def hold_key(lot_number: str, session_id: str, version: int) -> str:
    return f"{lot_number}|{session_id}|{version:06d}"


def state_of(entry: dict[str, Any] | None) -> LotState:
    if entry is None:
        return LotState()
    return LotState(entry["on_hand"], entry["reserved"], entry["withdrawn"])


def meta_of(entry: dict[str, Any]) -> LotMeta:
    return LotMeta(entry["lot"], entry["ingredient"], entry["unit"], date.fromisoformat(entry["expires_on"]))


def lot_of(meta: LotMeta, entry: dict[str, Any] | None) -> Lot:
    state = state_of(entry)
    return Lot(meta.lot_number, meta.ingredient, meta.unit, meta.expires_on, state.available, state.withdrawn)


def hold_of(entry: dict[str, Any]) -> Hold:
    """The session's holding after its entry."""
    return Hold(meta_of(entry), entry["held"], entry["hold"])


def holding_of(hold: Hold) -> Holding:
    m = hold.meta
    return Holding(m.ingredient, m.lot_number, m.unit, m.expires_on, q(hold.amount))


class Ledger:
    """The ledger's documents; no state of its own. One event's reads and moves go through a ``Shelf``
    (shelf.py)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.entries = db[LEDGER]
        self.heads = db[HEADS]

    async def ensure_indexes(self) -> None:
        await self.entries.create_index([("cause", ASCENDING)], unique=True, name="cause")
        await self.entries.create_index([("key", ASCENDING)], unique=True, sparse=True, name="key")
        # served on MongoDB only; FerretDB scans. For recovery, withdrawals and operators, never per event.
        await self.entries.create_index([("session_id", ASCENDING)], name="session")
        await self.entries.create_index([("lot", ASCENDING), ("seq", ASCENDING)], name="lot")

    async def entry(self, lot_number: str, seq: int) -> dict[str, Any] | None:
        return await self.entries.find_one({"_id": entry_id(lot_number, seq)})

    async def hint(self, lot_number: str) -> dict[str, Any] | None:
        head = await self.heads.find_one({"_id": lot_number})
        return None if head is None else {**head, "_id": entry_id(lot_number, head["seq"])}

    async def latest(self, lot_number: str, known: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The lot's latest entry: from ``known`` (or the head) forward, one ``_id`` probe per step."""
        current = known if known is not None else await self.hint(lot_number)
        while (following := await self.entry(lot_number, 0 if current is None else current["seq"] + 1)) is not None:
            current = following
        return current

    async def state(self, lot_number: str) -> LotState:
        return state_of(await self.latest(lot_number))

    async def save_heads(self, entries: Iterable[dict[str, Any]]) -> None:
        writes = [ReplaceOne({"_id": e["lot"]}, {**e, "_id": e["lot"]}, upsert=True) for e in entries]
        if not writes:
            return
        try:
            await self.heads.bulk_write(writes, ordered=False)
        except BulkWriteError as error:  # two instances creating one head at once: either copy will do
            if any(problem.get("code") != 11000 for problem in error.details.get("writeErrors", [])):
                raise

    async def session_entries(self, session_id: str, **where: Any) -> list[dict[str, Any]]:
        """Every entry of a session. A search of the whole ledger: only for crash recovery, a session
        moved by a withdrawal, and operators; never on an event's usual path."""
        return await self.entries.find({"session_id": session_id, **where}).sort("_id", ASCENDING).to_list()

    async def holders(self, lot_number: str, before_seq: int) -> dict[str, float]:
        """Sessions holding some of the lot just before entry ``before_seq``. A search of the whole
        ledger: only for withdrawing a lot (a recall or a quarantine, rare)."""
        found: dict[str, dict[str, Any]] = {}
        for entry in await self.entries.find({"lot": lot_number, "seq": {"$lt": before_seq}, "session_id": {"$ne": None}}).to_list():
            if entry["session_id"] not in found or entry["hold"] > found[entry["session_id"]]["hold"]:
                found[entry["session_id"]] = entry
        return {s: e["held"] for s, e in sorted(found.items()) if e["held"] > EPS}


def new_entry(
    meta: LotMeta, before: dict[str, Any] | None, seq: int, cause: str, movement: Movement, now: datetime,
    session: SessionRef | None, hold: Hold | None, extra: dict[str, Any],
) -> dict[str, Any]:
    after = movement.after
    last_consume = before.get("last_consume") if before is not None else None
    withdrawals = dict(before.get("withdrawals", {})) if before is not None else {}
    entry: dict[str, Any] = {
        "_id": entry_id(meta.lot_number, seq),
        "lot": meta.lot_number,
        "seq": seq,
        "cause": cause,
        "key": cause,
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
        "session_id": None,
        **extra,
    }
    if session is not None:
        version = (hold.version if hold else 0) + 1
        entry.update(
            session_id=session.session_id, patient_id=session.patient_id, course_id=session.course_id, scheduled_for=session.scheduled_for,
            held=q((hold.amount if hold else 0.0) + movement.held_delta), hold=version, key=hold_key(meta.lot_number, session.session_id, version),
        )
    if movement.kind is Kind.CONSUME and movement.amount > EPS:
        # the lot's consumptions form a chain back through the ledger, walked only when the lot is withdrawn
        entry["prev_consume"] = last_consume
        last_consume = seq
    if movement.kind is Kind.WITHDRAW:
        withdrawals[extra["withdrawal"]] = seq
    entry.update(last_consume=last_consume, withdrawals=withdrawals)
    return entry
