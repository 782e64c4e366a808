"""Inventory events: deliveries and recalls in; reservations, consumption and stock warnings out."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, JsonValue

from shared.contracts.base import (
    INGREDIENTS,
    LINES,
    SESSIONS,
    CourseId,
    Day,
    EscalationId,
    EventData,
    IngredientCode,
    LotNumber,
    PatientId,
    SessionId,
    Timestamp,
)
from shared.contracts.plan import DoseLine, LotAllocation, LotLine, Unit, ValueObject

DeliveryId = Annotated[
    str, Field(pattern=r"^dlv_[A-Za-z0-9]{6,40}$", description="Supplier delivery (FHIR SupplyDelivery) id.", examples=["dlv_20260310A1"])
]
RecallReason = Literal["contamination", "sterility_failure", "potency_out_of_spec", "labelling_error", "packaging_defect", "regulatory", "other"]


class ConsumedLine(ValueObject):
    ingredient: IngredientCode = Field(description="Formulary code of the ingredient.")
    lot_number: LotNumber = Field(description="Lot the amount came from.")
    amount: float = Field(gt=0, description="Amount actually used, in `unit`.")
    reserved_amount: float = Field(ge=0, description="Amount that was reserved from this lot (0 when the lot was not reserved).")
    unit: Unit = Field(description="Unit of both amounts.")


class AffectedSession(ValueObject):
    patient_id: PatientId
    session_id: SessionId
    scheduled_for: Timestamp = Field(description="Start of the session.")
    status: Literal["reservation_moved", "shortage", "administered"] = Field(
        description="`reservation_moved` to another lot, `shortage` (no other lot could cover it), or the lot was "
        "already `administered` in this completed session."
    )


_SESSION = {"patient_id": "pt_7Q2M9K4X", "course_id": "crs_5D0B7E11", "session_id": "ses_5D0B7E11_01"}
_ALLOCATIONS: list[JsonValue] = [
    {"ingredient": "hyaluronic_acid", "lot_number": "HA-2026-0117", "amount": 20.0, "unit": "mg", "expires_on": "2027-01-31"},
    {"ingredient": "biotin", "lot_number": "BIO-2026-0311", "amount": 5.0, "unit": "mg", "expires_on": "2026-11-30"},
    {"ingredient": "minoxidil", "lot_number": "MNX-2026-0208", "amount": 2.0, "unit": "mg", "expires_on": "2026-09-30"},
]


class StockReceived(EventData):
    """A lot of an ingredient was delivered and checked in.

    Published by the supplier's delivery system (FHIR SupplyDelivery). Inventory answers every delivery
    it can read with one event under the same `delivery_id`: StockAccepted when the lot is stocked, or
    StockRefused with a reason (unknown ingredient or unit, an expiry in the past, a withdrawn lot, a lot
    number already stocked differently); nothing of a refused delivery is applied. Only a message that
    cannot be read as a StockReceived at all (schema) goes to the dead-letter topic instead.
    """

    event_type: ClassVar[str] = "clinic.stock.received.v1"
    producer: ClassVar[str] = "external"
    key_field: ClassVar[str] = "ingredient"
    subject_field: ClassVar[str | None] = "lot_number"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "delivery_id": "dlv_20260310A1",
                    "ingredient": "minoxidil",
                    "lot_number": "MNX-2026-0208",
                    "expires_on": "2026-09-30",
                    "quantity": 500.0,
                    "unit": "mg",
                    "received_at": "2026-03-10T08:30:00Z",
                }
            ]
        }
    )

    delivery_id: DeliveryId
    ingredient: IngredientCode = Field(description="Formulary code of the ingredient delivered.")
    lot_number: LotNumber = Field(description="Supplier's lot number.")
    expires_on: Day = Field(description="Expiry date of the lot.")
    quantity: float = Field(gt=0, description="Quantity delivered, in `unit`.")
    unit: Unit = Field(description="Unit of `quantity`.")
    received_at: Timestamp = Field(description="When the delivery was checked in.")


ReceiptRefusal = Literal["unknown-ingredient", "unit-mismatch", "quantity-not-positive", "expired-on-receipt", "lot-withdrawn", "lot-conflict"]


class StockAccepted(EventData):
    """A delivery (StockReceived) was taken into stock.

    Published by inventory once per delivery it stocks: the lot and amount added and the lot's stock on
    hand afterwards. A delivery refused gets StockRefused instead.
    """

    event_type: ClassVar[str] = "clinic.stock.accepted.v1"
    producer: ClassVar[str] = "inventory"
    key_field: ClassVar[str] = "ingredient"
    subject_field: ClassVar[str | None] = "lot_number"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "delivery_id": "dlv_20260310A1",
                    "ingredient": "minoxidil",
                    "lot_number": "MNX-2026-0208",
                    "expires_on": "2026-09-30",
                    "quantity": 500.0,
                    "unit": "mg",
                    "on_hand": 500.0,
                    "accepted_at": "2026-03-10T08:30:02Z",
                }
            ]
        }
    )

    delivery_id: DeliveryId = Field(description="The StockReceived answered.")
    ingredient: IngredientCode = Field(description="Formulary code of the ingredient stocked.")
    lot_number: LotNumber = Field(description="The lot the delivery went into.")
    expires_on: Day = Field(description="Expiry date of the lot.")
    quantity: float = Field(gt=0, description="Amount added to the lot, in `unit`.")
    unit: Unit = Field(description="Unit of the amounts.")
    on_hand: float = Field(ge=0, description="The lot's stock on hand after the delivery.")
    accepted_at: Timestamp = Field(description="When inventory took the delivery in.")


class StockRefused(EventData):
    """A delivery (StockReceived) was refused: nothing of it is in stock.

    Published by inventory instead of StockAccepted, with the reason (the same codes as the dead-letter
    reasons table) and a detail for people. The delivery is not dead-lettered: this event is the answer.
    """

    event_type: ClassVar[str] = "clinic.stock.refused.v1"
    producer: ClassVar[str] = "inventory"
    key_field: ClassVar[str] = "ingredient"
    subject_field: ClassVar[str | None] = "lot_number"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "delivery_id": "dlv_20260310A1",
                    "ingredient": "minoxidil",
                    "lot_number": "MNX-2026-0208",
                    "quantity": 500.0,
                    "unit": "ml",
                    "reason": "unit-mismatch",
                    "detail": "minoxidil is counted in mg, not ml",
                    "refused_at": "2026-03-10T08:30:02Z",
                }
            ]
        }
    )

    delivery_id: DeliveryId = Field(description="The StockReceived answered.")
    ingredient: IngredientCode = Field(description="Ingredient the delivery named.")
    lot_number: LotNumber = Field(description="Lot number the delivery named.")
    quantity: float = Field(description="Quantity the delivery named, in `unit`.")
    unit: Unit = Field(description="Unit the delivery named.")
    reason: ReceiptRefusal = Field(
        description="`unknown-ingredient` (not stocked), `unit-mismatch` (stocked in another unit), `quantity-not-positive`, "
        "`expired-on-receipt`, `lot-withdrawn` (the lot was recalled or quarantined), `lot-conflict` (the lot number is "
        "already stocked with another ingredient, unit or expiry)."
    )
    detail: str = Field(max_length=200, description="What was wrong, for people.")
    refused_at: Timestamp = Field(description="When inventory refused the delivery.")


class LotRecalled(EventData):
    """A lot was recalled by the supplier, a regulator or the clinic.

    Inventory withdraws the lot, moves its reservations to other lots or turns them into shortages, and
    answers with LotQuarantined listing every affected session and patient.
    """

    event_type: ClassVar[str] = "clinic.lot.recalled.v1"
    producer: ClassVar[str] = "external"
    key_field: ClassVar[str] = "lot_number"
    subject_field: ClassVar[str | None] = "lot_number"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lot_number": "BIO-2026-0311",
                    "ingredient": "biotin",
                    "reason_code": "sterility_failure",
                    "recalled_by": "supplier",
                    "recalled_at": "2026-04-20T07:00:00Z",
                }
            ]
        }
    )

    lot_number: LotNumber = Field(description="The recalled lot.")
    ingredient: IngredientCode = Field(description="Ingredient of the lot.")
    reason_code: RecallReason = Field(description="Coded reason for the recall.")
    recalled_by: Literal["supplier", "regulator", "clinic"] = Field(description="Who issued the recall.")
    recalled_at: Timestamp = Field(description="When the recall was issued.")


class IngredientsReserved(EventData):
    """Every ingredient of a session's cocktail is reserved, first-expiry-first-out.

    Published by inventory after SessionScheduled or SessionRescheduled, from lots in date on the session
    day (split across lots when needed). Scheduling can treat the session as ready.
    """

    event_type: ClassVar[str] = "clinic.ingredients.reserved.v1"
    producer: ClassVar[str] = "inventory"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {**_SESSION, "scheduled_for": "2026-03-16T09:00:00Z", "reserved_at": "2026-03-05T14:00:12Z", "allocations": _ALLOCATIONS}
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    scheduled_for: Timestamp = Field(description="Start of the session the stock is reserved for.")
    reserved_at: Timestamp = Field(description="When the reservation was made.")
    allocations: tuple[LotAllocation, ...] = Field(min_length=1, max_length=LINES, description="Which lots, and how much of each.")


class IngredientShortage(EventData):
    """A session's cocktail cannot be reserved in full; nothing is reserved for it.

    Published by inventory instead of IngredientsReserved, or when a recall or quarantine takes a
    reserved lot away. Scheduling marks the session at risk and moves it if the stock cannot arrive
    in time.
    """

    event_type: ClassVar[str] = "clinic.ingredients.shortage_detected.v1"
    producer: ClassVar[str] = "inventory"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_SESSION,
                    "session_id": "ses_5D0B7E11_05",
                    "needed_by": "2026-05-11T09:00:00Z",
                    "detected_at": "2026-04-20T07:00:03Z",
                    "cause": "lot_recalled",
                    "missing": [{"ingredient": "biotin", "amount": 5.0, "unit": "mg"}],
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    needed_by: Timestamp = Field(description="Start of the session that needs the stock.")
    detected_at: Timestamp = Field(description="When the shortage was found.")
    cause: Literal["insufficient_stock", "expires_before_session", "lot_recalled", "lot_quarantined"] = Field(
        description="Why the stock is not there."
    )
    missing: tuple[DoseLine, ...] = Field(min_length=1, max_length=INGREDIENTS, description="What could not be reserved, per ingredient.")


class StockConsumed(EventData):
    """A completed session's reservation was turned into consumption with the lots actually used.

    Published by inventory after SessionCompleted; differences from the reservation are kept per lot.
    """

    event_type: ClassVar[str] = "clinic.stock.consumed.v1"
    producer: ClassVar[str] = "inventory"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_SESSION,
                    "consumed_at": "2026-03-16T09:40:00Z",
                    "consumed": [
                        {"ingredient": "hyaluronic_acid", "lot_number": "HA-2026-0117", "amount": 20.0, "reserved_amount": 20.0, "unit": "mg"},
                        {"ingredient": "biotin", "lot_number": "BIO-2026-0311", "amount": 5.0, "reserved_amount": 5.0, "unit": "mg"},
                        {"ingredient": "minoxidil", "lot_number": "MNX-2026-0208", "amount": 2.0, "reserved_amount": 2.0, "unit": "mg"},
                    ],
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    consumed_at: Timestamp = Field(description="When the session was completed.")
    consumed: tuple[ConsumedLine, ...] = Field(min_length=1, max_length=LINES, description="Per lot: used and reserved amounts.")
    returned: tuple[LotLine, ...] = Field(
        default=(), max_length=LINES, description="Lots reserved for the session but not used at all: back in stock (partly used lots are in `consumed`)."
    )


class StockLow(EventData):
    """Available stock of an ingredient (on hand minus reserved) fell to or below its reorder point.

    Published by inventory once per crossing, not per message. Purchasing reorders.
    """

    event_type: ClassVar[str] = "clinic.stock.reorder_point_reached.v1"
    producer: ClassVar[str] = "inventory"
    key_field: ClassVar[str] = "ingredient"
    subject_field: ClassVar[str | None] = "ingredient"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ingredient": "minoxidil",
                    "unit": "mg",
                    "on_hand": 40.0,
                    "reserved": 24.0,
                    "available": 16.0,
                    "reorder_point": 20.0,
                    "detected_at": "2026-04-27T09:41:00Z",
                }
            ]
        }
    )

    ingredient: IngredientCode = Field(description="Ingredient running low.")
    unit: Unit = Field(description="Unit of every quantity here.")
    on_hand: float = Field(ge=0, description="Quantity in available lots.")
    reserved: float = Field(ge=0, description="Quantity reserved for booked sessions.")
    available: float = Field(ge=0, description="On hand minus reserved.")
    reorder_point: float = Field(gt=0, description="Configured reorder point.")
    detected_at: Timestamp = Field(description="When the crossing was detected.")


class LotExpiringSoon(EventData):
    """A lot with stock left is nearing its expiry date.

    Published by inventory once per lot when it enters the configured warning window. Use the lot first
    or plan its disposal.
    """

    event_type: ClassVar[str] = "clinic.lot.expiry_flagged.v1"
    producer: ClassVar[str] = "inventory"
    key_field: ClassVar[str] = "lot_number"
    subject_field: ClassVar[str | None] = "lot_number"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lot_number": "MNX-2026-0208",
                    "ingredient": "minoxidil",
                    "expires_on": "2026-09-30",
                    "days_left": 30,
                    "remaining": 120.0,
                    "reserved": 4.0,
                    "unit": "mg",
                    "detected_at": "2026-08-31T00:00:05Z",
                }
            ]
        }
    )

    lot_number: LotNumber = Field(description="The lot nearing expiry.")
    ingredient: IngredientCode = Field(description="Ingredient of the lot.")
    expires_on: Day = Field(description="Expiry date of the lot.")
    days_left: int = Field(ge=0, description="Days from detection to expiry.")
    remaining: float = Field(ge=0, description="Quantity left in the lot.")
    reserved: float = Field(ge=0, description="Part of `remaining` reserved for booked sessions.")
    unit: Unit = Field(description="Unit of the quantities.")
    detected_at: Timestamp = Field(description="When the lot entered the warning window.")


class LotQuarantined(EventData):
    """A lot was withdrawn from use: implicated in adverse events, or recalled.

    Published by inventory when escalations on one lot reach the configured threshold, or after
    LotRecalled. Lists every affected session and patient: reservations moved to other lots, sessions
    left short (an IngredientShortage follows for each), and completed sessions that used the lot.
    """

    event_type: ClassVar[str] = "clinic.lot.quarantined.v1"
    producer: ClassVar[str] = "inventory"
    key_field: ClassVar[str] = "lot_number"
    subject_field: ClassVar[str | None] = "lot_number"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lot_number": "MNX-2026-0208",
                    "ingredient": "minoxidil",
                    "quarantined_at": "2026-04-02T15:31:02Z",
                    "cause": "adverse_events",
                    "recall_reason": None,
                    "escalation_ids": ["esc_3B7D1F05_01", "esc_8E2C4A90_02"],
                    "affected": [
                        {
                            "patient_id": "pt_6J1W8B3Z",
                            "session_id": "ses_8E2C4A90_02",
                            "scheduled_for": "2026-04-02T09:00:00Z",
                            "status": "administered",
                        },
                        {
                            "patient_id": "pt_7Q2M9K4X",
                            "session_id": "ses_5D0B7E11_03",
                            "scheduled_for": "2026-04-13T09:00:00Z",
                            "status": "reservation_moved",
                        },
                    ],
                }
            ]
        }
    )

    lot_number: LotNumber = Field(description="The withdrawn lot.")
    ingredient: IngredientCode = Field(description="Ingredient of the lot.")
    quarantined_at: Timestamp = Field(description="When the lot was withdrawn.")
    cause: Literal["adverse_events", "recall"] = Field(description="Why the lot was withdrawn.")
    recall_reason: RecallReason | None = Field(default=None, description="The recall's reason code (cause `recall`).")
    escalation_ids: tuple[EscalationId, ...] = Field(default=(), max_length=LINES, description="Escalations that implicated the lot (cause `adverse_events`).")
    affected: tuple[AffectedSession, ...] = Field(default=(), max_length=SESSIONS, description="Every session and patient the lot touches.")


class LotWithdrawalStep(EventData):
    """One bounded step of withdrawing a lot (inventory's own work queue, not for other consumers).

    Published and consumed by inventory only. A recall or a quarantine withdraws the lot at once (no new
    reservation can take it); finding the sessions that hold it, moving each of them to other lots and
    listing the sessions that used it are done in steps of bounded size, each its own event on the lot's
    partition, so other events interleave and no handler call grows with the lot's history. The last
    step publishes LotQuarantined.
    """

    event_type: ClassVar[str] = "clinic.lot.withdrawal_step.v1"
    producer: ClassVar[str] = "inventory"
    key_field: ClassVar[str] = "lot_number"
    subject_field: ClassVar[str | None] = "lot_number"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"lot_number": "BIO-2026-0311", "ingredient": "biotin", "cause": "recall", "step": 1, "requested_at": "2026-04-20T07:00:03Z"}
            ]
        }
    )

    lot_number: LotNumber = Field(description="The lot being withdrawn.")
    ingredient: IngredientCode = Field(description="Ingredient of the lot.")
    cause: Literal["adverse_events", "recall"] = Field(description="Which withdrawal of the lot this step belongs to.")
    step: int = Field(ge=1, le=1_000_000, description="The step's number, from 1.")
    requested_at: Timestamp = Field(description="When the previous step (or the withdrawal) asked for this one.")


class ReservationReleased(EventData):
    """A session's reserved stock went back to available.

    Published by inventory after SessionCancelled, SessionNoShow, TreatmentPaused, a reschedule the
    reservation no longer fits, or a withdrawn lot.
    """

    event_type: ClassVar[str] = "clinic.reservation.released.v1"
    producer: ClassVar[str] = "inventory"
    subject_field: ClassVar[str | None] = "session_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_SESSION,
                    "session_id": "ses_5D0B7E11_03",
                    "released_at": "2026-04-10T08:12:01Z",
                    "cause": "session_cancelled",
                    "released": _ALLOCATIONS,
                }
            ]
        }
    )

    patient_id: PatientId
    course_id: CourseId
    session_id: SessionId
    released_at: Timestamp = Field(description="When the reservation was released.")
    cause: Literal["session_cancelled", "no_show", "course_paused", "session_rescheduled", "lot_withdrawn"] = Field(
        description="What released it."
    )
    released: tuple[LotAllocation, ...] = Field(default=(), max_length=LINES, description="The lots and amounts that became available again.")


# -- the stock forecast ----------------------------------------------------------------------------------

DEFAULT_FORECAST_WEEKS = 8
"""A forecast's horizon when the request names none (and the weekly publication's, unless configured)."""
MAX_FORECAST_WEEKS = 26
"""The longest horizon a forecast may cover."""
ForecastRequestId = Annotated[
    str, Field(pattern=r"^fcr_[A-Za-z0-9]{6,40}$", description="Id of a stock forecast request, chosen by the requester.", examples=["fcr_20260302A1"])
]


class StockForecastRequested(EventData):
    """Someone asks inventory for the stock forecast now: of one ingredient, or of every stocked one.

    Published by an operator or the purchasing system (`clinic stock forecast` publishes it and prints the
    answer). Inventory answers with one StockForecast per ingredient (each carrying this `request_id`), plus a
    StockShortageForecast for each ingredient that falls short within the horizon. An ingredient inventory
    does not stock is dead-lettered as `unknown-ingredient` and nothing is published.
    """

    event_type: ClassVar[str] = "clinic.stock.forecast_requested.v1"
    producer: ClassVar[str] = "external"
    key_field: ClassVar[str] = "request_id"
    subject_field: ClassVar[str | None] = "request_id"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"request_id": "fcr_20260302A1", "ingredient": "minoxidil", "weeks": 8, "requested_at": "2026-03-02T08:00:00Z"},
                {"request_id": "fcr_20260302B2", "ingredient": None, "weeks": 4, "requested_at": "2026-03-02T08:05:00Z"},
            ]
        }
    )

    request_id: ForecastRequestId
    ingredient: IngredientCode | None = Field(default=None, description="The ingredient to forecast; none (null): every ingredient inventory stocks.")
    weeks: int = Field(
        default=DEFAULT_FORECAST_WEEKS, ge=1, le=MAX_FORECAST_WEEKS,
        description=f"Weeks ahead, from the current ISO week (Monday to Sunday, UTC) included; {DEFAULT_FORECAST_WEEKS} when not given.",
    )
    requested_at: Timestamp = Field(description="When the forecast was asked for.")


class ForecastWeek(ValueObject):
    week_starting: Day = Field(description="Monday of the ISO week (UTC).")
    sessions: int = Field(ge=0, le=100_000, description="Sessions booked that week that need the ingredient (reserved, or short of stock).")
    demand: float = Field(ge=0, description="What those sessions need of the ingredient, in `unit`.")
    usable: float = Field(
        ge=0, description="Stock usable that week: on hand in lots not withdrawn (recalled or quarantined) and not expired before the week "
        "(or before today, in the current week), less what earlier weeks' sessions of the horizon take, first expiry first."
    )
    balance: float = Field(description="`usable` minus `demand`; negative when the week's sessions need more than there is.")
    shortfall: float = Field(
        ge=0, description="What the week's sessions cannot be given, day by day, first expiry first (a lot expiring mid-week covers "
        "only the sessions up to its expiry date); 0 when the week is covered."
    )
    below_reorder_point: bool = Field(description="`balance` is at or below the ingredient's reorder point.")


class ShortageOutlook(ValueObject):
    short_from: Day = Field(description="The first session day within the horizon whose sessions cannot be given the ingredient.")
    week_starting: Day = Field(description="Monday of that day's ISO week: the first week of shortage.")
    weeks_ahead: int = Field(ge=0, le=MAX_FORECAST_WEEKS, description="Whole weeks from the forecast's day to `short_from`.")
    missing: float = Field(gt=0, description="Total shortfall over the horizon, in `unit`.")
    reorder_lead_days: int = Field(ge=0, le=180, description="The ingredient's configured reorder lead time.")
    reorder_by: Day = Field(description="The last day to place an order that arrives in time: `short_from` minus the lead time.")
    reorder_overdue: bool = Field(description="`reorder_by` is already past: an order placed now arrives after `short_from`.")


_FORECAST_WEEKS: list[JsonValue] = [
    {"week_starting": "2026-03-02", "sessions": 6, "demand": 12.0, "usable": 40.0, "balance": 28.0, "shortfall": 0.0, "below_reorder_point": False},
    {"week_starting": "2026-03-09", "sessions": 8, "demand": 16.0, "usable": 28.0, "balance": 12.0, "shortfall": 0.0, "below_reorder_point": True},
    {"week_starting": "2026-03-16", "sessions": 9, "demand": 18.0, "usable": 12.0, "balance": -6.0, "shortfall": 6.0, "below_reorder_point": True},
]
_OUTLOOK: dict[str, JsonValue] = {
    "short_from": "2026-03-19", "week_starting": "2026-03-16", "weeks_ahead": 2, "missing": 6.0, "reorder_lead_days": 14,
    "reorder_by": "2026-03-05", "reorder_overdue": False,
}


class StockForecast(EventData):
    """The stock forecast of one ingredient, week by week: demand of the sessions already booked against the
    stock usable each week (lots' expiry, withdrawn lots left out), the first week of shortage and the date
    by which to reorder.

    Published by inventory every week (Monday, for `forecast_weeks` weeks, `request_id` null) for every
    ingredient it stocks, and in answer to StockForecastRequested (`request_id` set, one per ingredient,
    `answers` of them). When `shortage` is set, a StockShortageForecast with the same facts is published
    beside it: subscribe to that to be warned.
    """

    event_type: ClassVar[str] = "clinic.stock.forecast.v1"
    producer: ClassVar[str] = "inventory"
    key_field: ClassVar[str] = "ingredient"
    subject_field: ClassVar[str | None] = "ingredient"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ingredient": "minoxidil", "unit": "mg", "request_id": "fcr_20260302A1", "answers": 1, "forecast_at": "2026-03-02T08:00:01Z",
                    "usable_now": 40.0, "reorder_point": 20.0, "reorder_lead_days": 14, "weeks": _FORECAST_WEEKS, "shortage": _OUTLOOK,
                }
            ]
        }
    )

    ingredient: IngredientCode = Field(description="The ingredient forecast.")
    unit: Unit = Field(description="Unit of every quantity here.")
    request_id: ForecastRequestId | None = Field(default=None, description="The StockForecastRequested this answers; null for the weekly publication.")
    answers: int = Field(default=1, ge=1, le=INGREDIENTS, description="How many StockForecast events answer the same request (one per ingredient).")
    forecast_at: Timestamp = Field(description="When the forecast was computed.")
    usable_now: float = Field(ge=0, description="On hand today in lots neither withdrawn nor expired (reserved stock included: it is for the sessions in `weeks`).")
    reorder_point: float = Field(gt=0, description="The ingredient's configured reorder point (StockLow).")
    reorder_lead_days: int = Field(ge=0, le=180, description="The ingredient's configured reorder lead time, in days.")
    weeks: tuple[ForecastWeek, ...] = Field(min_length=1, max_length=MAX_FORECAST_WEEKS, description="One line per ISO week of the horizon, the current one first.")
    shortage: ShortageOutlook | None = Field(default=None, description="The first shortage within the horizon; null when every week is covered.")


class StockShortageForecast(EventData):
    """The warning: an ingredient will fall short for sessions already booked, weeks before they happen.

    Published by inventory beside a StockForecast whose `shortage` is set (weekly, and in answer to a
    request). Purchasing orders by `reorder_by`; scheduling's shortages (IngredientShortage) come later,
    per session, if nothing arrives.
    """

    event_type: ClassVar[str] = "clinic.stock.shortage_forecast.v1"
    producer: ClassVar[str] = "inventory"
    key_field: ClassVar[str] = "ingredient"
    subject_field: ClassVar[str | None] = "ingredient"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ingredient": "minoxidil", "unit": "mg", "request_id": "fcr_20260302A1", "forecast_at": "2026-03-02T08:00:01Z", **_OUTLOOK}
            ]
        }
    )

    ingredient: IngredientCode = Field(description="The ingredient that will fall short.")
    unit: Unit = Field(description="Unit of `missing`.")
    request_id: ForecastRequestId | None = Field(default=None, description="The StockForecastRequested this answers; null for the weekly publication.")
    forecast_at: Timestamp = Field(description="When the forecast was computed.")
    short_from: Day = Field(description="The first session day whose sessions cannot be given the ingredient.")
    week_starting: Day = Field(description="Monday of that day's ISO week: the first week of shortage.")
    weeks_ahead: int = Field(ge=0, le=MAX_FORECAST_WEEKS, description="Whole weeks from the forecast's day to `short_from`.")
    missing: float = Field(gt=0, description="Total shortfall over the forecast's horizon.")
    reorder_lead_days: int = Field(ge=0, le=180, description="The ingredient's configured reorder lead time.")
    reorder_by: Day = Field(description="The last day to place an order that arrives in time: `short_from` minus the lead time.")
    reorder_overdue: bool = Field(description="`reorder_by` is already past.")


EVENTS = (
    StockReceived,
    StockAccepted,
    StockRefused,
    LotRecalled,
    IngredientsReserved,
    IngredientShortage,
    StockConsumed,
    StockLow,
    LotExpiringSoon,
    LotQuarantined,
    LotWithdrawalStep,
    ReservationReleased,
    StockForecastRequested,
    StockForecast,
    StockShortageForecast,
)
