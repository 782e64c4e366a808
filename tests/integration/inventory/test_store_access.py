"""What inventory asks of the store per event: only ``_id`` lookups, as many whatever the history.

On the embedded store only a filter that is exactly ``{_id: value}`` is served by an index; anything else
reads the whole collection. So every command the handlers send is checked here, and the commands of a
booking made after many others are the same as those of an early one.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from services.inventory.config import load_config
from services.inventory.handlers import Deps, handlers
from services.inventory.repository import HEAD_EVERY, Claims, Repository
from shared.clock import ManualClock
from shared.contracts.inventory import LotWithdrawalStep, StockForecastRequested
from shared.envelope import new_event
from shared.runtime.effects import Effects
from shared.runtime.store import database
from tests.integration.inventory.stockroom import NOW, Stockroom, apply
from tests.support.store_commands import by_id

COCKTAIL = {"hyaluronic_acid": 20.0, "biotin": 5.0, "minoxidil": 2.0}


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        name = event.command_name
        if name in ("find", "insert", "update", "delete"):
            filters = [command.get("filter")] if name == "find" else [s.get("q") for s in command.get("updates", command.get("deletes", []))]
            self.seen.append((name, command[name], filters))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class Inventory:
    """The handlers on a real store, without a broker: each event's effects applied as the runtime would."""

    def __init__(self, client: AsyncMongoClient, name: str, listener: Commands) -> None:
        self.db = database(client, name)
        self.repo = Repository(self.db)
        self.deps = Deps(repo=self.repo, claims=Claims(self.db), config=load_config(), clock=ManualClock(NOW))
        self.listener = listener

    async def handle(self, data: Any) -> tuple[Effects, list[tuple[str, str, Any]]]:
        event = new_event(data, source="/clinic/test", time=NOW)
        _, handler = handlers.by_type[event.type]
        self.listener.seen.clear()
        effects = await handler(event, self.deps)
        sent = list(self.listener.seen)
        await apply(self.repo, effects)
        return effects, sent


