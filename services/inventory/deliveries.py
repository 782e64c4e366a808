"""Taking a delivery into stock: the lot joins the stock book, then the receipt goes on the ledger.

The book is updated first, so a lot never holds stock that reservations cannot find; a re-run after a
crash between the two finds the lot in the book and makes the receipt (once: its cause is unique). The
same update drops the ingredient's lots that are out of play: nobody holds any of them and they can
never be reserved again (used up, withdrawn or expired), so the book stays as small as the shelf.
Deliveries are keyed by ingredient, so one ingredient's deliveries arrive one at a time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.inventory import balance
from services.inventory.balance import EPS
from services.inventory.book import Version
from services.inventory.domain import LotMeta
from services.inventory.ledger import state_of
from services.inventory.repository import Repository
from services.inventory.shelf import Shelf


async def receive_stock(repo: Repository, shelf: Shelf, lot: LotMeta, quantity: float, delivery_id: str, today: date, now: datetime) -> None:
    book = await shelf.book()
    others = [m for m in book.lots_of({lot.ingredient}) if m.lot_number != lot.lot_number]
    await shelf.load((m.lot_number for m in others), exact=True)
    spent = [m.lot_number for m in others if out_of_play(m, shelf.known(m.lot_number), today)]

    def edit(version: Version) -> Version:
        return version.with_lots(add=[lot], drop=spent)

    await shelf.change_book(edit)
    await shelf.append(lot, f"receive|{delivery_id}|{lot.lot_number}", lambda state, held: balance.receive(state, quantity), now, delivery_id=delivery_id)
    await shelf.flush()


def out_of_play(lot: LotMeta, entry: dict[str, Any] | None, today: date) -> bool:
    state = state_of(entry)
    return state.reserved <= EPS and (state.on_hand <= EPS or state.withdrawn or lot.expires_on < today)
