"""StockLow once per crossing, and LotExpiringSoon once per lot.

A crossing is a claim made by a unique insert (``<ingredient>|low|<n>``, re-armed by
``<ingredient>|armed|<n>``): stock of one ingredient moves under many patients' events on several
instances at once, so a state document updated by each would not say "once". The claim keeps the
numbers it was made with and the key of what made it, so a re-run announces the same StockLow.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.inventory.config import InventoryConfig
from services.inventory.domain import expiring_soon, reorder_signal
from services.inventory.repository import Repository
from services.inventory.stock import LotStock, by_ingredient, stock_levels
from shared.contracts.inventory import LotExpiringSoon, StockLow


async def stock_watch(repo: Repository, config: InventoryConfig, ingredients: set[str], cause: str, today: date, now: datetime) -> list[tuple[int, StockLow]]:
    """The StockLow events ``cause`` is to announce, with their crossing numbers."""
    totals = by_ingredient(await stock_levels(repo.db, today, ingredients))
    found = []
    for code in sorted(ingredients):
        ingredient = config.ingredient(code)
        if ingredient is None or code not in totals:
            continue
        claims = {c["_id"]: c for c in await repo.alerts(code)}
        crossings = max((c["n"] for c in claims.values() if c["kind"] == "low"), default=0)
        armed = crossings == 0 or f"{code}|armed|{crossings}" in claims
        stock = totals[code]
        signal = reorder_signal(stock.available, ingredient.reorder_point, armed)
        if signal == "low":
            crossings += 1
            claims[f"{code}|low|{crossings}"] = await repo.claim_alert(
                {
                    "_id": f"{code}|low|{crossings}", "ingredient": code, "kind": "low", "n": crossings, "cause": cause, "at": now,
                    "unit": stock.unit, "on_hand": stock.on_hand, "reserved": stock.reserved, "available": stock.available,
                    "reorder_point": ingredient.reorder_point,
                }
            )
        elif signal == "rearm":
            await repo.claim_alert({"_id": f"{code}|armed|{crossings}", "ingredient": code, "kind": "armed", "n": crossings, "cause": cause, "at": now})
        low = claims.get(f"{code}|low|{crossings}")
        if low is not None and low["cause"] == cause:
            found.append((crossings, _stock_low(low)))
    return found


def _stock_low(claim: dict[str, Any]) -> StockLow:
    return StockLow(
        ingredient=claim["ingredient"], unit=claim["unit"], on_hand=max(0.0, claim["on_hand"]), reserved=max(0.0, claim["reserved"]),
        available=claim["available"], reorder_point=claim["reorder_point"], detected_at=claim["at"],
    )


def expiring(levels: list[LotStock], config: InventoryConfig, today: date, now: datetime) -> list[LotExpiringSoon]:
    found = []
    for lot in levels:
        ingredient = config.ingredient(lot.ingredient)
        if ingredient is None or not lot.usable or not expiring_soon(lot.expires_on, today, ingredient.expiry_warning_days, lot.on_hand):
            continue
        found.append(
            LotExpiringSoon(
                lot_number=lot.lot_number, ingredient=lot.ingredient, expires_on=lot.expires_on, days_left=(lot.expires_on - today).days,
                remaining=lot.on_hand, reserved=lot.reserved, unit=lot.unit, detected_at=now,
            )
        )
    return found
