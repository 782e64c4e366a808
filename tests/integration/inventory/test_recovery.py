"""Crashes and stale heads on the real store: what a session holds is never lost, never moved twice."""

from __future__ import annotations

from datetime import date

import pytest
from pymongo import AsyncMongoClient

from services.inventory.domain import SessionRef, entry_id
from services.inventory.repository import HEADS, Claims, Repository
from services.inventory.shelf import Shelf
from services.inventory.stock import consume_session, release_session, reserve_session
from tests.integration.inventory.stockroom import NOW, SESSION_AT, Crash, apply, dying, stock_lot


@pytest.fixture
async def repo(settings):
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value(), tz_aware=True)
    repo = Repository(client[settings.database("inventory")])
    await repo.ensure_indexes()
    yield repo
    await client.close()


def session(run_id: str, n: int) -> SessionRef:
    return SessionRef(f"ses_REC{run_id}_{n}", f"pt_REC{n}X{run_id}", f"crs_REC{n}X{run_id}", SESSION_AT)


def process(repo: Repository, claims: Claims | None) -> Shelf:
    """A shelf of this process, or with ``claims`` (``dying``) of another process, which knows nothing yet."""
    return Shelf(repo, Claims(repo.db)) if claims is None else Shelf(Repository(repo.db), claims)


async def reserve(repo: Repository, ref: SessionRef, needs: dict[str, float], round_id: str, save: bool = True, claims: Claims | None = None):
    shelf = process(repo, claims)
    outcome = await reserve_session(shelf, ref, needs, round_id, NOW.date(), NOW, await repo.session(ref.session_id))
    if save:
        await apply(repo, repo.save_session(ref, "short" if outcome.short else "reserved", NOW, round_id, shelf.holds(ref.session_id), needs))
    return outcome


async def release(repo: Repository, ref: SessionRef, round_id: str):
    shelf = Shelf(repo, Claims(repo.db))
    outcome = await release_session(shelf, ref, round_id, NOW, await repo.session(ref.session_id))
    await apply(repo, repo.save_session(ref, "released", NOW, round_id, shelf.holds(ref.session_id)))
    return outcome


async def consume(repo: Repository, ref: SessionRef, used: dict[str, float], metas, round_id: str, claims: Claims | None = None):
    return await consume_session(process(repo, claims), ref, used, metas, round_id, NOW, await repo.session(ref.session_id))


async def head_back_to(repo: Repository, lot_number: str, seq: int) -> None:
    """What two instances racing may leave: the head overwritten by an older copy."""
    entry = await repo.entry(lot_number, seq)
    await repo.db[HEADS].replace_one({"_id": lot_number}, {**entry, "_id": lot_number})


async def test_a_head_left_behind_neither_hides_a_holding_nor_lets_a_lot_be_oversold(repo, run_id):
    lot = await stock_lot(repo, f"BIO-H{run_id.upper()}", 10, date(2026, 12, 31))
    first, second, third = (session(run_id, n) for n in (1, 2, 3))
    await reserve(repo, first, {"biotin": 2.0}, "a")
    await reserve(repo, second, {"biotin": 3.0}, "b")

    await head_back_to(repo, lot.lot_number, 1)  # as if only the receipt and the first booking were in
    released = await release(repo, second, "c")
    await head_back_to(repo, lot.lot_number, 1)
    taken = await reserve(repo, third, {"biotin": 9.0}, "d")
    exact = await reserve(repo, session(run_id, 4), {"biotin": 8.0}, "e")
    state = await repo.state(lot.lot_number)
    holders = await repo.holders(lot.lot_number, (await repo.latest(lot.lot_number))["seq"] + 1)

    assert [(h.lot_number, h.amount) for h in released.released] == [(lot.lot_number, 3.0)]
    assert taken.missing == {"biotin": 1.0}  # 10 on hand, 2 held by the first session
    assert [(h.lot_number, h.amount) for h in exact.held] == [(lot.lot_number, 8.0)]
    assert (state.on_hand, state.reserved, state.available) == (10, 10, 0)
    assert holders == {first.session_id: 2.0, f"ses_REC{run_id}_4": 8.0}


async def test_a_cancellation_handled_before_a_crashed_booking_runs_again_releases_what_it_took(repo, run_id):
    lot = await stock_lot(repo, f"BIO-C{run_id.upper()}", 10, date(2026, 12, 31))
    ref = session(run_id, 1)
    with pytest.raises(Crash):  # the booking dies once its entry is in, before the head or its effects are saved
        await reserve(repo, ref, {"biotin": 4.0}, "booking", save=False, claims=dying(repo, inserts=1))

    released = await release(repo, ref, "cancellation")
    state = await repo.state(lot.lot_number)

    assert [(h.lot_number, h.amount) for h in released.released] == [(lot.lot_number, 4.0)]
    assert (state.on_hand, state.reserved) == (10, 0)


async def test_a_completion_run_again_after_a_crash_consumes_each_lot_once(repo, run_id):
    first = await stock_lot(repo, f"BIO-X{run_id.upper()}", 3, date(2026, 6, 30))
    second = await stock_lot(repo, f"BIO-Y{run_id.upper()}", 10, date(2026, 12, 31))
    ref = session(run_id, 1)
    await reserve(repo, ref, {"biotin": 5.0}, "booking")
    used = {first.lot_number: 3.0, second.lot_number: 2.0}
    metas = {first.lot_number: first, second.lot_number: second}

    with pytest.raises(Crash):  # dies once the first lot's consumption is in
        await consume(repo, ref, used, metas, "completion", claims=dying(repo, inserts=1))
    resumed = await consume(repo, ref, used, metas, "completion")
    again = await consume(repo, ref, used, metas, "completion")
    states = [await repo.state(lot.lot_number) for lot in (first, second)]
    consumptions = await repo.session_entries(ref.session_id, kind="consume")

    expected = [(first.lot_number, 3.0, 3.0), (second.lot_number, 2.0, 2.0)]
    assert sorted((c.lot_number, c.amount, c.reserved) for c in resumed) == expected
    assert sorted((c.lot_number, c.amount, c.reserved) for c in again) == expected
    assert [(s.on_hand, s.reserved) for s in states] == [(0, 0), (8, 0)]
    assert sorted(e["_id"] for e in consumptions) == [entry_id(first.lot_number, 2), entry_id(second.lot_number, 2)]
