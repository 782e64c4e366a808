"""The shared calendar in the store: one claim document per cell, and one hint document per day.

Calendar cells are shared by every patient, so a handler claims them itself (the one direct write it
makes), by inserting each cell under its unique id: two instances can never book one chair or
practitioner twice. Every read and write here is by ``_id``, so its cost does not grow with history:

- ``slots``: ``{_id: cell, holder, course_id, patient_id, start}``, the claim and the only guard.
- ``calendar``: ``{_id: "YYYY-MM-DD", cells: {cell: {course_id, holder}}}``, which cells of that (UTC)
  day are taken, read for the days a placement looks at. It is a hint, written after the claims and
  allowed to lag: a taken cell it misses costs a ``SlotTaken`` and another placement; a cell it still
  shows after its release (two writers racing on the local store, whose updates are read-modify-write)
  is healed when a claim of that course comes across it.

Which cells a session or follow-up holds is derived from its booking in the stored course, so no query
by holder is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pymongo import DeleteOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.scheduling.calendar import day_of
from services.scheduling.domain import Course, Decision

SLOTS = "slots"
DAYS = "calendar"
BUILT = "built"
"""``_id`` of the document saying the day documents were built from the claims (see ``prepare``)."""
DUPLICATE_KEY = 11000
READ_AT_ONCE = 8


class Holding(NamedTuple):
    course_id: str
    holder: str


Day = dict[str, Holding]
"""One day of the hint: who holds each taken cell."""


class SlotTaken(Exception):
    """Another booking holds some of the cells; the caller places again without them."""

    def __init__(self, cells: frozenset[str]) -> None:
        super().__init__(f"{len(cells)} cell(s) taken")
        self.cells = cells


@dataclass(frozen=True)
class Claim:
    reassigned: dict[str, str]
    """Cells that change hands between the decision's own sessions (one moved into another's old slot)."""
    stale: frozenset[str]
    """Cells the decision's sessions held that it no longer needs: released by the effects."""


def held_by(course: Course | None, holders: Iterable[str], step: timedelta) -> dict[str, tuple[str, datetime]]:
    """(holder, cell start) of every cell the course's bookings for ``holders`` occupy."""
    if course is None:
        return {}
    wanted = set(holders)
    sessions = [(s.session_id, s.booking) for s in course.sessions if s.status == "scheduled" and s.booking is not None]
    follow_ups = [(f.follow_up_id, f.booking) for f in course.follow_ups]
    return {cell: (holder, start) for holder, booking in [*sessions, *follow_ups] if holder in wanted for cell, start in booking.held(step)}


def others(day: Day, course_id: str) -> frozenset[str]:
    """The cells of a day that other courses hold (a course may always re-place its own)."""
    return frozenset(cell for cell, holding in day.items() if holding.course_id != course_id)