def by_id_only(sent: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    """The commands whose filter is anything but a lookup by ``_id`` (one id, or several with ``$in``)."""
    return [(name, collection, filters) for name, collection, filters in sent if name != "insert" and not all(by_id(f) for f in filters)]


def shape(sent: list[tuple[str, str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((name, collection) for name, collection, _ in sent)


async def test_every_command_of_a_session_event_is_an_id_lookup_and_a_late_booking_costs_what_an_early_one_did(settings, run_id):
    listener = Commands()
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value(), tz_aware=True, event_listeners=[listener])
    room = Stockroom(run_id)
    try:
        inventory = Inventory(client, settings.database("inventory"), listener)
        await inventory.repo.ensure_indexes()
        lots = {"hyaluronic_acid": room.lot("HA"), "biotin": room.lot("BIO"), "minoxidil": room.lot("MNX")}
        deliveries = [await inventory.handle(room.received(i, lot, 5000, date(2026, 12, 31))) for i, lot in lots.items()]
        early, late = [], []
        for n in range(40):
            effects, sent = await inventory.handle(room.scheduled(n, COCKTAIL))
            assert effects.outcome == "reserved"
            (early if n < 5 else late).append(sent)
        completed = await inventory.handle(room.completed(39, [(i, lots[i], a) for i, a in COCKTAIL.items()]))
        cancelled = await inventory.handle(room.cancelled(38))
        moved = await inventory.handle(room.rescheduled(37, NOW + timedelta(days=20)))
        forecast = await inventory.handle(StockForecastRequested(request_id=f"fcr_{run_id}", ingredient=None, weeks=8, requested_at=NOW))
    finally:
        await client.close()

    for effects, sent in [*deliveries, completed, cancelled, moved]:
        assert by_id_only(sent) == [], effects.outcome
    for sent in early + late:
        assert by_id_only(sent) == []
    # a lot's head and a week's demand head are rewritten every HEAD_EVERY entries or slots, not per booking
    hints = Counter({("update", "lot_heads"): 1, ("update", "demand_heads"): 1})
    for hint in hints:
        rewrites = [shape(s)[hint] for s in early[1:] + late]
        assert sum(rewrites) <= len(rewrites) // HEAD_EVERY + 1, (hint, rewrites)
    bookings = [shape(s) - hints for s in early[1:] + late]
    assert {frozenset(b.items()) for b in bookings} == {frozenset(bookings[0].items())}
    assert sum(bookings[0].values()) <= 6, bookings[0]
    assert ("find", "lot_heads") not in bookings[0], "the process knows each lot's latest entry: no lot is read"
    assert completed[0].outcome == "consumed" and cancelled[0].outcome == "released" and moved[0].outcome == "reserved"
    # the forecast of every ingredient: the stock book, its lots and one document per week, whatever was booked
    assert forecast[0].outcome == "forecast" and by_id_only(forecast[1]) == []
    assert {c for _, c, _ in forecast[1]} <= {"stock_book", "lot_heads", "ledger", "demand_heads", "demand"}
    assert shape(forecast[1])[("find", "demand")] <= 8 + 3, "one probe per week of the horizon, beyond what this process knows"


async def withdrawal(inventory: Inventory, data: Any) -> list[tuple[Effects, list[tuple[str, str, Any]]]]:
    """The event, then each LotWithdrawalStep it leads to, handled in turn."""
    done = [await inventory.handle(data)]
    queue = [e.data for e in done[0][0].events if isinstance(e.data, LotWithdrawalStep)]
    while queue:
        done.append(await inventory.handle(queue.pop(0)))
        queue += [e.data for e in done[-1][0].events if isinstance(e.data, LotWithdrawalStep)]
    return done


def published(done: list[tuple[Effects, list[tuple[str, str, Any]]]]) -> list[str]:
    return [type(e.data).__name__ for effects, _ in done for e in effects.events if not isinstance(e.data, LotWithdrawalStep)]


async def test_withdrawing_a_lot_is_done_in_id_lookups_and_only_a_moved_sessions_next_event_searches_the_ledger(settings, run_id):
    """A recall or a quarantine withdraws the lot, then finds its holders by walking the lot's entries by
    ``_id`` and moves them in steps (LotWithdrawalStep): nothing searches. A session moved that way has a
    record behind its ledger entries: its next event reads them back (rare). Flagging a lot and the expiry
    scan search nothing."""
    listener = Commands()
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value(), tz_aware=True, event_listeners=[listener])
    room = Stockroom(run_id)
    bad, spare, suspect = room.lot("BIO-BAD"), room.lot("BIO-SPARE"), room.lot("MNX-SUSPECT")
    try:
        inventory = Inventory(client, settings.database("inventory"), listener)
        await inventory.repo.ensure_indexes()
        await inventory.handle(room.received("biotin", bad, 20, date(2026, 6, 30)))
        await inventory.handle(room.received("biotin", spare, 5, date(2026, 12, 31)))
        await inventory.handle(room.received("minoxidil", suspect, 10, date(2026, 6, 30)))
        for n in (1, 2, 3):
            await inventory.handle(room.scheduled(n, {"biotin": 5.0, "minoxidil": 2.0}))
        await inventory.handle(room.completed(1, [("biotin", bad, 5.0), ("minoxidil", suspect, 2.0)]))
        recall = await withdrawal(inventory, room.recalled(bad, "biotin"))
        flagged = await inventory.handle(room.escalated(1, "A", []))
        quarantined = await withdrawal(inventory, room.escalated(1, "B", []))
        after = await inventory.handle(room.cancelled(2))  # moved, then left short by the withdrawals: its record is behind
        listener.seen.clear()
        await handlers.jobs["scan_lots"][1](inventory.deps, NOW)
        scan = list(listener.seen)
    finally:
        await client.close()

    # the escalations name no lot: the lots used in that session are flagged, and quarantined on the second
    outcomes = (recall[0][0].outcome, flagged[0].outcome, quarantined[0][0].outcome, after[0].outcome)
    assert outcomes == ("quarantined", "flagged", "quarantined", "nothing-reserved")
    assert recall[-1][0].outcome == quarantined[-1][0].outcome == "quarantined" and len(recall) > 2
    assert published(recall) == ["IngredientsReserved", "IngredientShortage", "ReservationReleased", "LotQuarantined"]
    assert by_id_only(flagged[1]) == by_id_only(scan) == []
    for _, sent in recall:
        assert by_id_only(sent) == [], "a withdrawal and its steps: _id lookups only"
    walked = [f[0]["_id"]["$in"] for _, sent in recall for name, collection, f in sent if (name, collection) == ("find", "ledger") and isinstance(f[0]["_id"], dict)]
    walked = [ids for ids in walked if ids[0].startswith(f"{bad}|")]  # the other lots are read on from their heads the same way
    assert len(walked) == 1 and len(walked[0]) >= 5, "the lot's entries (received, three held, one used) in one read"
    # the quarantine moves session 2, whose record is behind (the recall moved it): only it is read back
    searched = [f for _, sent in quarantined for f in by_id_only(sent)]
    assert searched == [("find", "ledger", [{"session_id": room.session(2)}])]
    assert {(name, collection) for name, collection, _ in by_id_only(after[1])} == {("find", "ledger")}
