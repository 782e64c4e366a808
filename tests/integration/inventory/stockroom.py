"""Deliveries and sessions for inventory integration tests, and reads of what inventory holds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError

from clinic.polling import eventually
from services.inventory.domain import LotMeta, LotStock
from services.inventory.repository import Claims, Repository, stock_levels
from services.inventory.shelf import Shelf
from services.inventory.stock import receive_stock
from shared.contracts import examples
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.inventory import LotRecalled, StockReceived
from shared.contracts.scheduling import SessionCancelled, SessionCompleted, SessionRescheduled, SessionScheduled, TreatmentPaused
from shared.envelope import CloudEvent
from shared.runtime.effects import Delete, Effects, Insert, Merge, Put
from shared.runtime.store import INBOX, inbox_id
from shared.settings import Settings

NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)
SESSION_AT = datetime(2026, 3, 16, 9, tzinfo=UTC)
COCKTAIL = {"hyaluronic_acid": 20.0, "biotin": 5.0, "minoxidil": 2.0}


def dose(cocktail: dict[str, float]) -> list[dict[str, Any]]:
    return [{"ingredient": i, "amount": a, "unit": "mg"} for i, a in cocktail.items()]


class Stockroom:
    """Ids carry the run id so a failure is easy to find in the logs and topics."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.tag = run_id.upper()

    def lot(self, name: str) -> str:
        return f"{name}-{self.tag}"

    def patient(self, n: int | str) -> str:
        return f"pt_INV{n}X{self.run_id}"

    def session(self, n: int | str) -> str:
        return f"ses_INV{self.run_id}_{n}"

    def course(self, n: int | str) -> str:
        return f"crs_INV{n}X{self.run_id}"

    def received(self, ingredient: str, lot: str, quantity: float, expires_on: date, unit: str = "mg", **changes: Any) -> StockReceived:
        data = {
            "delivery_id": f"dlv_{lot.replace('-', '')}", "ingredient": ingredient, "lot_number": lot, "expires_on": expires_on,
            "quantity": quantity, "unit": unit, "received_at": NOW,
        }
        return StockReceived.model_validate({**data, **changes})

    def scheduled(self, n: int | str, cocktail: dict[str, float] = COCKTAIL, at: datetime = SESSION_AT) -> SessionScheduled:
        return SessionScheduled.model_validate(
            {
                **examples(SessionScheduled)[0],
                "patient_id": self.patient(n), "course_id": self.course(n), "session_id": self.session(n),
                "scheduled_for": at, "cocktail": dose(cocktail),
            }
        )

    def rescheduled(self, n: int | str, at: datetime, cocktail: dict[str, float] = COCKTAIL) -> SessionRescheduled:
        return SessionRescheduled.model_validate(
            {
                **examples(SessionRescheduled)[0],
                "patient_id": self.patient(n), "course_id": self.course(n), "session_id": self.session(n),
                "previous_start": SESSION_AT, "scheduled_for": at, "cocktail": dose(cocktail), "reason": "clinic_closure",
            }
        )

    def cancelled(self, n: int | str) -> SessionCancelled:
        return SessionCancelled.model_validate(
            {
                **examples(SessionCancelled)[0],
                "patient_id": self.patient(n), "course_id": self.course(n), "session_id": self.session(n),
                "scheduled_for": SESSION_AT, "cancelled_at": NOW,
            }
        )

    def paused(self, n: int | str, *sessions: str) -> TreatmentPaused:
        return TreatmentPaused(
            patient_id=self.patient(n), course_id=self.course(n), paused_at=NOW, reason="clinician_decision", released_sessions=sessions
        )

    def completed(self, n: int | str, used: list[tuple[str, str, float]]) -> SessionCompleted:
        return SessionCompleted(
            patient_id=self.patient(n), course_id=self.course(n), session_id=self.session(n),
            completed_at=SESSION_AT + timedelta(minutes=40), practitioner_id="clin_0107", depth_mm=2.0,
            lots_used=[{"ingredient": i, "lot_number": lot, "amount": a, "unit": "mg"} for i, lot, a in used],
        )

    def recalled(self, lot: str, ingredient: str) -> LotRecalled:
        return LotRecalled(lot_number=lot, ingredient=ingredient, reason_code="sterility_failure", recalled_by="supplier", recalled_at=NOW)

    def escalated(self, n: int | str, letter: str, lots: list[tuple[str, str]]) -> AdverseEventEscalated:
        return AdverseEventEscalated.model_validate(
            {
                **examples(AdverseEventEscalated)[0],
                "escalation_id": f"esc_INV{self.run_id}_{letter}", "patient_id": self.patient(n), "course_id": self.course(n),
                "session_id": self.session(n), "report_id": f"sfx_INV{self.run_id}_{letter}",
                "lots": [{"ingredient": i, "lot_number": lot} for i, lot in lots],
            }
        )


