"""Outgoing events built from what the ledger now says."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from services.inventory.domain import Holding
from services.inventory.ledger import SessionRef
from services.inventory.reservations import Consumed
from services.inventory.withdrawal import Withdrawal
from shared.contracts.inventory import (
    AffectedSession,
    ConsumedLine,
    IngredientShortage,
    IngredientsReserved,
    LotQuarantined,
    ReservationReleased,
    StockConsumed,
)
from shared.contracts.plan import DoseLine, LotAllocation, LotLine


def allocations(held: Iterable[Holding]) -> tuple[LotAllocation, ...]:
    return tuple(
        LotAllocation(ingredient=h.ingredient, lot_number=h.lot_number, amount=h.amount, unit=h.unit, expires_on=h.expires_on)
        for h in sorted(held, key=lambda h: (h.ingredient, h.expires_on, h.lot_number))
    )


def reserved(ref: SessionRef, held: Iterable[Holding], now: datetime) -> IngredientsReserved:
    return IngredientsReserved(
        patient_id=ref.patient_id, course_id=ref.course_id, session_id=ref.session_id, scheduled_for=ref.scheduled_for,
        reserved_at=now, allocations=allocations(held),
    )


def shortage(ref: SessionRef, missing: dict[str, float], units: dict[str, str], cause: str, now: datetime) -> IngredientShortage:
    return IngredientShortage(
        patient_id=ref.patient_id, course_id=ref.course_id, session_id=ref.session_id, needed_by=ref.scheduled_for,
        detected_at=now, cause=cause,  # type: ignore[arg-type]
        missing=tuple(DoseLine(ingredient=i, amount=a, unit=units[i]) for i, a in sorted(missing.items())),
    )


def released(ref: SessionRef, lines: Iterable[Holding], cause: str, now: datetime) -> ReservationReleased:
    return ReservationReleased(
        patient_id=ref.patient_id, course_id=ref.course_id, session_id=ref.session_id, released_at=now,
        cause=cause, released=allocations(lines),  # type: ignore[arg-type]
    )


def consumed(ref: SessionRef, lines: list[Consumed], now: datetime) -> StockConsumed:
    used = [line for line in lines if line.amount > 0]
    returned = [line for line in lines if line.amount <= 0 and line.reserved > 0]
    return StockConsumed(
        patient_id=ref.patient_id, course_id=ref.course_id, session_id=ref.session_id, consumed_at=now,
        consumed=tuple(
            ConsumedLine(ingredient=c.ingredient, lot_number=c.lot_number, amount=c.amount, reserved_amount=c.reserved, unit=c.unit) for c in used
        ),
        returned=tuple(LotLine(ingredient=c.ingredient, lot_number=c.lot_number, amount=c.reserved, unit=c.unit) for c in returned),
    )


def quarantined(withdrawal: Withdrawal, recall_reason: str | None) -> LotQuarantined:
    entry = withdrawal.entry
    affected: dict[str, AffectedSession] = {}
    for used in withdrawal.administered:
        affected[used["session_id"]] = AffectedSession(
            patient_id=used["patient_id"], session_id=used["session_id"], scheduled_for=used["scheduled_for"], status="administered"
        )
    for move in withdrawal.moves:
        affected[move.ref.session_id] = AffectedSession(
            patient_id=move.ref.patient_id, session_id=move.ref.session_id, scheduled_for=move.ref.scheduled_for, status=move.status
        )
    return LotQuarantined(
        lot_number=withdrawal.lot.lot_number, ingredient=withdrawal.lot.ingredient, quarantined_at=entry["at"],
        cause="recall" if recall_reason else "adverse_events", recall_reason=recall_reason,  # type: ignore[arg-type]
        escalation_ids=tuple(entry.get("escalation_ids", ())), affected=tuple(affected.values()),
    )
