"""StockLow once per crossing, and LotExpiringSoon once per lot.

A crossing is a claim made by a unique insert (``<ingredient>|low|<n>``, re-armed by
``<ingredient>|armed|<n>``): stock of one ingredient moves under many patients' events on several
instances at once, so a state document updated by each would not say "once". The claim keeps the
numbers it was made with and the key of what made it, so a re-run announces the same StockLow. The stock
book (book.py) mirrors where each ingredient stands (crossings so far, re-armed, cause of the last one),
so no event looks through the claims; it is set after the claim, and an event that finds its claim
already taken brings the book up to the claim.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from services.inventory.book import Alert, Version
from services.inventory.config import InventoryConfig
from services.inventory.domain import expiring_soon, reorder_signal
from services.inventory.repository import Repository
from services.inventory.shelf import Shelf
from services.inventory.stock import LotStock, by_ingredient, shelf_levels
from shared.contracts.inventory import LotExpiringSoon, StockLow


async def stock_watch(
    repo: Repository, shelf: Shelf, config: InventoryConfig, ingredients: set[str], cause: str, today: date, now: datetime
) -> list[tuple[int, StockLow]]:
    """The StockLow events ``cause`` is to announce, with their crossing numbers."""
    book = await shelf.book()
    totals = by_ingredient(await shelf_levels(shelf, book, today, ingredients))
    found = []
    for code in sorted(ingredients):
        ingredient = config.ingredient(code)
        if ingredient is None or code not in totals:
            continue
        alert = book.alert(code)
        stock = totals[code]
        signal = reorder_signal(stock.available, ingredient.reorder_point, alert.armed)
        claim: dict[str, Any] | None = None
        if signal == "low":
            n = alert.n + 1
            claim = await repo.claim_alert(
                {
                    "_id": f"{code}|low|{n}", "ingredient": code, "kind": "low", "n": n, "cause": cause, "at": now,
                    "unit": stock.unit, "on_hand": stock.on_hand, "reserved": stock.reserved, "available": stock.available,
                    "reorder_point": ingredient.reorder_point,
                }
            )
            book = await shelf.change_book(_crossed(code, n, claim["cause"]))
        elif signal == "rearm":
            await repo.claim_alert({"_id": f"{code}|armed|{alert.n}", "ingredient": code, "kind": "armed", "n": alert.n, "cause": cause, "at": now})
            book = await shelf.change_book(_rearmed(code, alert.n))
        alert = book.alert(code)
        if alert.n and alert.cause == cause:
            if claim is None or claim["n"] != alert.n:
                claim = await repo.alert(f"{code}|low|{alert.n}")
            if claim is not None and claim["cause"] == cause:
                found.append((alert.n, _stock_low(claim)))
    return found


def _crossed(code: str, n: int, cause: str) -> Callable[[Version], Version]:
    def edit(book: Version) -> Version:
        return book if book.alert(code).n >= n else book.with_alert(code, Alert(n, False, cause))

    return edit


def _rearmed(code: str, n: int) -> Callable[[Version], Version]:
    def edit(book: Version) -> Version:
        alert = book.alert(code)
        return book if alert.n != n or alert.armed else book.with_alert(code, Alert(n, True, alert.cause))

    return edit


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