async def levels(settings: Settings) -> dict[str, LotStock]:
    """The operators' read of stock, straight from the service's database."""
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value(), tz_aware=True)
    try:
        return {lot.lot_number: lot for lot in await stock_levels(client[settings.database("inventory")], NOW.date())}
    finally:
        await client.close()


async def handled(service: Any, event: CloudEvent) -> dict[str, Any]:
    """Wait until the service has applied the event (a positive signal before checking for silence)."""
    return await eventually(lambda: service.db[INBOX].find_one({"_id": inbox_id(event), "status": "applied"}), what=f"{event.type} applied")


async def stocked(settings: Settings, count: int) -> dict[str, LotStock]:
    """Wait until ``count`` lots have their stock on the ledger."""

    async def probe() -> dict[str, LotStock] | None:
        found = {n: lot for n, lot in (await levels(settings)).items() if lot.on_hand > 0}
        return found if len(found) >= count else None

    return await eventually(probe, what=f"{count} lots in stock")


async def stock_lot(repo: Repository, number: str, quantity: float, expires_on: date, ingredient: str = "biotin") -> LotMeta:
    """A delivery taken in the way the StockReceived handler does, without the broker."""
    meta = LotMeta(number, ingredient, "mg", expires_on)
    delivery_id = f"dlv_{number.replace('-', '')}"
    claims = Claims(repo.db)
    await claims.lot(meta, delivery_id, NOW)
    await receive_stock(Shelf(repo, claims), meta, quantity, delivery_id, NOW.date(), NOW)
    return meta


async def apply(repo: Repository, effects: Effects) -> None:
    """A handler's state writes, applied as the runtime does after recording them."""
    for write in effects.writes:
        match write:
            case Put(collection, id, document):
                await repo.db[collection].replace_one({"_id": id}, {**document, "_id": id}, upsert=True)
            case Merge(collection, id, fields):
                await repo.db[collection].update_one({"_id": id}, {"$set": fields}, upsert=True)
            case Insert(collection, document):
                await repo.db[collection].insert_one(document)
            case Delete(collection, id):
                await repo.db[collection].delete_one({"_id": id})


class Crash(Exception):
    """The process died here."""


class CrashingLedger:
    """The ledger's collections, for a process that dies once ``inserts`` entries are in: right after the
    last of them (a batch may be cut short: the store had applied part of it), before any head is saved."""

    def __init__(self, collection: Any, budget: list[int]) -> None:
        self._collection = collection
        self._budget = budget

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    async def insert_one(self, document: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if self._budget[0] == 0:
            raise Crash(document.get("cause"))
        self._budget[0] -= 1
        result = await self._collection.insert_one(document, *args, **kwargs)
        if self._budget[0] == 0:
            raise Crash(document.get("cause"))
        return result

    async def insert_many(self, documents: list[dict[str, Any]], ordered: bool = True, **kwargs: Any) -> None:
        """One at a time; a refused document stops the rest when ``ordered``, as on the store."""
        refused = []
        for index, document in enumerate(documents):
            try:
                await self.insert_one(document)
            except DuplicateKeyError:
                refused.append({"index": index, "code": 11000})
                if ordered:
                    break
        if refused:
            raise BulkWriteError({"writeErrors": refused})

    async def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
        if self._budget[0] == 0:
            raise Crash("heads")
        return await self._collection.bulk_write(*args, **kwargs)


def dying(repo: Repository, inserts: int) -> Claims:
    """The same store's claims, made by a process that dies after ``inserts`` ledger entries."""
    doomed = Claims(repo.db)
    budget = [inserts]
    doomed.ledger = CrashingLedger(doomed.ledger, budget)  # type: ignore[assignment]
    doomed.lot_heads = CrashingLedger(doomed.lot_heads, budget)  # type: ignore[assignment]
    return doomed
