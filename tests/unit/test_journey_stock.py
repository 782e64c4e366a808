"""The sample journey puts its stock on the shelf before it books anything.

Inventory handles the different keys of one consumed batch at once, so a delivery and a booking that reach
it together may be handled in either order; a booking handled first is short. The journey (`clinic run`,
the end-to-end and least-privilege tests) therefore waits for inventory's answer to every lot it delivered.
"""

from __future__ import annotations

from typing import Any

import pytest

from clinic.journey import ACCEPTED, STOCK, Journey, model
from shared.envelope import CloudEvent, new_event


class Inventory:
    """Stands in for the event client: answers each delivered lot once ``reads_before_answer`` reads went by."""

    def __init__(self, reads_before_answer: int, refuse: str | None = None, answer: int = len(STOCK)) -> None:
        self.reads_before_answer, self.refuse, self.answer = reads_before_answer, refuse, answer
        self.delivered: list[Any] = []
        self.reads = 0
        self.delivered_before_first_read = 0

    async def publish(self, data: Any, **attributes: Any) -> CloudEvent:
        self.delivered.append(data)
        return new_event(data, source="/clinic/supplier")

    async def events(self, cls: type, where=lambda data: True) -> list[CloudEvent]:
        if cls is ACCEPTED:  # the journey asks for acceptances, then refusals: count one read per pair
            self.reads += 1
            self.delivered_before_first_read = self.delivered_before_first_read or len(self.delivered)
        if self.reads <= self.reads_before_answer:
            return []
        answers = [self._answer(delivery) for delivery in self.delivered[: self.answer]]
        return [event for event in answers if isinstance(event.data, cls) and where(event.data)]

    def _answer(self, delivery: Any) -> CloudEvent:
        if delivery.ingredient == self.refuse:
            refused = model("StockRefused", delivery_id=delivery.delivery_id, ingredient=delivery.ingredient, lot_number=delivery.lot_number,
                            quantity=delivery.quantity, unit=delivery.unit, reason="expired-on-receipt", detail="expired on arrival")
            return new_event(refused, source="/clinic/inventory")
        accepted = model("StockAccepted", delivery_id=delivery.delivery_id, ingredient=delivery.ingredient, lot_number=delivery.lot_number,
                         expires_on=delivery.expires_on, quantity=delivery.quantity, unit=delivery.unit, on_hand=delivery.quantity)
        return new_event(accepted, source="/clinic/inventory")


async def test_the_journey_goes_on_only_once_inventory_has_taken_in_every_lot():
    inventory = Inventory(reads_before_answer=3)
    journey = Journey(inventory, timeout=10)  # type: ignore[arg-type]
    await journey.deliver_stock()
    assert inventory.delivered_before_first_read == len(STOCK), "every lot is delivered before inventory is asked"
    assert inventory.reads == 4, "asked until inventory had answered"
    assert sorted(e.data.lot_number for e in journey.seen["StockAccepted"]) == sorted(d.lot_number for d in inventory.delivered)


async def test_a_lot_inventory_refused_stops_the_journey_saying_which_and_why():
    inventory = Inventory(reads_before_answer=0, refuse="minoxidil")
    with pytest.raises(AssertionError, match=r"inventory refused lots of the journey's delivery: D\w+-04 \(expired-on-receipt\)"):
        await Journey(inventory, timeout=10).deliver_stock()  # type: ignore[arg-type]


async def test_a_lot_inventory_never_answers_is_reported_at_the_deadline():
    inventory = Inventory(reads_before_answer=0, answer=len(STOCK) - 1)
    with pytest.raises(AssertionError, match=rf"inventory's answer to each of the {len(STOCK)} lots delivered not reached within 0.3s"):
        await Journey(inventory, timeout=0.3).deliver_stock()  # type: ignore[arg-type]
