"""Scheduling in the store: its courses (``Repository``) and its claims on the shared calendar (``Claims``).

Courses: one document per course, with its sessions, follow-ups and their bookings. A course belongs to
one patient, so only one instance writes it at a time (see docs/services.md); the handlers read it here
as a domain ``Course`` and every write of it goes through the Effects that ``Repository.save`` builds.

The shared calendar: one claim document per cell, and one hint document per hour. Every read and write
is by ``_id``, so its cost does not grow with history:

- ``slots``: ``{_id: cell, holder, course_id, patient_id, start}``, the claim and the only guard.
- ``calendar``: ``{_id: "YYYY-MM-DDTHH", cells: {cell: "<course_id> <holder>"}}``, which cells of that
  (UTC) hour are taken. A placement reads whole days, a day as its 24 hour ids in one query (``$in`` on
  ``_id``); a booking rewrites only the hours it touches. Why hours and not one document per day: the
  local store rewrites a whole document on every update and its cost follows the document's fields, and
  a busy day of a 40-chair clinic holds thousands of cells. It is a hint, written after the claims and
  allowed to lag: a taken cell it misses costs a ``SlotTaken`` and another placement; a cell it still
  shows after its release (two writers racing on the local store, whose updates are read-modify-write)
  is healed when a claim of that course comes across it.

Which cells a session or follow-up holds is derived from its booking in the stored course, so no query
by holder is needed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count
from typing import Any, NamedTuple

from pymongo import DeleteOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.scheduling.calendar import Booking, Busy, Occupancy, Verdict, day_of, day_of_hour, days_to_read, hour_of, hours_of
from services.scheduling.domain import Course, Decision, FollowUp, ReminderChanges, Session, course_id_of
from shared.contracts.plan import TreatmentPlan
from shared.runtime import Effects
from shared.runtime.store import by_ids, derived_id

COURSES = "courses"


def reminder_id(session_id: str, kind: str, start: datetime) -> str:
    """The id of a delayed reminder event: one per session, kind and booked start, so it can be withdrawn."""
    return derived_id(session_id, "reminder", kind, start.isoformat())


class Repository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    async def course(self, course_id: str) -> Course | None:
        return course_from(await self.db[COURSES].find_one({"_id": course_id}))

    async def course_of_session(self, session_id: str) -> Course | None:
        course_id = course_id_of(session_id)
        course = await self.course(course_id) if course_id else None
        return course if course is not None and course.session(session_id) is not None else None

    @staticmethod
    def save(decision: Decision, claim: Claim, reminders: ReminderChanges) -> Effects:
        """The decision as Effects: the course, the calendar cells the claim gave back or handed over, the
        events, and the reminder changes the domain worked out (``domain.reminder_changes``)."""
        course = decision.course
        effects = Effects(outcome=decision.outcome).put(COURSES, course.course_id, course_document(course))
        for cell in sorted(claim.stale):
            effects.delete(SLOTS, cell)
        for cell, holder in sorted(claim.reassigned.items()):
            effects.merge(SLOTS, cell, holder=holder)
        for event in decision.events:
            effects.emit(event)
        effects.cancel.extend(sorted(reminder_id(*key) for key in reminders.cancelled))
        for reminder in reminders.scheduled:
            effects.emit(reminder.event, due_at=reminder.due_at, id=reminder_id(reminder.event.session_id, reminder.kind, reminder.event.scheduled_for))
        return effects


def course_document(course: Course) -> dict[str, Any]:
    return {
        "patient_id": course.patient_id,
        "consultation_id": course.consultation_id,
        "status": course.status,
        "plan": course.plan.model_dump(mode="json"),
        "sessions": [
            {
                "session_id": s.session_id,
                "sequence": s.sequence,
                "status": s.status,
                "booking": _booking_doc(s.booking),
                "at_risk": s.at_risk,
                "completed_at": s.completed_at,
            }
            for s in course.sessions
        ],
        "follow_ups": [
            {"follow_up_id": f.follow_up_id, "kind": f.kind, "booking": _booking_doc(f.booking), "escalation_id": f.escalation_id}
            for f in course.follow_ups
        ],
        "completed_at": course.completed_at,
        "escalations": list(course.escalations),
    }


def course_from(doc: dict[str, Any] | None) -> Course | None:
    if doc is None:
        return None
    sessions = tuple(
        Session(s["session_id"], s["sequence"], _booking(s["booking"]) if s.get("booking") else None, s["status"], s.get("at_risk"), s.get("completed_at"))
        for s in doc["sessions"]
    )
    follow_ups = tuple(
        FollowUp(f["follow_up_id"], f["kind"], _booking(f["booking"]), f.get("escalation_id")) for f in doc.get("follow_ups", [])
    )
    return Course(
        course_id=doc["_id"],
        patient_id=doc["patient_id"],
        consultation_id=doc["consultation_id"],
        plan=TreatmentPlan.model_validate(doc["plan"]),
        status=doc["status"],
        sessions=sessions,
        follow_ups=follow_ups,
        completed_at=doc.get("completed_at"),
        escalations=tuple(doc.get("escalations", [])),
    )


def _booking_doc(booking: Booking | None) -> dict[str, Any] | None:
    if booking is None:
        return None
    return {"start": booking.start, "minutes": booking.minutes, "practitioner_id": booking.practitioner_id, "chair_id": booking.chair_id}


def _booking(doc: dict[str, Any]) -> Booking:
    return Booking(doc["start"], doc["minutes"], doc["practitioner_id"], doc.get("chair_id"))


# The shared calendar


SLOTS = "slots"
DAYS = "calendar"
BUILT = "built:hours"
"""``_id`` of the document saying the hour documents were built from the claims (see ``prepare``)."""
BUILT_DAYS = "built"
"""What ``BUILT`` was when the hint kept one document per day (``YYYY-MM-DD``), before hours."""
DUPLICATE_KEY = 11000
READ_AT_ONCE = 16
"""Days read in one query (24 hour ids each)."""
DAY_KNOWN_SECONDS = 30.0
MAX_DAYS_KNOWN = 400


class Holding(NamedTuple):
    course_id: str
    holder: str

    def stored(self) -> str:
        """As a day document keeps it: one string, not a sub-document (the embedded store's cost grows with
        a document's elements, and a busy day holds hundreds of cells). Ids never contain a space."""
        return f"{self.course_id} {self.holder}"

    @classmethod
    def of(cls, value: str | dict[str, Any]) -> Holding:
        if isinstance(value, dict):  # written before holdings were kept as strings
            return cls(value["course_id"], value["holder"])
        course_id, _, holder = value.partition(" ")
        return cls(course_id, holder)


class Day(dict[str, Holding]):
    """One day of the hint: who holds each taken cell. Kept as read (a change this process notes makes a
    new copy, see ``Claims._note``), so what is worked out from it is kept with it: the cells of each course
    there, and what searching it for appointments found (``calendar.Snapshot``)."""

    __slots__ = ("_courses", "verdicts")

    def __init__(self, cells: Mapping[str, Holding] | None = None) -> None:
        super().__init__(cells or {})
        self._courses: dict[str, list[str]] | None = None
        self.verdicts: dict[Hashable, Verdict] = {}

    def cells_of(self, course_id: str) -> list[str]:
        """The cells the course holds on this day (found once per copy: a busy day holds thousands)."""
        if self._courses is None:
            self._courses = {}
            for cell, holding in self.items():
                self._courses.setdefault(holding.course_id, []).append(cell)
        return self._courses.get(course_id, [])


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


class Others:
    """The cells of a day that other courses hold (a course may always re-place its own): a view, since a
    decision asks about a few of a day's cells and a busy day holds thousands."""

    __slots__ = ("course_id", "day")

    def __init__(self, day: Day, course_id: str) -> None:
        self.day = day
        self.course_id = course_id

    def __contains__(self, cell: object) -> bool:
        holding = self.day.get(cell)  # type: ignore[call-overload]
        return holding is not None and holding.course_id != self.course_id

    @property
    def snapshot(self) -> Day | None:
        """The day itself when the course holds nothing on it: then this view is the whole day, and what a
        decision finds out about it holds for every other such course (``calendar.Occupancy.searched``)."""
        return None if self.day.cells_of(self.course_id) else self.day


class SlotContention(Exception):
    """Other bookings kept winning the same cells: the runtime retries the event with backoff."""

    retriable = True


class Claims:
    """The calendar cells a decision books, claimed by the handler itself: the one write scheduling's
    handlers make before their Effects are recorded.

    Why directly: a cell (a chair or a practitioner for one step of the grid) is shared by every patient,
    and two instances booking two patients at once must not both get it. Only the claim settles that, and
    only before the decision is final: a lost cell means placing again, which Effects applied later could
    not do. Why it is safe: each claim is an insert under the cell's own id, so a cell has one holder
    whatever the races, and the claim records the session or follow-up holding it. An event handled again
    (its first attempt died before its Effects were recorded) decides the same and finds its own claims
    ("ours" below), claiming nothing twice; cells an attempt left and no longer needs are given back by
    the Effects (``Claim.stale``), and a lost race gives back everything it claimed before raising.
    """

    def __init__(self, db: AsyncDatabase[dict[str, Any]], step: timedelta, attempts: int) -> None:
        self.db = db
        self.step = step
        self.attempts = attempts
        self._noting = asyncio.Lock()
        self._days: dict[str, tuple[float, Day]] = {}
        """Days of the hint as this process last read them, with its own notes since (``days``)."""

    async def place(self, before: Course | None, course_id: str, decide: Callable[[Busy], Decision]) -> tuple[Decision, Claim]:
        """Decide against the calendar as stored, then claim what was decided; lose a race, decide again
        without the lost cells, up to ``attempts`` times."""
        taken: frozenset[str] = frozenset()
        seen: dict[str, Day] = {}
        for _ in range(self.attempts):
            decision, seen = await self._placed(course_id, taken, decide, seen)
            try:
                return decision, await self.claim(before, decision, seen)
            except SlotTaken as lost:
                taken |= lost.cells
                # the days on which another booking got in first are read again; on the others every cell it
                # claimed was free (one insert reports every clash), so what was read there is kept, not read
                # twice: a cell taken there since is one more SlotTaken, as in any race
                again = {day_of(cell) for cell in lost.cells}
                seen = {day: cells for day, cells in seen.items() if day not in again}
                self._forget(again)
        raise SlotContention(f"{course_id}: calendar cells kept being taken")

    async def _placed(
        self, course_id: str, taken: frozenset[str], decide: Callable[[Busy], Decision], known: Mapping[str, Day]
    ) -> tuple[Decision, dict[str, Day]]:
        """Decide, read the days the decision looked at without having them (``known`` are read already), and
        decide again until it needed none: a decision that places nothing reads nothing, a series reads about
        one day per session."""
        seen: dict[str, Day] = dict(known)
        held: dict[str, Others] = {day: Others(cells, course_id) for day, cells in seen.items()}
        for round in count():
            occupancy = Occupancy(held, taken)
            decision = decide(occupancy)
            if not occupancy.unread:
                break
            read = await self.days(days_to_read(occupancy.unread, seen.keys(), round))
            seen.update(read)
            held.update({day: Others(cells, course_id) for day, cells in read.items()})
        return decision, seen

    async def days(self, days: Iterable[str]) -> dict[str, Day]:
        """The days as the hint has them. A day this process read less than ``DAY_KNOWN_SECONDS`` ago is
        not read again: what it wrote since is in it, and what another instance wrote since is at worst a
        ``SlotTaken`` (after which that day is read again) or a released cell not offered for that long."""
        now = time.monotonic()
        found: dict[str, Day] = {}
        ids = []
        for day in days:
            known = self._days.get(day)
            if known is not None and now - known[0] < DAY_KNOWN_SECONDS:
                found[day] = known[1]
            else:
                ids.append(day)
        for start in range(0, len(ids), READ_AT_ONCE):
            batch = ids[start : start + READ_AT_ONCE]
            read: dict[str, Day] = {day: Day() for day in batch}
            for hour, doc in (await by_ids(self.db[DAYS], (hour for day in batch for hour in hours_of(day)))).items():
                read[day_of_hour(hour)].update(_cells(doc))
            for day, cells in read.items():
                found[day] = cells
                self._remember(day, cells, now)
        return found

    def _remember(self, day: str, cells: Day, at: float) -> None:
        """Keep a day just read; the days read longest ago go when expired (they come first) or too many."""
        self._days.pop(day, None)
        self._days[day] = (at, cells)
        while len(self._days) > MAX_DAYS_KNOWN or at - next(iter(self._days.values()))[0] >= DAY_KNOWN_SECONDS:
            del self._days[next(iter(self._days))]

    def _forget(self, days: Iterable[str]) -> None:
        for day in days:
            self._days.pop(day, None)

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
        fresh: list[dict[str, Any]] = [
            {"_id": cell, "holder": holder, "course_id": mine, "patient_id": course.patient_id, "start": start}
            for cell, (holder, start) in wanted.items()
            if cell not in had
        ]
        clashing = await self._insert(fresh)
        # cells the hint gives these sessions but the stored course does not: left by an attempt that died
        # after claiming, or a release the hint missed; the claim document says which
        suspects = [c for day in seen.values() for c in day.cells_of(mine) if day[c].holder in holders and c not in had and c not in wanted]
        found = await by_ids(self.db[SLOTS], [*clashing, *suspects])

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
        """Build the hour documents from the claims once, for a store written before they existed (none, or
        one document per day). Rare (once per database, at start-up), so it may scan the claims from today on
        and, after day documents, remove them."""
        if await self.db[DAYS].find_one({"_id": BUILT}) is not None:
            return
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        docs = await self.db[SLOTS].find({"start": {"$gte": today}}, {"course_id": 1, "holder": 1}).to_list()
        await self._note({}, {doc["_id"]: _holding(doc) for doc in docs})
        if await self.db[DAYS].find_one({"_id": BUILT_DAYS}) is not None:
            await self.db[DAYS].delete_many({"_id": {"$regex": r"^(\d{4}-\d{2}-\d{2}|built)$"}})
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

    async def _delete(self, cells: list[str]) -> None:
        if cells:
            await self.db[SLOTS].bulk_write([DeleteOne({"_id": cell}) for cell in cells], ordered=False)

    async def _note(self, seen: Mapping[str, Day], truth: Mapping[str, Holding | None]) -> None:
        """Bring the hour documents in line with what is known to be true: one update per hour with a cell
        that was not read or reads otherwise, all in one round trip."""
        changes: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        for cell, holding in truth.items():
            day = day_of(cell)
            if day in seen and seen[day].get(cell) == holding:
                continue
            sets, unsets = changes.setdefault(hour_of(cell), ({}, {}))
            if holding is None:
                unsets[f"cells.{cell}"] = ""
            else:
                sets[f"cells.{cell}"] = holding.stored()
        updates = [
            UpdateOne({"_id": hour}, {**({"$set": sets} if sets else {}), **({"$unset": unsets} if unsets else {})}, upsert=bool(sets))
            for hour, (sets, unsets) in sorted(changes.items())
        ]
        if updates:
            # one writer per process at a time: the local store's updates are read-modify-write, and two
            # overlapping ones on an hour could bring a released cell back
            async with self._noting:
                await self.db[DAYS].bulk_write(updates, ordered=False)
        by_day: dict[str, list[tuple[str, Holding | None]]] = {}
        for cell, holding in truth.items():
            by_day.setdefault(day_of(cell), []).append((cell, holding))
        for day, notes in by_day.items():  # the days this process knows, as it just wrote them: one copy per day
            if (known := self._days.get(day)) is not None:
                cells = Day(known[1])
                if all(holding is not None for _, holding in notes):  # only cells taken: no room found before is still none
                    cells.verdicts.update(known[1].verdicts)
                for cell, holding in notes:
                    if holding is None:
                        cells.pop(cell, None)
                    else:
                        cells[cell] = holding
                self._days[day] = (known[0], cells)


def _cells(doc: dict[str, Any]) -> dict[str, Holding]:
    return {cell: Holding.of(v) for cell, v in doc.get("cells", {}).items()}


def _holding(doc: dict[str, Any] | None) -> Holding | None:
    return None if doc is None else Holding(doc["course_id"], doc["holder"])
