"""Current stock per lot and per ingredient, read from the ledger (for operators and for StockLow)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.inventory.ledger import Ledger
from services.inventory.repository import LOTS


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
    """Every lot (optionally of some ingredients) with its live balance, FEFO order within an ingredient.
    ``today`` marks lots past their expiry as expired."""
    ledger = Ledger(db)
    where = {} if ingredients is None else {"ingredient": {"$in": sorted(ingredients)}}
    levels = []
    for lot in await db[LOTS].find(where).sort([("ingredient", ASCENDING), ("expires_on", ASCENDING), ("_id", ASCENDING)]).to_list():
        state = await ledger.state(lot["_id"])
        expires_on = date.fromisoformat(lot["expires_on"])
        status = lot.get("status", "available")
        if state.withdrawn and status == "available":
            status = "quarantined"  # the lot document catches up right after the withdrawal entry
        if status == "available" and today is not None and expires_on < today:
            status = "expired"
        available = state.available if status == "available" else 0.0
        levels.append(LotStock(lot["_id"], lot["ingredient"], lot["unit"], expires_on, status, state.on_hand, state.reserved, available))
    return levels


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
