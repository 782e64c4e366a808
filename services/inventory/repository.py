"""Inventory's store: ``Repository`` reads documents into domain objects (every hot-path read by ``_id``) and
turns the decisions on a patient's own documents into Effects; ``Claims`` makes the few writes that cannot
wait for the Effects, on resources shared across patients.

Collections:
- ``lots``: one per lot (ingredient, unit, expiry, status for operators); the first delivery defines it.
- ``ledger``: the append-only stock movements, one entry ``<lot>|<seq>`` each (domain.py, "ledger
  entries"); ``lot_heads``: a copy of each lot's latest entry by lot number, only a hint (shelf.py).
- ``stock_book``: the lots in play and where StockLow stands, version ``v|<n>`` each, plus a ``head`` copy
  of the latest (domain.py, "the stock book").
- ``sessions``: what inventory knows of a booked session, written by that patient's events only: status,
  cocktail, what it holds of each lot after its latest event with the holding's version (``holds``), and
  that event's round (``round``: a reservation writes it directly before it moves stock, so that a re-run
  after a crash, or the session's next event, knows the record may be behind; the Effects mark it done).
- ``lot_flags`` and ``stock_alerts``: claims shared across patients, made by unique inserts.
- ``withdrawals``: a withdrawal's steps (domain.Job), by ``<lot>|<kind>``, written by its steps' Effects;
  ``withdrawal_moves``: one claim per session a withdrawal began to move (a re-run after a crash knows).
- ``demand``: what booked sessions need, per ISO week, for the stock forecast: numbered slots
  ``<monday>|<k>`` (claims: a session's needs in that week from then on, absolute, so a re-run converges),
  and ``demand_heads``: a week's slots folded up to some ``k`` by ``<monday>``, only a hint (read forward;
  its sessions packed into one value).
- ``forecasts``: the weeks whose forecast was published (``<monday>``), so the weekly job runs once a week.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from services.inventory.domain import (
    EPS,
    Alert,
    Crossing,
    Entry,
    Hold,
    Job,
    LotMeta,
    LotState,
    LotStock,
    Need,
    Session,
    SessionRef,
    Version,
    WeekDemand,
    entry_id,
    level,
    state_of,
)
from shared.runtime import Effects
from shared.runtime.locks import GroupCommit, KeyedLocks
from shared.runtime.store import by_ids, pack, unpack

Document = dict[str, Any]
Db = AsyncDatabase[Document]

LOTS = "lots"
SESSIONS = "sessions"
FLAGS = "lot_flags"
ALERTS = "stock_alerts"
LEDGER = "ledger"
HEADS = "lot_heads"
BOOK = "stock_book"
BOOK_HEAD = "head"
WITHDRAWALS = "withdrawals"
MOVES = "withdrawal_moves"
DEMAND = "demand"
DEMAND_HEADS = "demand_heads"
FORECASTS = "forecasts"
MAX_FLAGS = 1000
MAX_WEEKS_KNOWN = 80
MAX_LOTS_KNOWN = 1000
K = TypeVar("K")
HEAD_EVERY = 16
WEEK_HEAD_SHARE = 8
"""A busy week's demand head is rewritten once its slots have grown by an eighth of its sessions."""
ORDERED_CHUNK = 100
"""Most documents one ordered insert of a chain sends (``Claims.in_order``)."""
SLOTS_AT_ONCE = 16
"""Demand slots read in one query when reading a week forward from its head."""
ENTRIES_AT_ONCE = 16
"""Ledger entries read in one query when reading a lot forward (``Repository.onward``)."""


