"""The ledger's compare-and-set on ``<lot>|<seq>`` and on each session's holding: stale heads, causes used
before, a session's record behind its entries, batches."""

import asyncio
import itertools
from datetime import UTC, date, datetime

from services.inventory import domain as balance
from services.inventory.domain import LotMeta, Need, SessionRef, entry_id
from services.inventory.repository import DEMAND, DEMAND_HEADS, HEAD_EVERY, HEADS, SLOTS_AT_ONCE, WEEK_HEAD_SHARE, Claims, Repository
from services.inventory.shelf import Earlier, Request, Shelf
from tests.support.memory import MemoryDatabase as Database

NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)
BIO = LotMeta("BIO-1", "biotin", "mg", date(2026, 12, 31))
MNX = LotMeta("MNX-1", "minoxidil", "mg", date(2026, 12, 31))


def ref(n: int) -> SessionRef:
    return SessionRef(f"ses_UNIT_{n}", f"pt_UNIT{n:05d}", f"crs_UNIT{n:04d}", NOW)


async def database() -> Database:
    """The memory store with the ledger's unique indexes, as the service creates them."""
    db = Database("inventory")
    await Repository(db).ensure_indexes()  # type: ignore[arg-type]
    return db


def shelf(db: Database, *knowing: Shelf) -> Shelf:
    """A shelf for the next event; it knows what the sessions hold as ``knowing`` left it (their records)."""
    fresh = Shelf(Repository(db), Claims(db))  # type: ignore[arg-type]
    for earlier in knowing:
        for session_id in earlier._holds:
            fresh.seed(session_id, earlier.holds(session_id))
    return fresh


async def stocked(db: Database, *lots: LotMeta, quantity: float = 10) -> None:
    s = shelf(db)
    for lot in lots:
        await s.append(lot, f"receive|{lot.lot_number}", lambda state, held: balance.receive(state, quantity), NOW)
    await s.flush()


async def reserve(s: Shelf, n: int, amount: float, lot: LotMeta = BIO, cause: str | None = None):
    made = await s.append(lot, cause or f"reserve|{n}", lambda state, held: balance.reserve(state, amount), NOW, ref(n), repeatable=True)
    await s.flush()
    return made


async def test_a_movement_decided_from_a_head_left_behind_is_made_after_the_real_last_entry():
    db = await database()
    await stocked(db, BIO)
    await reserve(shelf(db), 1, 6)
    db[HEADS].docs["BIO-1"] = {**db["ledger"].docs[entry_id("BIO-1", 0)], "_id": "BIO-1"}  # back to the receipt

    made = await reserve(shelf(db), 2, 6)

    assert made["seq"] == 2 and made["amount"] == 4  # 10 on hand, 6 already held
    assert db["ledger"].searches == 0


async def test_a_lots_head_is_saved_once_it_is_head_every_entries_behind():
    db = await database()
    await stocked(db, BIO, quantity=100)
    assert db[HEADS].docs["BIO-1"]["seq"] == 0  # a lot's first entry is its first head
    repo = Repository(db)  # type: ignore[arg-type]
    for n in range(1, HEAD_EVERY + 1):
        made = await reserve(Shelf(repo, Claims(db)), n, 1)  # type: ignore[arg-type]
        assert made["seq"] == n
        assert db[HEADS].docs["BIO-1"]["seq"] == (0 if n < HEAD_EVERY else HEAD_EVERY)


async def test_a_process_decides_from_the_latest_entry_it_saw_without_reading_the_lot_and_steps_on_when_another_moved_it():
    db = await database()
    await stocked(db, BIO)
    mine, other = Repository(db), Repository(db)  # type: ignore[arg-type]
    await reserve(Shelf(mine, Claims(db)), 1, 2)  # type: ignore[arg-type]
    reads = db[HEADS].reads
    await reserve(Shelf(mine, Claims(db)), 2, 2)  # type: ignore[arg-type]
    assert db[HEADS].reads == reads  # its own last entry is the lot's latest: nothing read

    await reserve(Shelf(other, Claims(db)), 3, 2)  # another instance moves the lot: this process is behind
    made = await reserve(Shelf(mine, Claims(db)), 4, 5)  # type: ignore[arg-type]

    assert made["seq"] == 4 and made["amount"] == 4  # 10 on hand, 6 held by the three before: never oversold


