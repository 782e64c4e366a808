"""Never oversell a lot: two inventory instances, and many reservations racing on the real store."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from pymongo import AsyncMongoClient, monitoring

from clinic.polling import eventually
from services.inventory.app import create_service
from services.inventory.domain import SessionRef
from services.inventory.repository import Claims, Repository
from services.inventory.shelf import Shelf
from services.inventory.stock import reserve_session
from shared.clock import ManualClock
from shared.contracts.inventory import IngredientShortage, IngredientsReserved
from shared.contracts.scheduling import SessionScheduled
from tests.integration.inventory.stockroom import NOW, SESSION_AT, Crash, Stockroom, dying, levels, stock_lot, stocked


async def test_two_instances_reserving_thirty_sessions_from_a_lot_for_ten_never_exceed_it(settings, bus, run_id):
    room = Stockroom(run_id)
    lot = room.lot("BIO")
    await bus.publish(room.received("biotin", lot, 50, date(2026, 12, 31)))
    one = create_service(settings.model_copy(update={"instance_id": f"inv-a-{run_id}"}), ManualClock(NOW))
    two = create_service(settings.model_copy(update={"instance_id": f"inv-b-{run_id}"}), ManualClock(NOW))
    async with one, two:
        await eventually(lambda: _both_assigned(one, two), what="both instances own partitions")
        await stocked(settings, 1)
        await asyncio.gather(*(bus.publish(room.scheduled(n, {"biotin": 5.0})) for n in range(30)))
        # both instances relay the shared outbox, so an event may arrive twice with the same id
        reserved = await eventually(lambda: _sessions(bus, IngredientsReserved, 10), timeout=45, what="10 sessions reserved")
        short = await eventually(lambda: _sessions(bus, IngredientShortage, 20), timeout=45, what="20 sessions short")
        # an instance counts what it handled once the batch's offsets are committed, after its events went out
        await eventually(lambda: _bookings_handled(30, one, two), what="30 bookings counted by the instances")
        handled_by = (one.stats.handled.get(SessionScheduled.event_type, 0), two.stats.handled.get(SessionScheduled.event_type, 0))

    assert len(reserved) == 10 and len({e.id for e in await bus.events(IngredientsReserved)}) == 10
    assert reserved.isdisjoint(short)
    assert all(handled_by), f"both instances must have handled bookings, got {handled_by}"
    stock = (await levels(settings))[lot]
    assert (stock.on_hand, stock.reserved, stock.available) == (50, 50, 0)


async def test_many_tasks_reserving_from_one_lot_at_once_take_exactly_what_it_holds(settings, run_id):
    """Forty sessions race for a lot that covers ten, through two separate clients (like two processes). Each
    process's reservations are grouped into ordered inserts (``Claims.place``) that race the other's."""
    clients = [AsyncMongoClient(settings.mongodb_url.get_secret_value(), tz_aware=True) for _ in range(2)]
    try:
        repos = [Repository(client[settings.database("inventory")]) for client in clients]
        claims = [Claims(repo.db) for repo in repos]
        await repos[0].ensure_indexes()
        meta = await stock_lot(repos[0], f"BIO-{run_id.upper()}", 10, date(2026, 12, 31))

        async def book(n: int):
            ref = SessionRef(f"ses_RACE{run_id}_{n}", f"pt_RACE{n}X{run_id}", f"crs_RACE{n}X{run_id}", SESSION_AT)
            return await reserve_session(Shelf(repos[n % 2], claims[n % 2]), ref, {"biotin": 1.0}, f"r{n}", NOW.date(), NOW, None)

        outcomes = await asyncio.gather(*(book(n) for n in range(40)))
        state = await repos[1].state(meta.lot_number)
        entries = await repos[1].ledger.find({"lot": meta.lot_number}).sort("seq", 1).to_list()
    finally:
        for client in clients:
            await client.close()

    assert sum(not o.short for o in outcomes) == 10
    assert (state.on_hand, state.reserved, state.available) == (10, 10, 0)
    assert [e["seq"] for e in entries] == list(range(len(entries)))  # no gap, no double sequence number
    assert sum(e["amount"] for e in entries if e["kind"] == "reserve") == 10
    held = {e["session_id"]: e["held"] for e in entries if e["session_id"]}  # the latest entry of each session
    assert held == {f"ses_RACE{run_id}_{n}": 1.0 for n, o in enumerate(outcomes) if not o.short}


async def test_a_round_run_again_after_a_crash_continues_where_it_stopped_and_takes_nothing_twice(settings, run_id):
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value(), tz_aware=True)
    try:
        repo = Repository(client[settings.database("inventory")])
        await repo.ensure_indexes()
        first = await stock_lot(repo, f"BIO-A{run_id.upper()}", 3, date(2026, 6, 30))
        second = await stock_lot(repo, f"BIO-B{run_id.upper()}", 10, date(2026, 12, 31))
        ref = SessionRef(f"ses_CRASH{run_id}_1", f"pt_CRASH{run_id}", f"crs_CRASH{run_id}", SESSION_AT)

        async def reserve(repo: Repository, needs: dict[str, float], round_id: str, claims: Claims | None = None):
            shelf = Shelf(repo, Claims(repo.db)) if claims is None else Shelf(Repository(repo.db), claims)  # the dying process knows nothing yet
            return await reserve_session(shelf, ref, needs, round_id, NOW.date(), NOW, await repo.session(ref.session_id))

        # the process dies after the first ledger entry of round r1 is in (3 from the first lot, not the 2 from the second)
        with pytest.raises(Crash):
            await reserve(repo, {"biotin": 5.0}, "r1", claims=dying(repo, inserts=1))

        resumed = await reserve(repo, {"biotin": 5.0}, "r1")
        again = await reserve(repo, {"biotin": 5.0}, "r1")
        # a later round that cannot be covered gives everything back; run twice, it decides the same
        short = await reserve(repo, {"biotin": 50.0}, "r2")
        short_again = await reserve(repo, {"biotin": 50.0}, "r2")
        states = [await repo.state(lot.lot_number) for lot in (first, second)]
        entries = await repo.session_entries(ref.session_id)
    finally:
        await client.close()

    assert sorted((h.lot_number, h.amount) for h in resumed.held) == [(first.lot_number, 3), (second.lot_number, 2)]
    assert again.held == resumed.held
    assert short.missing == short_again.missing == {"biotin": 37.0}  # 50 wanted, 13 in stock
    assert sorted((h.lot_number, h.amount) for h in short_again.released) == [(first.lot_number, 3), (second.lot_number, 2)]
    assert [s.reserved for s in states] == [0, 0]
    assert sorted(e["kind"] for e in entries) == ["release", "release", "reserve", "reserve"]


async def _sessions(bus, model, count: int) -> set[str] | None:
    found = {e.data.session_id for e in await bus.events(model)}
    return found if len(found) >= count else None


async def _bookings_handled(count: int, *services) -> bool:
    return sum(s.stats.handled.get(SessionScheduled.event_type, 0) for s in services) >= count


async def _both_assigned(*services) -> bool:
    """Both own partitions and the group has settled: each partition has exactly one owner.

    Publishing while the second instance's join is still being rebalanced has been seen to leave the
    bookings unhandled (see the closing note of issue 5); this test is about the ledger, so it starts
    from a settled group."""
    owned = [s._owned_partitions() for s in services]
    return all(owned) and sum(len(o) for o in owned) == len(set().union(*owned))


async def test_a_chain_of_more_than_a_hundred_entries_stops_at_its_first_refused_one(settings, run_id):
    """FerretDB v1 goes on with an ordered insert's next hundred documents after one that failed; a chain
    must not (an entry landing after a refused one was decided from an entry that is not there)."""
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value(), tz_aware=True)
    try:
        ledger = client[settings.database("inventory")][f"chain{run_id}"]
        await ledger.insert_one({"_id": "L|000005"})  # another instance took slot 5
        inserted = await Claims.in_order(ledger, [{"_id": f"L|{seq:06d}"} for seq in range(150)])
        left = sorted([d["_id"] async for d in ledger.find({})])
        await ledger.drop()
    finally:
        await client.close()

    assert inserted == 5
    assert left == [f"L|{seq:06d}" for seq in range(6)]


class _Finds(monitoring.CommandListener):
    def __init__(self) -> None:
        self.finds = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.finds += event.command_name == "find"

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_process_hundreds_of_entries_behind_on_a_lot_catches_up_in_a_few_reads(settings, run_id):
    """The other instance moved the lot 300 times since this process last saw it (two busy instances on the
    clinic's few lots). Its next reservation reads on from where the refused insert shows the lot moved,
    many entries a read and from the lot's head, instead of losing one race per entry; it used to give up
    after ``MAX_ATTEMPTS`` (``LedgerContention``, the chaos run's dead letters) or take a read per entry."""
    finds = _Finds()
    clients = [AsyncMongoClient(settings.mongodb_url.get_secret_value(), tz_aware=True, event_listeners=listeners) for listeners in ([], [finds])]
    try:
        busy, behind = (Repository(client[settings.database("inventory")]) for client in clients)
        busy_claims, behind_claims = Claims(busy.db), Claims(behind.db)
        await busy.ensure_indexes()
        meta = await stock_lot(busy, f"BIO-{run_id.upper()}", 1000, date(2026, 12, 31))

        def ref(name: str) -> SessionRef:
            return SessionRef(f"ses_LAG{run_id}_{name}", f"pt_LAG{name}X{run_id}", f"crs_LAG{name}X{run_id}", SESSION_AT)

        first = await reserve_session(Shelf(behind, behind_claims), ref("b0"), {"biotin": 1.0}, "r0", NOW.date(), NOW, None)
        await asyncio.gather(*(
            reserve_session(Shelf(busy, busy_claims), ref(f"a{n}"), {"biotin": 1.0}, f"r{n}", NOW.date(), NOW, None) for n in range(300)
        ))
        finds.finds = 0
        late = await reserve_session(Shelf(behind, behind_claims), ref("b1"), {"biotin": 1.0}, "r1", NOW.date(), NOW, None)
        reads = finds.finds
        entries = await busy.ledger.find({"lot": meta.lot_number}).sort("seq", 1).to_list()
    finally:
        for client in clients:
            await client.close()

    assert not first.short and not late.short
    assert [e["seq"] for e in entries] == list(range(len(entries))) and len(entries) == 303  # the delivery, 302 reservations
    assert entries[-1]["session_id"] == ref("b1").session_id and entries[-1]["reserved"] == 302
    assert reads <= 12, f"{reads} reads to catch up on 300 entries"
