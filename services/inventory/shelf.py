"""What one event sees of the stock, and the movements it makes: the ledger's compare-and-set.

To move stock on lot L an event computes from the latest entry it knows and inserts the next one,
``L|<seq+1>`` (domain.py, "ledger entries"). Both MongoDB and FerretDB enforce ``_id`` uniqueness
atomically, so that insert is a compare-and-set: of two instances computing from the same entry only one
succeeds; the other reads the entry that won (by ``_id``) and computes again. No update's filter is relied
on (FerretDB's updates are read-modify-write). The entry's unique ``key`` (the session's holding and its
version) makes the same insert check what the session held, so a release or a consumption never frees
more than the session held, whoever else moves it meanwhile (a withdrawal); its unique ``cause`` keeps a
redelivered event or a re-run after a crash from moving stock twice. These inserts are the event's
claims (``Claims`` in repository.py, which says why they are made before the Effects); everything else
an event changes goes through its Effects.

``lot_heads`` keeps a copy of each lot's latest entry, read by ``_id`` instead of searching the ledger; it
is only a hint, written after the entries every ``HEAD_EVERY`` entries (late after a crash, or overwritten
by an older copy when instances race), and a stale head only makes the next insert fail and read forward
from ``L|seq`` by ``_id`` (``Repository.onward``: sixteen entries a read, on from the head when the lot is
further along). A process keeps the latest entry it has seen of each lot (``Repository.saw_entry``), a hint
of the same kind that costs no read: with one instance it is exact, so a reservation reads no lot at all;
beside a busy second instance it may be hundreds of entries behind, which costs a few reads, not a lost
race per entry (a process stepping one entry at a time fell further behind a writer inserting groups).
The stock book changes the same way: version n+1 is inserted computed from version n.

A ``Shelf`` lives for one event. It reads the stock book once and each lot it touches once by ``_id``
(the lot's head, or on to its real last entry where a decision needs it), knows what the sessions it
moves hold (from their documents, or from the ledger itself when that record may be behind), decides
each movement from all that and inserts the entry. When the insert is refused:
- the slot ``L|seq`` is taken: the lot moved meanwhile; read on to its end and decide again;
- the slot is free: the cause was used, or the session's holding moved on (its ``key``). That happens
  only after a crash or when a withdrawal moved the session, so the session's entries are then read back
  from the ledger (a search, on this rare path only), and the decision is made again from them.
At the end the heads of the lots it moved are saved in one write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.inventory.domain import EPS, Decide, Edit, Entry, Hold, Holding, Lot, LotMeta, SessionRef, Version, hold_of, holding_of, lot_of, meta_of, new_entry, state_of
from services.inventory.repository import Claims, Placing, Repository, lot_key

MAX_ATTEMPTS = 200
BOOK_ATTEMPTS = 100


class LedgerContention(RuntimeError):
    """Gave up appending after MAX_ATTEMPTS lost races (the runtime retries the event)."""


@dataclass(frozen=True)
class Earlier:
    """The movement's cause was used by an earlier run of the same handler: this is its entry (not looked
    up for a lot's own movements: a receipt needs nothing from it, a withdrawal finds it from the lot)."""

    entry: Entry | None


@dataclass(frozen=True)
class Request:
    """One movement for ``Shelf.append_many``: the arguments of ``Shelf.append``."""

    meta: LotMeta
    cause: str
    decide: Decide
    session: SessionRef | None = None
    repeatable: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


Made = Entry | Earlier | None