async def test_a_process_far_behind_finds_its_rounds_earlier_movement_among_the_entries_it_reads_past():
    """Another run of the same round (a consumer the rebalance had not stopped yet) reserved for session 1 twice
    while this process did not look at the lot: ``reserve|1|r`` at seq 21, ``reserve|1|r|2`` at seq 41. This
    process reads on past seq 21 (16 entries a read, then from the lot's head at 32) and sees only the later
    one. Its reservation under the same cause is that earlier movement, news to what it decided from (the
    session held nothing as far as it knew): returned, not made a third time."""
    db = await database()
    await stocked(db, BIO, quantity=1000)
    busy, behind = Repository(db), Repository(db)  # type: ignore[arg-type]
    await Shelf(behind, Claims(db)).load(["BIO-1"])  # type: ignore[arg-type]  # it knows the receipt, seq 0
    for n in range(2, 22):
        await reserve(Shelf(busy, Claims(db)), n, 1)  # type: ignore[arg-type]
    first = Shelf(busy, Claims(db))  # type: ignore[arg-type]
    assert (await reserve(first, 1, 3, cause="reserve|1|r"))["seq"] == 21
    for n in range(22, 41):
        await reserve(Shelf(busy, Claims(db)), n, 1)  # type: ignore[arg-type]
    assert (await reserve(shelf(db, first), 1, 3, cause="reserve|1|r"))["_id"] == entry_id("BIO-1", 41)  # a further one: |2
    assert db[HEADS].docs["BIO-1"]["seq"] == 32

    made = await reserve(Shelf(behind, Claims(db)), 1, 3, cause="reserve|1|r")  # type: ignore[arg-type]

    assert made["_id"] == entry_id("BIO-1", 21)
    assert len(db["ledger"].docs) == 42  # nothing new
    latest = db["ledger"].docs[entry_id("BIO-1", 41)]
    assert (latest["reserved"], latest["held"]) == (45, 6)


async def test_a_consumption_decided_from_a_record_behind_the_ledger_is_made_from_what_the_session_holds():
    db = await database()
    await stocked(db, BIO)
    await reserve(shelf(db), 1, 3)  # its record (the session's document) never got this

    used = await shelf(db).append(BIO, "consume|1", lambda state, held: balance.consume(state, held, 2), NOW, ref(1))

    assert (used["held_delta"], used["held"], used["hold"], used["reserved"], used["on_hand"]) == (-3, 0, 2, 0, 8)
    assert db["ledger"].searches == 1


async def test_a_movement_whose_cause_was_used_is_not_made_again():
    db = await database()
    await stocked(db, BIO)
    first = shelf(db)
    await reserve(first, 1, 3)
    consume = lambda state, held: balance.consume(state, held, 3)  # noqa: E731
    done = shelf(db, first)
    used = await done.append(BIO, "consume|1", consume, NOW, ref(1))
    await done.flush()

    again = await shelf(db, done).append(BIO, "consume|1", consume, NOW, ref(1))

    assert used["on_hand"] == 7 and again == Earlier(used)
    assert len(db["ledger"].docs) == 3


async def test_an_entry_made_by_an_earlier_run_whose_head_was_never_saved_is_that_runs_movement():
    db = await database()
    await stocked(db, BIO)
    crashed = shelf(db)
    await crashed.append(BIO, "reserve|1", lambda state, held: balance.reserve(state, 4), NOW, ref(1), repeatable=True)  # no flush

    again = await reserve(shelf(db), 1, 4)

    assert again["seq"] == 1 and (again["held"], again["hold"]) == (4, 1)
    assert len(db["ledger"].docs) == 2


async def test_a_further_reservation_under_a_used_cause_gets_the_next_name():
    db = await database()
    await stocked(db, BIO)
    first = shelf(db)
    await reserve(first, 1, 2)

    further = await reserve(shelf(db, first), 1, 3)

    assert further["cause"] == "reserve|1|2" and (further["held"], further["hold"]) == (5, 2)


async def test_each_consumption_points_to_the_one_before_and_a_withdrawal_says_where_it_is():
    db = await database()
    await stocked(db, BIO)
    s = shelf(db)
    await reserve(s, 1, 3)
    await reserve(s, 2, 2)
    used = await s.append(BIO, "consume|1", lambda state, held: balance.consume(state, held, 3), NOW, ref(1))
    second = await s.append(BIO, "consume|2", lambda state, held: balance.consume(state, held, 1), NOW, ref(2))
    withdrawn = await s.append(BIO, "withdraw|BIO-1|recall", lambda state, held: balance.withdraw(state), NOW, withdrawal="recall")

    assert (used["held"], used["hold"], second["held"], second["hold"]) == (0, 2, 0, 2)
    assert (used["prev_consume"], second["prev_consume"], withdrawn["last_consume"]) == (None, used["seq"], second["seq"])
    assert withdrawn["withdrawals"] == {"recall": withdrawn["seq"]} and withdrawn["on_hand"] == 6


