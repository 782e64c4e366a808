"""The stock book: which lots each ingredient has in play, and where each ingredient's StockLow stands.

One small document read by every event that moves stock, so a reservation never looks through every lot
ever received. It is versioned: version n is ``v|<n>`` and a change inserts version n+1 computed from n,
so of two writers (deliveries of two ingredients, two instances) only one wins by ``_id`` uniqueness and
the other computes again from the winner. ``head`` is a copy of the latest version its writer saw, a
hint for a process that starts; each process keeps the latest version it read in memory, and since a
version never changes, reading the book is one ``_id`` probe for the version after it.

A lot enters when stock of it is received and leaves once nobody holds any of it and it can no longer be
reserved (used up, withdrawn or expired), so the book stays as small as the shelf. The alert state
mirrors the StockLow claims (alerts.py), which stay the authority on who announced a crossing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.inventory.domain import LotMeta

BOOK = "stock_book"
HEAD = "head"
MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class Alert:
    """StockLow of one ingredient: ``n`` crossings so far, re-armed or not, and the cause of crossing n."""

    n: int = 0
    armed: bool = True
    cause: str | None = None


@dataclass(frozen=True)
class Version:
    v: int = 0
    lots: dict[str, LotMeta] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)

    def lots_of(self, ingredients: Iterable[str]) -> list[LotMeta]:
        wanted = set(ingredients)
        return sorted((m for m in self.lots.values() if m.ingredient in wanted), key=lambda m: (m.ingredient, m.expires_on, m.lot_number))

    def ingredients(self) -> set[str]:
        return {m.ingredient for m in self.lots.values()}

    def alert(self, ingredient: str) -> Alert:
        return self.alerts.get(ingredient, Alert())

    def with_lots(self, add: Iterable[LotMeta] = (), drop: Iterable[str] = ()) -> Version:
        lots = {n: m for n, m in self.lots.items() if n not in set(drop)}
        lots.update((m.lot_number, m) for m in add)
        return replace(self, lots=lots)

    def with_alert(self, ingredient: str, alert: Alert) -> Version:
        return replace(self, alerts={**self.alerts, ingredient: alert})


Edit = Callable[[Version], Version]


class Book:
    def __init__(self, db: AsyncDatabase) -> None:
        self.docs = db[BOOK]
        self._latest: Version | None = None

    async def read(self) -> Version:
        latest = self._latest
        if latest is None:
            head = await self.docs.find_one({"_id": HEAD})
            latest = Version() if head is None else _decode(head)
        while (following := await self.docs.find_one({"_id": _version_id(latest.v + 1)})) is not None:
            latest = _decode(following)
        return self._remember(latest)

    async def change(self, edit: Edit, current: Version | None = None) -> Version:
        """Apply ``edit`` to the latest version; nothing is written when it changes nothing."""
        current = current or await self.read()
        for _ in range(MAX_ATTEMPTS):
            changed = edit(current)
            if (changed.lots, changed.alerts) == (current.lots, current.alerts):
                return current
            changed = replace(changed, v=current.v + 1)
            document = _encode(changed)
            try:
                await self.docs.insert_one(document)
            except DuplicateKeyError:
                current = await self.read()
                continue
            try:
                await self.docs.replace_one({"_id": HEAD}, {**document, "_id": HEAD}, upsert=True)
            except DuplicateKeyError:  # two instances creating the head at once: it is only a hint
                pass
            return self._remember(changed)
        raise RuntimeError(f"stock book: {MAX_ATTEMPTS} lost races")

    def _remember(self, version: Version) -> Version:
        if self._latest is None or version.v > self._latest.v:
            self._latest = version
        return self._latest


def _version_id(v: int) -> str:
    return f"v|{v:08d}"


def _encode(version: Version) -> dict[str, Any]:
    return {
        "_id": _version_id(version.v),
        "v": version.v,
        "lots": {n: {"ingredient": m.ingredient, "unit": m.unit, "expires_on": m.expires_on.isoformat()} for n, m in version.lots.items()},
        "alerts": {i: {"n": a.n, "armed": a.armed, "cause": a.cause} for i, a in version.alerts.items()},
    }


def _decode(document: dict[str, Any]) -> Version:
    return Version(
        document["v"],
        {n: LotMeta(n, m["ingredient"], m["unit"], date.fromisoformat(m["expires_on"])) for n, m in document["lots"].items()},
        {i: Alert(a["n"], a["armed"], a["cause"]) for i, a in document["alerts"].items()},
    )