class Shelf:
    """One event's view of the stock: reads through ``repo``, claims (ledger entries, book versions) through
    ``claims``."""

    def __init__(self, repo: Repository, claims: Claims) -> None:
        self.repo = repo
        self.claims = claims
        self._book: Version | None = None
        self._latest: dict[str, Entry | None] = {}
        self._exact: set[str] = set()
        self._moved: dict[str, Entry] = {}
        self._holds: dict[str, dict[str, Hold]] = {}
        self._entries: dict[str, dict[str, Entry]] = {}
        """The entries of each session this event made, or read back from the ledger, by ``_id``."""
        self.searched: set[str] = set()
        """Sessions whose entries were read back from the ledger (their holdings are then exact)."""

    # -- the book ---------------------------------------------------------------------------------

    async def book(self) -> Version:
        """The stock book, read once per event."""
        if self._book is None:
            self._book = await self.repo.book()
        return self._book

    async def change_book(self, edit: Edit) -> Version:
        """Apply ``edit`` to the latest version; nothing is written when it changes nothing. Of two writers
        of version n+1 (deliveries of two ingredients, two instances) one wins, the other edits the winner."""
        current = await self.book()
        for _ in range(BOOK_ATTEMPTS):
            changed = edit(current)
            if (changed.lots, changed.alerts) == (current.lots, current.alerts):
                self._book = current
                return current
            changed = replace(changed, v=current.v + 1)
            if await self.claims.book(changed):
                self._book = self.repo.saw(changed)
                return self._book
            current = await self.repo.book()
        raise RuntimeError(f"stock book: {BOOK_ATTEMPTS} lost races")

    # -- lots ---------------------------------------------------------------------------------------

    async def load(self, lot_numbers: Iterable[str], exact: bool = False) -> None:
        """Read the lots not read yet, concurrently; ``exact`` follows each past its head to the end."""
        wanted = [n for n in dict.fromkeys(lot_numbers) if n not in self._latest or (exact and n not in self._exact)]
        if not exact:  # a lot this process has seen needs no read, so no task either (a busy shelf has dozens in play)
            unseen = {n for n in wanted if self.repo.known_entry(n) is None}
            for lot_number in [n for n in wanted if n not in unseen]:
                self._know(await self.repo.hint(lot_number), lot_number)
            wanted = [n for n in wanted if n in unseen]
        found = await asyncio.gather(*(self._read(n, exact) for n in wanted))
        for lot_number, entry in zip(wanted, found, strict=True):
            self._know(entry, lot_number)
            if exact:
                self._exact.add(lot_number)

    async def _read(self, lot_number: str, exact: bool) -> Entry | None:
        if exact:
            return await self.repo.latest(lot_number, self._latest.get(lot_number))
        return await self.repo.hint(lot_number)

    async def entry(self, lot_number: str, exact: bool = False) -> Entry | None:
        await self.load([lot_number], exact)
        return self._latest[lot_number]

    def known(self, lot_number: str) -> Entry | None:
        return self._latest.get(lot_number)

    async def lot(self, lot_number: str) -> Lot | None:
        """The lot as its latest entry known says, or as its first delivery defined it (no stock yet)."""
        entry = await self.entry(lot_number)
        if entry is not None:
            return lot_of(meta_of(entry), entry)
        meta = await self.repo.lot_meta(lot_number)
        return None if meta is None else Lot(meta.lot_number, meta.ingredient, meta.unit, meta.expires_on)

    def _fresh(self, lot_number: str) -> Entry | None:
        """The latest entry of the lot known here or to this process (another event of this process may have
        moved it since this one read it)."""
        self._know(self.repo.known_entry(lot_number), lot_number)
        return self._latest.get(lot_number)

    def _know(self, entry: Entry | None, lot_number: str) -> None:
        current = self._latest.get(lot_number)
        if entry is not None and (current is None or entry["seq"] > current["seq"]):
            self._latest[lot_number] = self.repo.saw_entry(entry)
        else:
            self._latest.setdefault(lot_number, entry)

    # -- what sessions hold -----------------------------------------------------------------------

    def seed(self, session_id: str, holds: dict[str, Hold]) -> None:
        """What the session's document says it holds (it may be behind only after a crash or a withdrawal)."""
        if session_id not in self.searched:
            self._holds[session_id] = dict(holds)

    def know_hold(self, session_id: str, hold: Hold) -> None:
        """What the session holds of a lot, as an entry read elsewhere says (kept when it is the later)."""
        known = self._holds.setdefault(session_id, {}).get(hold.meta.lot_number)
        if known is None or hold.version > known.version:
            self._holds[session_id][hold.meta.lot_number] = hold

    async def search(self, session_id: str) -> None:
        """Read the session's entries back from the ledger: what it holds is then exact. A search of the
        whole ledger, for the rare paths only (module docstring)."""
        entries = await self.repo.session_entries(session_id)
        holds: dict[str, Hold] = {}
        for entry in entries:
            if entry["lot"] not in holds or entry["hold"] > holds[entry["lot"]].version:
                holds[entry["lot"]] = hold_of(entry)
        self._holds[session_id] = holds
        self._entries.setdefault(session_id, {}).update((e["_id"], e) for e in entries)
        self.searched.add(session_id)

    def hold(self, session_id: str, meta: LotMeta) -> Hold:
        return self._holds.get(session_id, {}).get(meta.lot_number) or Hold(meta)

    def holds(self, session_id: str) -> dict[str, Hold]:
        """Every lot the session has moved stock of, held now or not (the versions matter)."""
        return dict(self._holds.get(session_id, {}))

    def holdings(self, session_id: str) -> dict[str, Holding]:
        return {n: holding_of(h) for n, h in sorted(self._holds.get(session_id, {}).items()) if h.amount > EPS}

    def entries_of(self, session_id: str, **where: Any) -> list[Entry]:
        """The session's entries this event made or read back, in ledger order."""
        found = sorted(self._entries.get(session_id, {}).values(), key=lambda e: e["_id"])
        return [e for e in found if all(e.get(k) == v for k, v in where.items())]

    def _made(self, session_id: str, cause: str) -> Entry | None:
        return next((e for e in self._entries.get(session_id, {}).values() if e["cause"] == cause), None)

    def _learn(self, entry: Entry) -> None:
        self._know(entry, entry["lot"])
        self._moved[entry["lot"]] = self._latest[entry["lot"]] or entry
        if (session_id := entry.get("session_id")) is not None:
            self._entries.setdefault(session_id, {})[entry["_id"]] = entry
            known = self._holds.setdefault(session_id, {}).get(entry["lot"])
            if known is None or entry["hold"] > known.version:
                self._holds[session_id][entry["lot"]] = hold_of(entry)

    # -- movements --------------------------------------------------------------------------------

    async def append(
        self,
        meta: LotMeta,
        cause: str,
        decide: Decide,
        now: datetime,
        session: SessionRef | None = None,
        repeatable: bool = False,
        **extra: Any,
    ) -> Made:
        """Make one movement on the lot. Returns its entry (maybe made by an earlier run that this event
        did not know of), None when there is nothing to move, or ``Earlier`` when the cause was used
        before and what the session holds already counts it. A ``repeatable`` movement (a reservation or
        a release, decided from what the session holds) whose cause is used that way is a further one:
        it gets the cause with ``|2``, ``|3`` ..."""
        await self.entry(meta.lot_number)
        async with self.claims.locks.hold([lot_key(meta.lot_number)]):
            return await self._append(meta, cause, decide, now, session, repeatable, extra)

    async def _append(
        self, meta: LotMeta, cause: str, decide: Decide, now: datetime, session: SessionRef | None, repeatable: bool, extra: dict[str, Any]
    ) -> Made:
        current = self._fresh(meta.lot_number)
        made: Entry | None
        suffix = 1
        # what the caller decided from: an entry of this cause newer than that is an earlier run's movement it
        # did not know of, however much later this event learns of the session (reading on, searching)
        decided = self.hold(session.session_id, meta).version if session else 0
        for _ in range(MAX_ATTEMPTS):
            hold = self.hold(session.session_id, meta) if session else None
            movement = decide(state_of(current), hold.amount if hold else 0.0)
            if movement is None:
                return None
            named = cause if suffix == 1 else f"{cause}|{suffix}"
            seq = 0 if current is None else current["seq"] + 1
            entry = new_entry(meta, current, seq, named, movement, now, session, hold, extra)
            if not await self.claims.entry(entry):
                # FerretDB does not say which unique index refused it: the slot tells
                taken = await self.repo.onward(meta.lot_number, seq)
                if taken:  # the lot moved meanwhile: read on to its end, decide again from there
                    for moved in taken:
                        self._learn(moved)
                    current = self._latest[meta.lot_number]
                    if (made := next((t for t in taken if t["cause"] == named), None)) is None:
                        if session is not None and session.session_id not in self.searched and any(t.get("session_id") == session.session_id for t in taken):
                            # another event moved this session's stock (a withdrawal moving it to other lots):
                            # what it holds elsewhere is read back, or a release would leave that held for nobody
                            await self.search(session.session_id)
                        continue
                    # else made by an earlier run whose head was never saved
                elif session is None:  # a lot's own movement (a receipt, a withdrawal) made earlier
                    return Earlier(None)
                else:
                    if (made := self._made(session.session_id, named)) is None:
                        await self.search(session.session_id)
                        made = self._made(session.session_id, named)
                    if made is None:  # only the session's holding had moved on: decide again from it
                        continue
                if hold is None or made["hold"] > decided:  # news to this event: that run's movement
                    return made
                if not repeatable:
                    return Earlier(made)
                suffix += 1
                continue
            self._learn(entry)
            return entry
        raise LedgerContention(f"{meta.lot_number}: {MAX_ATTEMPTS} lost races")

    async def append_many(self, requests: list[Request], now: datetime) -> list[Made]:
        """``append`` for movements on different lots, decided and inserted with the other events' of this
        process that came meanwhile (``Claims.place``: one ordered insert a group) when every lot's known
        entry is its latest (the usual case); a movement whose insert is refused, or not reached because an
        earlier one of the group was refused, is made again on its own."""
        assert len({r.meta.lot_number for r in requests}) == len(requests), "one movement per lot"
        await self.load(r.meta.lot_number for r in requests)
        results: list[Made] = [None] * len(requests)
        planned: dict[int, Entry] = {}
        left: list[int] = []

        def plan(latest: dict[str, Entry]) -> list[Entry]:
            planned.clear()
            for index, r in enumerate(requests):
                current = latest.get(r.meta.lot_number) or self._fresh(r.meta.lot_number)
                hold = self.hold(r.session.session_id, r.meta) if r.session else None
                movement = r.decide(state_of(current), hold.amount if hold else 0.0)
                if movement is not None:
                    seq = 0 if current is None else current["seq"] + 1
                    planned[index] = new_entry(r.meta, current, seq, r.cause, movement, now, r.session, hold, r.extra)
            return list(planned.values())

        def made(entries: list[Entry]) -> None:
            for n, (index, entry) in enumerate(planned.items()):
                if n < len(entries):
                    self._learn(entry)
                    results[index] = entry
                else:
                    left.append(index)

        await self.claims.place(Placing(tuple(r.meta.lot_number for r in requests), plan, made))
        for index in left:
            r = requests[index]
            results[index] = await self.append(r.meta, r.cause, r.decide, now, r.session, r.repeatable, **r.extra)
        return results

    async def flush(self) -> None:
        """Save the heads of the lots moved (or found further along) since the last flush, where they are
        due (``Repository.heads_due``)."""
        moved, self._moved = list(self._moved.values()), {}
        await self.claims.heads(self.repo.heads_due(moved))
