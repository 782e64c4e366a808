"""Inventory rules (pure): FEFO allocation, re-checks after a move, consumption, reorder and expiry."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Literal

from services.inventory.balance import EPS, q
from services.inventory.config import Ingredient


def session_day(scheduled_for: datetime) -> date:
    return scheduled_for.astimezone(UTC).date()


@dataclass(frozen=True)
class LotMeta:
    lot_number: str
    ingredient: str
    unit: str
    expires_on: date


@dataclass(frozen=True)
class Lot:
    lot_number: str
    ingredient: str
    unit: str
    expires_on: date
    available: float = 0.0
    withdrawn: bool = False

    def usable_on(self, day: date) -> bool:
        """In date on the session day: a lot may be used up to and including its expiry date."""
        return not self.withdrawn and self.expires_on >= day


@dataclass(frozen=True)
class Holding:
    """What one session holds of one lot."""

    ingredient: str
    lot_number: str
    unit: str
    expires_on: date
    amount: float


def fefo(lots: Iterable[Lot], ingredient: str, day: date) -> list[Lot]:
    """Lots of the ingredient usable on ``day``, first expiry first (lot number breaks ties)."""
    usable = [lot for lot in lots if lot.ingredient == ingredient and lot.usable_on(day)]
    return sorted(usable, key=lambda lot: (lot.expires_on, lot.lot_number))


@dataclass(frozen=True)
class Plan:
    taken: tuple[Holding, ...]
    missing: dict[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing


def allocate(needs: dict[str, float], lots: Sequence[Lot], day: date) -> Plan:
    """Take every need first-expiry-first-out from lots usable on ``day``, splitting across lots."""
    taken: list[Holding] = []
    missing: dict[str, float] = {}
    for ingredient, needed in needs.items():
        remaining = q(needed)
        for lot in fefo(lots, ingredient, day):
            if remaining <= EPS:
                break
            amount = q(min(remaining, lot.available))
            if amount > EPS:
                taken.append(Holding(ingredient, lot.lot_number, lot.unit, lot.expires_on, amount))
                remaining = q(remaining - amount)
        if remaining > EPS:
            missing[ingredient] = remaining
    return Plan(tuple(taken), missing)


ShortageCause = Literal["insufficient_stock", "expires_before_session"]


def shortage_cause(needs: dict[str, float], lots: Sequence[Lot], day: date, today: date) -> ShortageCause:
    """``expires_before_session`` when lots in date today would cover it but expire before the session."""
    if day > today and allocate(needs, lots, today).complete:
        return "expires_before_session"
    return "insufficient_stock"


@dataclass(frozen=True)
class Recheck:
    keep: tuple[Holding, ...]
    release: tuple[Holding, ...]
    needs: dict[str, float]


def recheck(needs: dict[str, float], holdings: Sequence[Holding], withdrawn: set[str], day: date) -> Recheck:
    """A session's holdings against its (new) day and cocktail: keep what is still usable and needed,
    release the rest, and say what is still to be reserved."""
    keep: list[Holding] = []
    release: list[Holding] = []
    still: dict[str, float] = {}
    by_ingredient: dict[str, list[Holding]] = defaultdict(list)
    for holding in holdings:
        by_ingredient[holding.ingredient].append(holding)
    for ingredient in {*needs, *by_ingredient}:
        remaining = q(needs.get(ingredient, 0.0))
        for holding in sorted(by_ingredient[ingredient], key=lambda h: (h.expires_on, h.lot_number)):
            usable = holding.lot_number not in withdrawn and holding.expires_on >= day
            kept = q(min(holding.amount, remaining)) if usable else 0.0
            if kept > EPS:
                keep.append(replace(holding, amount=kept))
                remaining = q(remaining - kept)
            if holding.amount - kept > EPS:
                release.append(replace(holding, amount=q(holding.amount - kept)))
        if remaining > EPS:
            still[ingredient] = remaining
    return Recheck(tuple(keep), tuple(release), still)


def needs_of(cocktail: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Per-ingredient totals (a cocktail may name an ingredient twice)."""
    totals: dict[str, float] = defaultdict(float)
    for ingredient, amount in cocktail:
        totals[ingredient] = q(totals[ingredient] + amount)
    return dict(totals)


def reorder_signal(available: float, reorder_point: float, armed: bool) -> Literal["low", "rearm"] | None:
    """StockLow once per downward crossing; re-armed only when stock rises above the point again."""
    if armed and available <= reorder_point + EPS:
        return "low"
    if not armed and available > reorder_point + EPS:
        return "rearm"
    return None


def expiring_soon(expires_on: date, today: date, warning_days: int, remaining: float) -> bool:
    days_left = (expires_on - today).days
    return remaining > EPS and 0 <= days_left <= warning_days


class Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check_receipt(lot: LotMeta, quantity: float, ingredient: Ingredient | None, existing: Lot | None, today: date) -> None:
    """A delivery that cannot be taken in raises Refused; nothing of it is applied."""
    if ingredient is None:
        raise Refused("unknown-ingredient", lot.ingredient)
    if lot.unit != ingredient.unit:
        raise Refused("unit-mismatch", f"{lot.ingredient} is counted in {ingredient.unit.value}, not {lot.unit}")
    if quantity <= EPS:
        raise Refused("quantity-not-positive", lot.lot_number)
    if lot.expires_on < today:
        raise Refused("expired-on-receipt", f"{lot.lot_number} expired {lot.expires_on.isoformat()}")
    if existing is not None and existing.withdrawn:
        raise Refused("lot-withdrawn", lot.lot_number)
    if existing is not None and (existing.ingredient, existing.unit, existing.expires_on) != (lot.ingredient, lot.unit, lot.expires_on):
        raise Refused("lot-conflict", f"{lot.lot_number} is already stocked with another ingredient, unit or expiry")