async def test_a_batch_makes_its_movements_in_one_insert_and_remakes_only_the_lot_that_moved_meanwhile():
    db = await database()
    await stocked(db, BIO, MNX)
    s = shelf(db)
    await s.load(["BIO-1", "MNX-1"])
    await reserve(shelf(db), 9, 8, MNX)  # another instance takes minoxidil after we read it

    made = await s.append_many(
        [
            Request(BIO, "reserve|1|BIO", lambda state, held: balance.reserve(state, 5), ref(1), repeatable=True),
            Request(MNX, "reserve|1|MNX", lambda state, held: balance.reserve(state, 5), ref(1), repeatable=True),
        ],
        NOW,
    )

    assert [(m["lot"], m["seq"], m["amount"]) for m in made] == [("BIO-1", 1, 5), ("MNX-1", 2, 2)]


async def test_a_busy_weeks_demand_head_costs_about_as_much_per_booking_as_a_quiet_ones_and_is_read_forward_in_batches():
    """A week's head packs all its sessions, so rewriting it every HEAD_EVERY bookings cost more per booking
    the fuller the week; it is rewritten once the week has grown by an eighth instead. A process that has
    not seen the week reads forward from the head SLOTS_AT_ONCE slots a query."""
    db = await database()
    writer = Repository(db)  # type: ignore[arg-type]
    week = date(2026, 3, 9)
    heads: list[int] = []
    for n in range(1, 801):
        await Claims(db).demand(writer, f"ses_UNIT_{n:04d}", week, Need(week, {"biotin": 1.0}), NOW)  # type: ignore[arg-type]
        heads.append(db[DEMAND_HEADS].docs.get(week.isoformat(), {"upto": 0})["upto"])
    rewrites = [upto for before, upto in zip([0, *heads], heads, strict=False) if upto != before]
    assert rewrites[:8] == [16 * k for k in range(1, 9)], "a quiet week: every HEAD_EVERY slots"
    assert all(later - earlier >= max(HEAD_EVERY, earlier // WEEK_HEAD_SHARE) for earlier, later in itertools.pairwise(rewrites))
    assert len(rewrites) < 800 // HEAD_EVERY // 2
    assert 800 - heads[-1] <= 800 // WEEK_HEAD_SHARE

    queries = db[DEMAND].reads + db[DEMAND].searches
    seen = await Repository(db).week_demand(week)  # type: ignore[arg-type]
    assert (seen.upto, len(seen.sessions)) == (800, 800)
    assert db[DEMAND].reads + db[DEMAND].searches - queries == (800 - heads[-1]) // SLOTS_AT_ONCE + 1


def counting_inserts(db: Database, name: str) -> list[int]:
    """The sizes of the inserts the collection is sent, in order."""
    collection = db[name]
    sizes: list[int] = []
    insert_one, insert_many = collection.insert_one, collection.insert_many

    async def one(document, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(1)
        return await insert_one(document, **kwargs)

    async def many(documents, ordered=True, **kwargs):  # type: ignore[no-untyped-def]
        documents = list(documents)
        sizes.append(len(documents))
        collection.insert_one = insert_one  # its own inserts are not counted again
        try:
            return await insert_many(documents, ordered=ordered, **kwargs)
        finally:
            collection.insert_one = one

    collection.insert_one, collection.insert_many = one, many
    return sizes


async def test_reservations_of_one_process_at_once_are_decided_in_turn_and_inserted_together_never_beyond_the_lot():
    """Fifteen sessions of one process want 1 mg each of a lot of 10 at once: their entries are decided
    each from the one before and sent in one ordered insert, and the lot gives exactly what it holds."""
    db = await database()
    await stocked(db, BIO)
    repo, claims = Repository(db), Claims(db)  # type: ignore[arg-type]
    sizes = counting_inserts(db, "ledger")
    requests = [Request(BIO, f"reserve|{n}|BIO", lambda state, held: balance.reserve(state, 1), ref(n), repeatable=True) for n in range(15)]

    made = await asyncio.gather(*(Shelf(repo, claims).append_many([request], NOW) for request in requests))

    entries = sorted(db["ledger"].docs.values(), key=lambda e: e["seq"])
    assert sizes == [10], "one insert: the ten that find stock (the other five move nothing)"
    assert [e["seq"] for e in entries] == list(range(11))  # the receipt, then the ten in turn
    assert sum(e["amount"] for e in entries if e["kind"] == "reserve") == 10
    assert (entries[-1]["on_hand"], entries[-1]["reserved"], entries[-1]["available"]) == (10, 10, 0)
    assert [m[0] is None for m in made].count(True) == 5  # nothing left for the last five


async def test_when_another_process_took_the_slot_a_group_is_refused_from_there_and_each_of_the_rest_is_made_on_its_own():
    db = await database()
    await stocked(db, BIO, MNX)
    repo, claims = Repository(db), Claims(db)  # type: ignore[arg-type]
    await Shelf(repo, claims).load(["BIO-1", "MNX-1"])  # this process has seen both lots
    await reserve(shelf(db), 9, 4, BIO)  # another process reserves biotin after that
    sizes = counting_inserts(db, "ledger")

    def both(n: int) -> list[Request]:
        return [Request(lot, f"reserve|{n}|{lot.lot_number}", lambda state, held: balance.reserve(state, 2), ref(n), repeatable=True) for lot in (MNX, BIO)]

    made = await asyncio.gather(*(Shelf(repo, claims).append_many(both(n), NOW) for n in range(3)))

    ledger = db["ledger"].docs
    assert sizes[0] == 6, "the group: three sessions' two entries"
    bio = sorted((e for e in ledger.values() if e["lot"] == "BIO-1"), key=lambda e: e["seq"])
    mnx = sorted((e for e in ledger.values() if e["lot"] == "MNX-1"), key=lambda e: e["seq"])
    assert [e["seq"] for e in bio] == list(range(len(bio))) and [e["seq"] for e in mnx] == list(range(len(mnx)))
    assert [m["amount"] for made_n in made for m in made_n] == [2, 2] * 3
    assert (bio[-1]["reserved"], bio[-1]["available"], mnx[-1]["reserved"], mnx[-1]["available"]) == (10, 0, 6, 4)
    assert {e["session_id"]: e["held"] for e in bio if e["session_id"]} == {"ses_UNIT_9": 4, "ses_UNIT_0": 2, "ses_UNIT_1": 2, "ses_UNIT_2": 2}


async def test_sessions_wanting_a_weeks_demand_at_once_take_its_next_slots_in_one_insert_and_read_on_past_another_writers():
    db = await database()
    week = date(2026, 3, 9)
    repo, claims = Repository(db), Claims(db)  # type: ignore[arg-type]
    await claims.demand(repo, "ses_UNIT_0000", week, Need(week, {"biotin": 1.0}), NOW)  # type: ignore[arg-type]
    other = Repository(db)  # type: ignore[arg-type]
    await Claims(db).demand(other, "ses_UNIT_0099", week, Need(week, {"biotin": 9.0}), NOW)  # type: ignore[arg-type]  # another process: slot 2
    sizes = counting_inserts(db, DEMAND)

    after = await asyncio.gather(*(claims.demand(repo, f"ses_UNIT_{n:04d}", week, Need(week, {"biotin": float(n)}), NOW) for n in range(1, 5)))  # type: ignore[arg-type]

    assert sizes == [4, 4], "the group's first slot was taken: read on, then the four again after it"
    assert [a.upto for a in after] == [3, 4, 5, 6]
    assert sorted(d["seq"] for d in db[DEMAND].docs.values()) == list(range(1, 7))
    seen = await Repository(db).week_demand(week)  # type: ignore[arg-type]
    assert seen.upto == 6 and {s: n.needs["biotin"] for s, n in seen.sessions.items()} == {
        "ses_UNIT_0000": 1.0, "ses_UNIT_0099": 9.0, **{f"ses_UNIT_{n:04d}": float(n) for n in range(1, 5)}
    }


async def test_the_rounds_and_book_looks_of_events_at_once_go_to_the_store_together():
    """Six reservations at once: their rounds in one bulk write, and one look for newer book versions
    between them (each look starts after its callers asked, so none misses a version written before)."""
    db = await database()
    repo, claims = Repository(db), Claims(db)  # type: ignore[arg-type]
    writes: list[int] = []
    bulk_write = db["sessions"].bulk_write

    async def counted(requests, ordered=True, **kwargs):  # type: ignore[no-untyped-def]
        writes.append(len(requests))
        return await bulk_write(requests, ordered=ordered, **kwargs)

    db["sessions"].bulk_write = counted
    reads = db["stock_book"].reads

    await asyncio.gather(*(claims.round(ref(n), f"r{n}") for n in range(6)), *(repo.book() for _ in range(6)))

    assert writes == [6]
    assert db["stock_book"].reads - reads == 2  # one look: the head, and the version after it (none)
    assert {d["_id"]: d["round"] for d in db["sessions"].docs.values()} == {f"ses_UNIT_{n}": {"id": f"r{n}", "done": False} for n in range(6)}
