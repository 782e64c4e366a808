"""Current stock per lot and per ingredient, read from the ledger (for operators, StockLow and expiry)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.inventory.book import Version
from services.inventory.domain import LotMeta
from services.inventory.ledger import Ledger, state_of
from services.inventory.repository import LOTS
from services.inventory.shelf import Shelf


@dataclass(frozen=True)
class LotStock:
    lot_number: str
    ingredient: str
    unit: str
    expires_on: date
    status: str
    """available, quarantined, recalled or expired."""
    on_hand: float
    reserved: float
    available: float

    @property
    def usable(self) -> bool:
        return self.status == "available"


@dataclass(frozen=True)
class IngredientStock:
    ingredient: str
    unit: str
    on_hand: float
    reserved: float

    @property
    def available(self) -> float:
        return max(0.0, round(self.on_hand - self.reserved, 6))


async def stock_levels(db: AsyncDatabase, today: date | None = None, ingredients: set[str] | None = None) -> list[LotStock]:
    """Every lot ever received (optionally of some ingredients) with its balance, FEFO order within an
    ingredient; ``today`` marks lots past their expiry as expired. For operators: this reads all of
    ``lots`` and follows each lot's head to its latest entry, so it is never called per event."""
    ledger = Ledger(db)
    where = {} if ingredients is None else {"ingredient": {"$in": sorted(ingredients)}}
    levels = []
    for lot in await db[LOTS].find(where).sort([("ingredient", ASCENDING), ("expires_on", ASCENDING), ("_id", ASCENDING)]).to_list():
        meta = LotMeta(lot["_id"], lot["ingredient"], lot["unit"], date.fromisoformat(lot["expires_on"]))
        levels.append(_level(meta, await ledger.latest(lot["_id"]), today, lot.get("status", "available")))
    return levels


async def shelf_levels(shelf: Shelf, book: Version, today: date, ingredients: set[str] | None = None) -> list[LotStock]:
    """The lots in play (the stock book's), as this event's shelf sees them: what an event needs for
    StockLow and the expiry scan, without reading every lot ever received."""
    metas = book.lots_of(book.ingredients() if ingredients is None else ingredients)
    await shelf.load(m.lot_number for m in metas)
    return [_level(m, shelf.known(m.lot_number), today) for m in metas]


def _level(meta: LotMeta, entry: dict[str, Any] | None, today: date | None, status: str = "available") -> LotStock:
    state = state_of(entry)
    if state.withdrawn and status == "available":
        status = "quarantined"  # the lot document catches up right after the withdrawal entry
    if status == "available" and today is not None and meta.expires_on < today:
        status = "expired"
    available = state.available if status == "available" else 0.0
    return LotStock(meta.lot_number, meta.ingredient, meta.unit, meta.expires_on, status, state.on_hand, state.reserved, available)


def by_ingredient(levels: list[LotStock]) -> dict[str, IngredientStock]:
    """Totals over usable lots only: quarantined, recalled and expired stock is not stock."""
    on_hand: dict[str, float] = defaultdict(float)
    reserved: dict[str, float] = defaultdict(float)
    units: dict[str, str] = {}
    for lot in levels:
        units[lot.ingredient] = lot.unit
        if lot.usable:
            on_hand[lot.ingredient] += lot.on_hand
            reserved[lot.ingredient] += lot.reserved
    return {i: IngredientStock(i, units[i], round(on_hand[i], 6), round(reserved[i], 6)) for i in units}