class CalendarClaims:
    def __init__(self, db: AsyncDatabase, step: timedelta) -> None:
        self.db = db
        self.step = step
        self._noting = asyncio.Lock()

    async def days(self, days: Iterable[str]) -> dict[str, Day]:
        found: dict[str, Day] = {}
        ids = list(days)
        for start in range(0, len(ids), READ_AT_ONCE):
            batch = ids[start : start + READ_AT_ONCE]
            docs = await asyncio.gather(*(self.db[DAYS].find_one({"_id": day}) for day in batch))
            found.update((day, _day(doc)) for day, doc in zip(batch, docs, strict=True))
        return found

    async def claim(self, before: Course | None, decision: Decision, seen: Mapping[str, Day]) -> Claim:
        """Hold every cell the decision books for its sessions; raises SlotTaken (holding nothing new) when
        another booking was first. Cells the stored course already gives these sessions are theirs, and so
        are cells an earlier attempt at the same decision claimed before it died."""
        course, holders = decision.course, decision.holds
        if not holders:
            return Claim({}, frozenset())
        mine = course.course_id
        wanted = held_by(course, holders, self.step)
        had = {cell: holder for cell, (holder, _) in held_by(before, holders, self.step).items()}
        fresh = [
            {"_id": cell, "holder": holder, "course_id": mine, "patient_id": course.patient_id, "start": start}
            for cell, (holder, start) in wanted.items()
            if cell not in had
        ]
        clashing = await self._insert(fresh)
        hinted = {cell: holding for day in seen.values() for cell, holding in day.items()}
        # cells the hint gives these sessions but the stored course does not: left by an attempt that died
        # after claiming, or a release the hint missed; the claim document says which
        suspects = [c for c, h in hinted.items() if h.course_id == mine and h.holder in holders and c not in had and c not in wanted]
        found = await self._read([*clashing, *suspects])

        def ours(cell: str) -> bool:
            doc = found.get(cell)
            return doc is not None and doc.get("course_id") == mine and doc.get("holder") in holders

        lost = frozenset(c for c in clashing if not ours(c))
        if lost:
            await self._delete([d["_id"] for d in fresh if d["_id"] not in clashing])
            await self._note(seen, {c: _holding(found.get(c)) for c in lost})
            raise SlotTaken(lost)
        current = {**had, **{c: found[c]["holder"] for c in clashing}}
        reassigned = {c: holder for c, (holder, _) in wanted.items() if c in current and current[c] != holder}
        stale = (had.keys() | {c for c in suspects if ours(c)}) - wanted.keys()
        truth: dict[str, Holding | None] = {c: _holding(found.get(c)) for c in suspects}
        truth.update({c: None for c in stale})
        truth.update({c: Holding(mine, holder) for c, (holder, _) in wanted.items()})
        await self._note(seen, truth)
        return Claim(reassigned, frozenset(stale))

    async def prepare(self, now: datetime) -> None:
        """Build the day documents from the claims once, for a store written before they existed.
        Rare (once per database, at start-up), so it may scan the claims from today on."""
        if await self.db[DAYS].find_one({"_id": BUILT}) is not None:
            return
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        docs = await self.db[SLOTS].find({"start": {"$gte": today}}, {"course_id": 1, "holder": 1}).to_list()
        await self._note({}, {doc["_id"]: _holding(doc) for doc in docs})
        try:
            await self.db[DAYS].insert_one({"_id": BUILT, "at": now})
        except DuplicateKeyError:
            pass  # another instance built them too

    async def _insert(self, documents: list[dict[str, Any]]) -> list[str]:
        """Insert every claim it can; returns the ids someone already holds."""
        if not documents:
            return []
        try:
            await self.db[SLOTS].insert_many(documents, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return [documents[e["index"]]["_id"] for e in errors]
        return []

    async def _read(self, cells: list[str]) -> dict[str, dict[str, Any]]:
        docs = await asyncio.gather(*(self.db[SLOTS].find_one({"_id": cell}) for cell in cells))
        return {doc["_id"]: doc for doc in docs if doc is not None}

    async def _delete(self, cells: list[str]) -> None:
        if cells:
            await self.db[SLOTS].bulk_write([DeleteOne({"_id": cell}) for cell in cells], ordered=False)

    async def _note(self, seen: Mapping[str, Day], truth: Mapping[str, Holding | None]) -> None:
        """Bring the day documents in line with what is known to be true: one update per day that was not
        read or reads otherwise, all in one round trip."""
        changes: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        for cell, holding in truth.items():
            day = day_of(cell)
            if day in seen and seen[day].get(cell) == holding:
                continue
            sets, unsets = changes.setdefault(day, ({}, {}))
            if holding is None:
                unsets[f"cells.{cell}"] = ""
            else:
                sets[f"cells.{cell}"] = holding._asdict()
        updates = [
            UpdateOne({"_id": day}, {**({"$set": sets} if sets else {}), **({"$unset": unsets} if unsets else {})}, upsert=bool(sets))
            for day, (sets, unsets) in sorted(changes.items())
        ]
        if updates:
            # one writer per process at a time: the local store's updates are read-modify-write, and two
            # overlapping ones on a day could bring a released cell back
            async with self._noting:
                await self.db[DAYS].bulk_write(updates, ordered=False)


def _day(doc: dict[str, Any] | None) -> Day:
    return {cell: Holding(v["course_id"], v["holder"]) for cell, v in (doc or {}).get("cells", {}).items()}


def _holding(doc: dict[str, Any] | None) -> Holding | None:
    return None if doc is None else Holding(doc["course_id"], doc["holder"])