class Repository:
    """Reads, each by ``_id`` on an event's path; the searches are marked and only for rare paths."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self.ledger: AsyncCollection[Document] = db[LEDGER]
        self._book: Version | None = None
        """The latest stock book version this process has seen (a version never changes)."""
        self._books: GroupCommit[str, None, Version] = GroupCommit(self._book_now, "stock-book")
        self._weeks: dict[date, WeekDemand] = {}
        """The latest demand this process has seen of each week (slots never change: it is only ever behind)."""
        self._lots: dict[str, Entry] = {}
        """The latest entry this process has seen of each lot: a hint like the lot's head (entries never
        change, so it is only ever behind), without a read. Only the ``MAX_LOTS_KNOWN`` last used are kept."""
        self._week_heads: dict[date, int] = {}
        """The ``upto`` of each week's demand head as this process last read or wrote it."""
        self._heads: dict[str, int] = {}
        """The seq of each lot's head as this process last read or wrote it."""

    async def ensure_indexes(self) -> None:
        await self.ledger.create_index([("cause", ASCENDING)], unique=True, name="cause")
        await self.ledger.create_index([("key", ASCENDING)], unique=True, sparse=True, name="key")
        # served on MongoDB only; FerretDB scans. For recovery, withdrawals and operators, never per event.
        await self.ledger.create_index([("session_id", ASCENDING)], name="session")
        await self.ledger.create_index([("lot", ASCENDING), ("seq", ASCENDING)], name="lot")

    # -- lots and sessions ------------------------------------------------------------------------

    async def lot_meta(self, lot_number: str) -> LotMeta | None:
        """The lot as its first delivery defined it."""
        document = await self.db[LOTS].find_one({"_id": lot_number})
        return None if document is None else _lot_meta(document)

    async def session(self, session_id: str) -> Session | None:
        document = await self.db[SESSIONS].find_one({"_id": session_id})
        if document is None:
            return None
        ref = SessionRef(session_id, document["patient_id"], document["course_id"], document["scheduled_for"])
        found = document.get("round") or {}
        return Session(
            ref, document.get("status"), decode_holds(document.get("holds")), found.get("id"), bool(found.get("done", True)),
            tuple(document.get("consumed_lots", ())), {c["ingredient"]: c["amount"] for c in document.get("cocktail", ())},
        )

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
        fields: Document = {
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

    async def withdrawal(self, lot_number: str, kind: str) -> Job | None:
        return await self.db[WITHDRAWALS].find_one({"_id": f"{lot_number}|{kind}"})

    def save_withdrawal(self, job: Job) -> Effects:
        return Effects().put(WITHDRAWALS, job["_id"], job)

    def mark_lot(self, lot_number: str, status: str, now: datetime) -> Effects:
        return Effects().merge(LOTS, lot_number, status=status, status_at=now)

    # -- demand per week, for the stock forecast --------------------------------------------------

    async def week_demand(self, week: date) -> WeekDemand:
        """The week's demand: from the latest this process knows (or the week's head, a hint), forward
        through the slots written after it (``demand_after``)."""
        known = self._weeks.get(week)
        if known is None:
            known = decode_week(week, await self.db[DEMAND_HEADS].find_one({"_id": week.isoformat()}))
            self._week_heads[week] = known.upto
        return self.saw_week(await self.demand_after(known))

    def week_head_due(self, week: WeekDemand) -> bool:
        """Whether to save the week's demand as its head (``head_due``): every ``HEAD_EVERY`` slots, or every
        ``len(sessions) / WEEK_HEAD_SHARE`` in a busy week, so that the head (all the week's sessions, packed)
        costs about the same per booking however full the week is."""
        return head_due(self._week_heads, week.week, week.upto, max(HEAD_EVERY, len(week.sessions) // WEEK_HEAD_SHARE))

    async def demand_after(self, known: WeekDemand) -> WeekDemand:
        """``known`` brought forward through the week's slots written after it, ``SLOTS_AT_ONCE`` a read."""
        while True:
            slots = await consecutive(self.db[DEMAND], [demand_slot_id(known.week, seq) for seq in range(known.upto + 1, known.upto + 1 + SLOTS_AT_ONCE)])
            for slot in slots:
                known = known.with_slot(slot["seq"], slot["session_id"], decode_need(slot))
            if len(slots) < SLOTS_AT_ONCE:
                return known

    def known_week(self, week: date) -> WeekDemand | None:
        return self._weeks.get(week)

    def saw_week(self, week: WeekDemand) -> WeekDemand:
        """Remember a week's demand read or written; the latest one known is returned. Only the latest
        ``MAX_WEEKS_KNOWN`` weeks are kept."""
        current = self._weeks.get(week.week)
        if current is None or week.upto >= current.upto:
            self._weeks[week.week] = current = week
            if len(self._weeks) > MAX_WEEKS_KNOWN:
                forgotten = min(self._weeks)
                del self._weeks[forgotten]
                self._week_heads.pop(forgotten, None)
        return current

    async def forecast_published(self, week: date) -> bool:
        return await self.db[FORECASTS].find_one({"_id": week.isoformat()}) is not None

    def mark_forecast_published(self, week: date, ingredients: list[str], now: datetime) -> Effects:
        return Effects().put(FORECASTS, week.isoformat(), {"ingredients": ingredients, "at": now})

    # -- the ledger -------------------------------------------------------------------------------

    async def entry(self, lot_number: str, seq: int) -> Entry | None:
        return await self.ledger.find_one({"_id": entry_id(lot_number, seq)})

    async def entries(self, lot_number: str, seqs: range) -> list[Entry | None]:
        """The lot's entries ``seqs``, in that order (None where there is none), in one read by ``_id``."""
        ids = [entry_id(lot_number, seq) for seq in seqs]
        found = await by_ids(self.ledger, ids)
        return [found.get(i) for i in ids]

    async def hint(self, lot_number: str) -> Entry | None:
        """The lot's latest entry as this process last saw it, else as its head says (either maybe behind)."""
        known = self.known_entry(lot_number)
        if known is not None:
            return known
        head = await self._head(lot_number)
        return None if head is None else self.saw_entry(head)

    async def _head(self, lot_number: str) -> Entry | None:
        """The lot's head: a copy of one of its entries, maybe behind (shelf.py)."""
        head = await self.db[HEADS].find_one({"_id": lot_number})
        if head is None:
            return None
        self._heads[lot_number] = head["seq"]
        return {**head, "_id": entry_id(lot_number, head["seq"])}

    def known_entry(self, lot_number: str) -> Entry | None:
        return self._lots.get(lot_number)

    def saw_entry(self, entry: Entry) -> Entry:
        """Remember an entry read or written; the latest one known of its lot is returned."""
        lot_number = entry["lot"]
        current = self._lots.pop(lot_number, None)
        if current is None or entry["seq"] > current["seq"]:
            current = entry
        self._lots[lot_number] = current  # last used goes last
        if len(self._lots) > MAX_LOTS_KNOWN:
            forgotten = next(iter(self._lots))
            del self._lots[forgotten]
            self._heads.pop(forgotten, None)
        return current

    def heads_due(self, entries: Iterable[Entry]) -> list[Entry]:
        """The entries worth saving as their lot's head (``head_due``)."""
        return [e for e in entries if head_due(self._heads, e["lot"], e["seq"])]

    async def latest(self, lot_number: str, known: Entry | None = None) -> Entry | None:
        """The lot's latest entry: from ``known`` (or the head) forward (``onward``)."""
        current = known if known is not None else await self.hint(lot_number)
        for following in await self.onward(lot_number, 0 if current is None else current["seq"] + 1):
            current = self.saw_entry(following)
        return current

    async def onward(self, lot_number: str, seq: int) -> list[Entry]:
        """The lot's entries from ``seq`` to its end, in order, ``ENTRIES_AT_ONCE`` a read. When the first read
        finds every slot taken, the lot may be far along (another instance moved it while this process did
        not look): the reading goes on from the lot's head where that is further, and the entries between
        are left out. A movement decided without them that contradicts them is refused by the ledger's unique
        keys, as one decided from the head always was; one whose cause an entry between used finds that entry
        when its insert is refused, and takes it for its own by what its caller decided from, not by what the
        event learnt of the session since (``Shelf._append``)."""
        found: list[Entry] = []
        head_read = False
        while True:
            read = await consecutive(self.ledger, [entry_id(lot_number, s) for s in range(seq, seq + ENTRIES_AT_ONCE)])
            found.extend(read)
            if len(read) < ENTRIES_AT_ONCE:
                return found
            seq += ENTRIES_AT_ONCE
            if not head_read:
                head_read = True
                head = await self._head(lot_number)
                if head is not None and head["seq"] >= seq:
                    found.append(head)
                    seq = head["seq"] + 1

    async def state(self, lot_number: str) -> LotState:
        return state_of(await self.latest(lot_number))

    async def session_entries(self, session_id: str, **where: Any) -> list[Entry]:
        """Every entry of a session. A search of the whole ledger: only for crash recovery, a session
        moved by a withdrawal, and operators; never on an event's usual path."""
        return await self.ledger.find({"session_id": session_id, **where}).sort("_id", ASCENDING).to_list()

    async def holders(self, lot_number: str, before_seq: int) -> dict[str, float]:
        """Sessions holding some of the lot just before entry ``before_seq``. A search of the whole
        ledger: only for withdrawing a lot (a recall or a quarantine, rare)."""
        found: dict[str, Entry] = {}
        for entry in await self.ledger.find({"lot": lot_number, "seq": {"$lt": before_seq}, "session_id": {"$ne": None}}).to_list():
            if entry["session_id"] not in found or entry["hold"] > found[entry["session_id"]]["hold"]:
                found[entry["session_id"]] = entry
        return {s: e["held"] for s, e in sorted(found.items()) if e["held"] > EPS}

    # -- the stock book and the StockLow claims ---------------------------------------------------

    async def book(self) -> Version:
        """The latest version: from the one this process saw last (or the head), one ``_id`` probe per
        version after it."""
        return await self._books.submit(BOOK, None)

    async def _book_now(self, _book: str, callers: list[None]) -> list[Version]:
        """One look for the versions after the latest known, for every event of this process that asked
        while the previous look was out (each look starts after its callers asked)."""
        latest = self._book
        if latest is None:
            head = await self.db[BOOK].find_one({"_id": BOOK_HEAD})
            latest = Version() if head is None else decode_book(head)
        while (following := await self.db[BOOK].find_one({"_id": book_id(latest.v + 1)})) is not None:
            latest = decode_book(following)
        return [self.saw(latest)] * len(callers)

    def saw(self, version: Version) -> Version:
        """Remember a version read or written; the latest one known is returned."""
        if self._book is None or version.v > self._book.v:
            self._book = version
        return self._book

    async def crossing(self, ingredient: str, n: int) -> Crossing | None:
        document = await self.db[ALERTS].find_one({"_id": crossing_id(ingredient, n)})
        return None if document is None else decode_crossing(document)


@dataclass(frozen=True)
class Placing:
    """One event's movements for ``Claims.place``: the lots it moves, ``plan`` (its entries decided from the
    latest entry of each lot, those decided for the group before it first; it writes nothing) and ``made``
    (told which of them were inserted, a prefix, maybe none)."""

    lots: tuple[str, ...]
    plan: Callable[[dict[str, Entry]], list[Entry]]
    made: Callable[[list[Entry]], None]


@dataclass(frozen=True)
class Want:
    """A session's need in one week from now on (None: nothing), for ``Claims.demand``."""

    session_id: str
    need: Need | None
    now: datetime


class Claims:
    """The writes a handler makes itself, before its Effects are recorded: claims on what patients share.

    Stock moves under many patients' events on several instances at once, so what it may do cannot be
    decided from a record only one of them writes: each claim is an insert under a deterministic unique
    key (a ledger entry's ``<lot>|<seq>``, its cause and its session's holding key; a book version; a lot
    number; a lot's flag slot; a StockLow crossing; a withdrawal's move of a session; a week's demand
    slot), which MongoDB and FerretDB both enforce atomically.
    The winner goes on; the loser reads what won and decides again. Recording them with the Effects would be
    too late: the Effects are applied after the decision, which is what the claim must protect.

    They are safe to make before the Effects because every key derives from the event (its round, its
    delivery, its escalation) or from what was claimed before it: a redelivered event, or a handler re-run
    after a crash, finds its own claims taken and reaches the same decision, and never moves stock twice.
    The lot heads and the book's head are hints, not claims: rewritten freely, never trusted.
    The session's round (``round``) is written ahead of a reservation's moves for the same reason.
    """

    def __init__(self, db: Db) -> None:
        self.db = db
        self.ledger: AsyncCollection[Document] = db[LEDGER]
        self.lot_heads: AsyncCollection[Document] = db[HEADS]
        self.locks = KeyedLocks()
        """Held around deciding and claiming a lot's next entries (``lot_key``: one movement, ``Shelf.append``,
        or a group's, ``place``), so that this process's patients handled at once take turns instead of
        racing. A week's demand slots need no lock: its group commit (``demand``) is its only writer here."""
        self._placings: GroupCommit[str, Placing, Exception | None] = GroupCommit(self._place, "ledger")
        self._wants: GroupCommit[tuple[Repository, date], Want, WeekDemand] = GroupCommit(self._demand, "demand")
        self._rounds: GroupCommit[str, UpdateOne, Exception | None] = GroupCommit(self._round, "rounds")

    async def entry(self, entry: Entry) -> bool:
        """Insert one ledger entry; False when a unique key (its slot, cause or holding key) is taken."""
        try:
            await self.ledger.insert_one(entry)
        except DuplicateKeyError:
            return False
        return True

    async def place(self, placing: Placing) -> None:
        """Insert the ledger entries ``placing`` decides, with those of the other events of this process that
        came meanwhile: one ordered insert a group (``GroupCommit``), decided in turn under the lots' locks,
        each from the entries decided before it. ``placing.made`` hears which of its entries were inserted
        before the group's ``_place`` returns, so the next group decides from them."""
        failed = await self._placings.submit(LEDGER, placing)
        if failed is not None:
            raise failed

    async def _place(self, _ledger: str, placings: list[Placing]) -> list[Exception | None]:
        failed: list[Exception | None] = [None] * len(placings)
        async with self.locks.hold(lot_key(n) for placing in placings for n in placing.lots):
            latest: dict[str, Entry] = {}
            planned: list[list[Entry]] = []
            for index, placing in enumerate(placings):
                try:
                    entries = placing.plan(latest)
                except Exception as error:  # that event's own failure; the others' entries are written
                    failed[index], entries = error, []
                latest.update((e["lot"], e) for e in entries)
                planned.append(entries)
            inserted = await self.in_order(self.ledger, [e for entries in planned for e in entries])
            for index, (placing, entries) in enumerate(zip(placings, planned, strict=True)):
                if failed[index] is None:
                    placing.made(entries[: max(inserted, 0)])
                inserted -= len(entries)
        return failed

    @staticmethod
    async def in_order(collection: AsyncCollection[Document], documents: list[Document]) -> int:
        """Insert ``documents`` in order, stopping at the first a unique key refuses; how many were inserted
        (a chain: each was decided from the one before, so none may land after a refused one). Sent
        ``ORDERED_CHUNK`` at a time: FerretDB v1 reads an insert's documents 100 at a time and, ordered or
        not, goes on with the next hundred after one that failed."""
        inserted = 0
        for start in range(0, len(documents), ORDERED_CHUNK):
            chunk = documents[start : start + ORDERED_CHUNK]
            try:
                await collection.insert_many(chunk, ordered=True)
            except BulkWriteError as error:
                problems = error.details.get("writeErrors", [])
                if not problems or any(problem.get("code") != 11000 for problem in problems):
                    raise
                return inserted + min(int(problem["index"]) for problem in problems)
            inserted += len(chunk)
        return inserted

    async def heads(self, entries: Iterable[Entry]) -> None:
        """Save each lot's latest entry known as its head (a hint)."""
        writes = [ReplaceOne({"_id": e["lot"]}, {**e, "_id": e["lot"]}, upsert=True) for e in entries]
        if not writes:
            return
        try:
            await self.lot_heads.bulk_write(writes, ordered=False)
        except BulkWriteError as error:  # two instances creating one head at once: either copy will do
            if any(problem.get("code") != 11000 for problem in error.details.get("writeErrors", [])):
                raise

    async def book(self, version: Version) -> bool:
        """Insert the stock book's version ``v``; False when another writer made version ``v`` first."""
        document = encode_book(version)
        try:
            await self.db[BOOK].insert_one(document)
        except DuplicateKeyError:
            return False
        try:
            await self.db[BOOK].replace_one({"_id": BOOK_HEAD}, {**document, "_id": BOOK_HEAD}, upsert=True)
        except DuplicateKeyError:  # two instances creating the head at once: it is only a hint
            pass
        return True

    async def round(self, ref: SessionRef, round_id: str) -> None:
        """The reservation's round on the session's document, before it moves stock: the write-ahead a
        re-run or the session's next event reads (its Effects mark it done). The rounds of this process's
        events that come while one group is written go together, in one bulk write."""
        fields = {"patient_id": ref.patient_id, "course_id": ref.course_id, "scheduled_for": ref.scheduled_for, "round": {"id": round_id, "done": False}}
        failed = await self._rounds.submit(SESSIONS, UpdateOne({"_id": ref.session_id}, {"$set": fields}, upsert=True))
        if failed is not None:
            raise failed

    async def _round(self, _sessions: str, writes: list[UpdateOne]) -> list[Exception | None]:
        """Each write's own refusal (two instances creating one session's document at once), if any."""
        try:
            await self.db[SESSIONS].bulk_write(writes, ordered=False)
        except BulkWriteError as error:
            if error.details.get("writeConcernErrors"):
                raise
            failed: list[Exception | None] = [None] * len(writes)
            for problem in error.details.get("writeErrors", []):
                refusal = DuplicateKeyError if problem.get("code") == 11000 else OperationFailure
                failed[problem["index"]] = refusal(problem.get("errmsg", "write refused"), problem.get("code"), problem)
            return failed
        return [None] * len(writes)

    async def lot(self, lot: LotMeta, delivery_id: str, received_at: datetime) -> LotMeta:
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
            return _lot_meta(document)

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

    async def moving(self, lot_number: str, kind: str, session_id: str) -> bool:
        """Claim that the withdrawal of the lot begins moving the session; False when a run before this one
        (which crashed) already began it."""
        try:
            await self.db[MOVES].insert_one({"_id": f"{lot_number}|{kind}|{session_id}"})
        except DuplicateKeyError:
            return False
        return True

    async def crossing(self, crossing: Crossing) -> Crossing:
        """Claim StockLow crossing ``n`` of the ingredient, or return the claim that got there first."""
        try:
            await self.db[ALERTS].insert_one(encode_crossing(crossing))
            return crossing
        except DuplicateKeyError:
            document = await self.db[ALERTS].find_one({"_id": crossing_id(crossing.ingredient, crossing.n)})
            return crossing if document is None else decode_crossing(document)

    async def demand(self, repo: Repository, session_id: str, week: date, need: Need | None, now: datetime) -> WeekDemand:
        """What the session needs in the week from now on (None: nothing), as the week's next slot: a claim,
        because every patient's sessions of a week share its slots. The slot number comes from the latest
        demand of the week this process knows; when another writer took it, the week is read forward and
        the next one tried. Amounts are absolute, so a re-run after a crash writes the same need again
        (harmless), and re-running an earlier event and then the later one ends where they did. The
        sessions of this process that want a slot of the week meanwhile are written together, in order
        (``GroupCommit``). The week's head (a hint) is rewritten after, every ``HEAD_EVERY`` slots or more
        in a busy week. Returns the week's demand with this session's slot."""
        return await self._wants.submit((repo, week), Want(session_id, need, now))

    async def _demand(self, key: tuple[Repository, date], wants: list[Want]) -> list[WeekDemand]:
        repo, week = key
        known = repo.known_week(week) or await repo.week_demand(week)
        after: list[WeekDemand] = []
        while len(after) < len(wants):
            pending = wants[len(after):]
            slots = [_slot(week, known.upto + 1 + n, want) for n, want in enumerate(pending)]
            inserted = await self.in_order(self.db[DEMAND], slots)
            for want, slot in zip(pending[:inserted], slots, strict=False):
                known = repo.saw_week(known.with_slot(slot["seq"], want.session_id, want.need))
                after.append(known)
            if len(after) < len(wants):  # another writer took the next slot: read on, try the one after
                known = repo.saw_week(await repo.demand_after(known))
        if repo.week_head_due(known):
            try:
                await self.db[DEMAND_HEADS].replace_one({"_id": week.isoformat()}, encode_week(known), upsert=True)
            except DuplicateKeyError:  # two writers creating the head at once: it is only a hint
                pass
        return after

    async def rearm(self, ingredient: str, n: int, cause: str, now: datetime) -> None:
        """Claim the re-arming after crossing ``n`` (stock rose above the reorder point again)."""
        try:
            await self.db[ALERTS].insert_one({"_id": f"{ingredient}|armed|{n}", "ingredient": ingredient, "kind": "armed", "n": n, "cause": cause, "at": now})
        except DuplicateKeyError:
            pass


async def stock_levels(db: Db, today: date | None = None, ingredients: set[str] | None = None) -> list[LotStock]:
    """Every lot ever received (optionally of some ingredients) with its balance, FEFO order within an
    ingredient; ``today`` marks lots past their expiry as expired. For operators: this reads all of
    ``lots`` and follows each lot's head to its latest entry, so it is never called per event."""
    repo = Repository(db)
    where: Document = {} if ingredients is None else {"ingredient": {"$in": sorted(ingredients)}}
    levels = []
    for lot in await db[LOTS].find(where).sort([("ingredient", ASCENDING), ("expires_on", ASCENDING), ("_id", ASCENDING)]).to_list():
        levels.append(level(_lot_meta(lot), await repo.latest(lot["_id"]), today, lot.get("status", "available")))
    return levels


# -- documents <-> domain objects ------------------------------------------------------------------


def _lot_meta(document: Document) -> LotMeta:
    return LotMeta(document["_id"], document["ingredient"], document["unit"], date.fromisoformat(document["expires_on"]))


def encode_holds(holds: dict[str, Hold]) -> Document:
    return {
        n: {"ingredient": h.meta.ingredient, "unit": h.meta.unit, "expires_on": h.meta.expires_on.isoformat(), "amount": h.amount, "version": h.version}
        for n, h in holds.items()
    }


def decode_holds(document: Document | None) -> dict[str, Hold]:
    return {
        n: Hold(LotMeta(n, h["ingredient"], h["unit"], date.fromisoformat(h["expires_on"])), h["amount"], h["version"])
        for n, h in (document or {}).items()
    }


def book_id(v: int) -> str:
    return f"v|{v:08d}"


def encode_book(version: Version) -> Document:
    return {
        "_id": book_id(version.v),
        "v": version.v,
        "lots": {n: {"ingredient": m.ingredient, "unit": m.unit, "expires_on": m.expires_on.isoformat()} for n, m in version.lots.items()},
        "alerts": {i: {"n": a.n, "armed": a.armed, "cause": a.cause} for i, a in version.alerts.items()},
    }


def decode_book(document: Document) -> Version:
    return Version(
        document["v"],
        {n: LotMeta(n, m["ingredient"], m["unit"], date.fromisoformat(m["expires_on"])) for n, m in document["lots"].items()},
        {i: Alert(a["n"], a["armed"], a["cause"]) for i, a in document["alerts"].items()},
    )


def crossing_id(ingredient: str, n: int) -> str:
    return f"{ingredient}|low|{n}"


def encode_crossing(c: Crossing) -> Document:
    return {
        "_id": crossing_id(c.ingredient, c.n), "ingredient": c.ingredient, "kind": "low", "n": c.n, "cause": c.cause, "at": c.at,
        "unit": c.unit, "on_hand": c.on_hand, "reserved": c.reserved, "available": c.available, "reorder_point": c.reorder_point,
    }


def decode_crossing(d: Document) -> Crossing:
    return Crossing(d["ingredient"], d["n"], d["cause"], d["at"], d["unit"], d["on_hand"], d["reserved"], d["available"], d["reorder_point"])


async def consecutive(collection: AsyncCollection[Document], ids: list[str]) -> list[Document]:
    """The documents of ``ids`` (numbered slots, in order) up to the first that does not exist, in one read by
    ``_id``: how a lot's entries and a week's demand slots are read forward from a hint."""
    found = await by_ids(collection, ids)
    run: list[Document] = []
    for slot_id in ids:
        if (document := found.get(slot_id)) is None:
            break
        run.append(document)
    return run


def head_due(saved: dict[K, int], key: K, seq: int, every: int = HEAD_EVERY) -> bool:
    """Whether a head (a lot's, a week's demand) is worth rewriting at ``seq``: ``every`` or more past the
    one this process last read or wrote (``saved``, then updated), or none known here. A head behind
    costs a process that has not seen it a read forward through the entries it lags, once; rewriting it
    after every movement cost a write per event."""
    if seq - saved.get(key, -every) < every:
        return False
    saved[key] = seq
    return True


def lot_key(lot_number: str) -> str:
    return f"lot|{lot_number}"


def _slot(week: date, seq: int, want: Want) -> Document:
    slot: Document = {"_id": demand_slot_id(week, seq), "week": week.isoformat(), "seq": seq, "session_id": want.session_id, "at": want.now}
    slot.update(encode_need(want.need))
    return slot


def demand_slot_id(week: date, seq: int) -> str:
    return f"{week.isoformat()}|{seq:06d}"


def encode_need(need: Need | None) -> Document:
    if need is None or not need.needs:
        return {"day": None, "needs": []}
    return {"day": need.day.isoformat(), "needs": [{"ingredient": i, "amount": a} for i, a in sorted(need.needs.items())]}


def decode_need(document: Document) -> Need | None:
    if not document.get("day") or not document.get("needs"):
        return None
    return Need(date.fromisoformat(document["day"]), {n["ingredient"]: n["amount"] for n in document["needs"]})


def encode_week(week: WeekDemand) -> Document:
    """The week's sessions packed (``shared.runtime.store.pack``): a busy week holds hundreds, and the head
    is rewritten every ``HEAD_EVERY`` bookings of the week or more (``Repository.week_head_due``)."""
    sessions = [{"session_id": s, **encode_need(n)} for s, n in sorted(week.sessions.items())]
    return {"upto": week.upto, "session_count": len(sessions), "packed": pack({"sessions": sessions})}


def decode_week(week: date, document: Document | None) -> WeekDemand:
    if document is None:
        return WeekDemand(week)
    listed = unpack(document["packed"])["sessions"] if "packed" in document else document["sessions"]
    sessions = {s["session_id"]: need for s in listed if (need := decode_need(s)) is not None}
    return WeekDemand(week, document["upto"], sessions)
