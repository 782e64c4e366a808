"""Inventory rules (pure, no I/O, time passed in): a lot's balance and its movements, FEFO allocation,
re-checks after a move, receipts, the ledger entry a movement becomes, the stock book, reorder and expiry
signals, and the outgoing events built from all that.

Sections, in the order an event meets them: amounts and a lot's balance; lots, holdings and sessions;
allocation; receipts; ledger entries; the stock book; stock levels and alerts; demand and the stock
forecast; outcomes; outgoing events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from services.inventory.config import Ingredient, InventoryConfig
from shared.contracts.inventory import (
    MAX_FORECAST_WEEKS,
    AffectedSession,
    ConsumedLine,
    ForecastWeek,
    IngredientShortage,
    IngredientsReserved,
    LotExpiringSoon,
    LotQuarantined,
    RecallReason,
    ReservationReleased,
    ShortageOutlook,
    StockAccepted,
    StockConsumed,
    StockForecast,
    StockLow,
    StockReceived,
    StockRefused,
    StockShortageForecast,
)
from shared.contracts.plan import DoseLine, LotAllocation, LotLine

# -- amounts and a lot's balance ---------------------------------------------------------------------
#
# Every ledger entry stores the balance after it, so the next movement is computed from the latest entry
# alone. Reserved stock never exceeds what is on hand: a reservation takes at most what is available, and
# consumption beyond what a session held is capped and recorded as a shortfall.

EPS = 1e-9


def q(amount: float) -> float:
    """Amounts are floats on the wire; rounding keeps sums of doses from drifting."""
    return round(amount + 0.0, 6)


class Kind(StrEnum):
    RECEIVE = "receive"
    RESERVE = "reserve"
    RELEASE = "release"
    CONSUME = "consume"
    WITHDRAW = "withdraw"


@dataclass(frozen=True)
class LotState:
    on_hand: float = 0.0
    reserved: float = 0.0
    withdrawn: bool = False

    @property
    def available(self) -> float:
        """What a new reservation may take: nothing once the lot is withdrawn."""
        return 0.0 if self.withdrawn else max(0.0, q(self.on_hand - self.reserved))


@dataclass(frozen=True)
class Movement:
    kind: Kind
    amount: float
    """Size of the movement (received, reserved, released, used or withdrawn from use)."""
    held_delta: float
    """Change of the session's holding on this lot."""
    after: LotState
    shortfall: float = 0.0
    """Used beyond what the lot could give (consumption only): recorded, never taken from others."""


def receive(state: LotState, quantity: float) -> Movement:
    if quantity <= EPS:
        raise ValueError("a receipt must be positive")
    return Movement(Kind.RECEIVE, q(quantity), 0.0, replace(state, on_hand=q(state.on_hand + quantity)))


def reserve(state: LotState, wanted: float) -> Movement | None:
    taken = q(min(wanted, state.available))
    if taken <= EPS:
        return None
    return Movement(Kind.RESERVE, taken, taken, replace(state, reserved=q(state.reserved + taken)))


def release(state: LotState, held: float, amount: float | None = None) -> Movement | None:
    """Give back ``amount`` of what the session holds (all of it when ``amount`` is None)."""
    freed = q(min(held, held if amount is None else amount))
    if freed <= EPS:
        return None
    return Movement(Kind.RELEASE, freed, -freed, replace(state, reserved=q(max(0.0, state.reserved - freed))))


def consume(state: LotState, held: float, used: float) -> Movement | None:
    """The session's holding ends; ``used`` leaves the shelf. Extra use comes only from unreserved stock."""
    if held <= EPS and used <= EPS:
        return None
    reserved = q(max(0.0, state.reserved - held))
    taken = q(min(used, max(0.0, state.on_hand - reserved)))
    after = replace(state, on_hand=q(state.on_hand - taken), reserved=reserved)
    return Movement(Kind.CONSUME, q(used), -q(held), after, shortfall=q(used - taken))


def withdraw(state: LotState) -> Movement:
    return Movement(Kind.WITHDRAW, state.available, 0.0, replace(state, withdrawn=True))


def nothing(state: LotState) -> Movement:
    """A movement of nothing (a marker entry)."""
    return Movement(Kind.RELEASE, 0.0, 0.0, state)


# -- lots, holdings and sessions ---------------------------------------------------------------------


def session_day(scheduled_for: datetime) -> date:
    return scheduled_for.astimezone(UTC).date()


def today_of(now: datetime) -> date:
    """Expiry dates are compared with the UTC date, like session days (``session_day``)."""
    return now.date()


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

    @property
    def meta(self) -> LotMeta:
        return LotMeta(self.lot_number, self.ingredient, self.unit, self.expires_on)


@dataclass(frozen=True)
class Holding:
    """What one session holds of one lot."""

    ingredient: str
    lot_number: str
    unit: str
    expires_on: date
    amount: float

    @property
    def meta(self) -> LotMeta:
        return LotMeta(self.lot_number, self.ingredient, self.unit, self.expires_on)


@dataclass(frozen=True)
class SessionRef:
    session_id: str
    patient_id: str
    course_id: str
    scheduled_for: datetime


@dataclass(frozen=True)
class Hold:
    """What a session holds of a lot, and how many movements of the session's there have been (version)."""

    meta: LotMeta
    amount: float = 0.0
    version: int = 0


@dataclass(frozen=True)
class Session:
    """What inventory knows of a booked session, as its events last left it.

    ``holds``: what it holds of each lot with the holding's version (see the ledger entries below);
    ``round``: the event's attempt that wrote it last, unfinished when a reservation wrote it before moving
    stock and that event's Effects were never applied (a crash)."""

    ref: SessionRef
    status: str | None = None
    """reserved, short, released or consumed; None before any of its events' Effects was applied."""
    holds: dict[str, Hold] = field(default_factory=dict)
    round: str | None = None
    round_done: bool = True
    consumed_lots: tuple[str, ...] = ()
    needs: dict[str, float] = field(default_factory=dict)
    """Its cocktail's per-ingredient totals, as its latest booking or move said."""

    @property
    def demand(self) -> Need | None:
        """What it counts for in the stock forecast: its needs on its day while it is booked (reserved or
        short of stock); nothing once released or consumed."""
        if self.status not in ("reserved", "short") or not self.needs:
            return None
        return Need(session_day(self.ref.scheduled_for), dict(self.needs))

    @property
    def unfinished(self) -> str | None:
        """The round a reservation began whose event's Effects were never applied."""
        return self.round if self.round and not self.round_done else None


def status_of(session: Session | None) -> str | None:
    return None if session is None else session.status


def unfinished(session: Session | None) -> str | None:
    return None if session is None else session.unfinished


# -- allocation --------------------------------------------------------------------------------------


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


ShortageCause = Literal["insufficient_stock", "expires_before_session", "lot_recalled", "lot_quarantined"]
ReleaseCause = Literal["session_cancelled", "no_show", "course_paused", "session_rescheduled", "lot_withdrawn"]


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


# -- receipts ----------------------------------------------------------------------------------------


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


# -- ledger entries ----------------------------------------------------------------------------------
#
# Every movement on lot L is one entry ``L|<seq>`` holding the lot's balance after it; a session's movement
# also says what the session holds afterwards (``held``) and the how-manyth change of that holding it is
# (``hold``), under the unique ``key`` ``L|<session>|<hold>``; its ``cause`` is unique too. The entries are
# the stored documents themselves: the compare-and-set (shelf.py) inserts and compares them as they are.

Entry = dict[str, Any]
"""A ledger entry as stored (see the fields ``new_entry`` writes)."""

Decide = Callable[[LotState, float], Movement | None]
"""From the lot's balance and what the session holds of it, the movement to make (None: nothing)."""


def entry_id(lot_number: str, seq: int) -> str:
    return f"{lot_number}|{seq:08d}"


def hold_key(lot_number: str, session_id: str, version: int) -> str:
    return f"{lot_number}|{session_id}|{version:06d}"


def state_of(entry: Entry | None) -> LotState:
    if entry is None:
        return LotState()
    return LotState(entry["on_hand"], entry["reserved"], entry["withdrawn"])


def meta_of(entry: Entry) -> LotMeta:
    return LotMeta(entry["lot"], entry["ingredient"], entry["unit"], date.fromisoformat(entry["expires_on"]))


def lot_of(meta: LotMeta, entry: Entry | None) -> Lot:
    state = state_of(entry)
    return Lot(meta.lot_number, meta.ingredient, meta.unit, meta.expires_on, state.available, state.withdrawn)


def hold_of(entry: Entry) -> Hold:
    """The session's holding after its entry."""
    return Hold(meta_of(entry), entry["held"], entry["hold"])


def holding_of(hold: Hold) -> Holding:
    m = hold.meta
    return Holding(m.ingredient, m.lot_number, m.unit, m.expires_on, q(hold.amount))


def new_entry(
    meta: LotMeta, before: Entry | None, seq: int, cause: str, movement: Movement, now: datetime,
    session: SessionRef | None, hold: Hold | None, extra: dict[str, Any],
) -> Entry:
    after = movement.after
    last_consume = before.get("last_consume") if before is not None else None
    withdrawals = dict(before.get("withdrawals", {})) if before is not None else {}
    entry: Entry = {
        "_id": entry_id(meta.lot_number, seq),
        "lot": meta.lot_number,
        "seq": seq,
        "cause": cause,
        "key": cause,
        "kind": movement.kind.value,
        "ingredient": meta.ingredient,
        "unit": meta.unit,
        "expires_on": meta.expires_on.isoformat(),
        "amount": movement.amount,
        "held_delta": movement.held_delta,
        "shortfall": movement.shortfall,
        "on_hand": after.on_hand,
        "reserved": after.reserved,
        "available": after.available,
        "withdrawn": after.withdrawn,
        "at": now,
        "session_id": None,
        **extra,
    }
    if session is not None:
        version = (hold.version if hold else 0) + 1
        entry.update(
            session_id=session.session_id, patient_id=session.patient_id, course_id=session.course_id, scheduled_for=session.scheduled_for,
            held=q((hold.amount if hold else 0.0) + movement.held_delta), hold=version, key=hold_key(meta.lot_number, session.session_id, version),
        )
    if movement.kind is Kind.CONSUME and movement.amount > EPS:
        # the lot's consumptions form a chain back through the ledger, walked only when the lot is withdrawn
        entry["prev_consume"] = last_consume
        last_consume = seq
    if movement.kind is Kind.WITHDRAW:
        withdrawals[extra["withdrawal"]] = seq
    entry.update(last_consume=last_consume, withdrawals=withdrawals)
    return entry


def out_of_play(lot: LotMeta, entry: Entry | None, today: date) -> bool:
    """Nobody holds any of the lot and it can never be reserved again (used up, withdrawn or expired)."""
    state = state_of(entry)
    return state.reserved <= EPS and (state.on_hand <= EPS or state.withdrawn or lot.expires_on < today)


def released_in(entries: Iterable[Entry]) -> tuple[Holding, ...]:
    """What a round's entries gave back, net of what the same round took (a reservation undone within a
    round was never announced)."""
    net: dict[str, float] = defaultdict(float)
    last: dict[str, Entry] = {}
    for entry in entries:
        if entry["kind"] in ("reserve", "release"):
            net[entry["lot"]] -= entry["held_delta"]
            last[entry["lot"]] = entry
    return tuple(holding_of(Hold(meta_of(last[n]), amount)) for n, amount in sorted(net.items()) if amount > EPS)


def taken_in(entries: Iterable[Entry]) -> dict[str, float]:
    """What a round's entries reserved and still hold, per lot."""
    net: dict[str, float] = defaultdict(float)
    for entry in entries:
        if entry["kind"] in ("reserve", "release"):
            net[entry["lot"]] += entry["held_delta"]
    return {n: q(amount) for n, amount in net.items() if amount > EPS}


# -- the stock book ----------------------------------------------------------------------------------
#
# Which lots each ingredient has in play, and where each ingredient's StockLow stands: one small versioned
# document read by every event that moves stock (stored by repository.py, changed by shelf.py).


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


def crossed(code: str, n: int, cause: str) -> Edit:
    def edit(book: Version) -> Version:
        return book if book.alert(code).n >= n else book.with_alert(code, Alert(n, False, cause))

    return edit


def rearmed(code: str, n: int) -> Edit:
    def edit(book: Version) -> Version:
        alert = book.alert(code)
        return book if alert.n != n or alert.armed else book.with_alert(code, Alert(n, True, alert.cause))

    return edit


# -- stock levels and alerts -------------------------------------------------------------------------


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


def level(meta: LotMeta, entry: Entry | None, today: date | None, status: str = "available") -> LotStock:
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


@dataclass(frozen=True)
class Crossing:
    """Crossing ``n`` of an ingredient's reorder point (a StockLow claim): the numbers it was made with and
    the key of the event that made it, so a re-run announces the same StockLow."""

    ingredient: str
    n: int
    cause: str
    at: datetime
    unit: str
    on_hand: float
    reserved: float
    available: float
    reorder_point: float


# -- demand and the stock forecast -------------------------------------------------------------------
#
# What the sessions already booked need, per ISO week: one small document per week (all ingredients),
# kept by the events that reserve, move, release and consume sessions (repository.py, "demand"), so a
# forecast reads one document per week of its horizon and never a session or a ledger entry. The forecast
# plays the weeks out first expiry first against the lots in play, as the reservations do.


def week_of(day: date) -> date:
    """Monday of the day's ISO week."""
    return day - timedelta(days=day.weekday())


def horizon(today: date, weeks: int) -> list[date]:
    """The Mondays of ``weeks`` ISO weeks, the current one first."""
    first = week_of(today)
    return [first + timedelta(weeks=k) for k in range(weeks)]


@dataclass(frozen=True)
class Need:
    """One session's demand: its day and its per-ingredient totals."""

    day: date
    needs: dict[str, float]


@dataclass(frozen=True)
class WeekDemand:
    """The sessions booked in one ISO week and what each needs, as folded from the week's slots up to ``upto``."""

    week: date
    upto: int = 0
    sessions: dict[str, Need] = field(default_factory=dict)

    def need(self, session_id: str) -> Need | None:
        return self.sessions.get(session_id)

    def with_slot(self, seq: int, session_id: str, need: Need | None) -> WeekDemand:
        """After slot ``seq``, which says what the session needs in this week from then on (None: nothing)."""
        sessions = dict(self.sessions)
        if need is None or not need.needs:
            sessions.pop(session_id, None)
        else:
            sessions[session_id] = need
        return WeekDemand(self.week, max(self.upto, seq), sessions)

    def of(self, ingredient: str) -> list[tuple[date, float]]:
        """The week's needs of one ingredient, session by session, in day order."""
        return sorted((n.day, n.needs[ingredient]) for n in self.sessions.values() if n.needs.get(ingredient, 0.0) > EPS)


def same_need(a: Need | None, b: Need | None) -> bool:
    if a is None or not a.needs or b is None or not b.needs:
        return (a is None or not a.needs) and (b is None or not b.needs)
    return a.day == b.day and {i: q(v) for i, v in a.needs.items()} == {i: q(v) for i, v in b.needs.items()}


def demand_changes(before: Need | None, after: Need | None) -> dict[date, Need | None]:
    """Per week a session's change touches, what it needs in that week afterwards (None: nothing); no
    week when its day and needs stay the same."""
    changes: dict[date, Need | None] = {}
    if same_need(before, after):
        return changes
    if before is not None and before.needs:
        changes[week_of(before.day)] = None
    if after is not None and after.needs:
        changes[week_of(after.day)] = after
    return changes


def stock_forecast(
    ingredient: Ingredient, lots: Sequence[LotStock], weeks: Sequence[WeekDemand], today: date, now: datetime,
    request_id: str | None = None, answers: int = 1,
) -> StockForecast:
    """Week by week, the booked sessions' demand of ``ingredient`` against the stock of ``lots`` (its lots in
    play): lots withdrawn or expired count for nothing; each session takes first expiry first from the lots
    still in date on its day, as a reservation would; what it cannot be given is the week's shortfall."""
    code = ingredient.code
    usable_lots = sorted(
        (lot for lot in lots if lot.ingredient == code and lot.usable and lot.expires_on >= today and lot.on_hand > EPS),
        key=lambda lot: (lot.expires_on, lot.lot_number),
    )
    left = {lot.lot_number: q(lot.on_hand) for lot in usable_lots}
    lines: list[ForecastWeek] = []
    short_from: date | None = None
    missing = 0.0
    for week in sorted(weeks, key=lambda w: w.week):
        start = max(week.week, today)
        usable = q(sum(left[lot.lot_number] for lot in usable_lots if lot.expires_on >= start))
        needs = week.of(code)
        demand = q(sum(amount for _, amount in needs))
        shortfall = 0.0
        for day, amount in needs:
            wanted = q(amount)
            for lot in usable_lots:
                if wanted <= EPS:
                    break
                if lot.expires_on < day:
                    continue
                taken = q(min(wanted, left[lot.lot_number]))
                left[lot.lot_number] = q(left[lot.lot_number] - taken)
                wanted = q(wanted - taken)
            if wanted > EPS:
                shortfall = q(shortfall + wanted)
                short_from = day if short_from is None else min(short_from, day)
        missing = q(missing + shortfall)
        balance = q(usable - demand)
        lines.append(
            ForecastWeek(
                week_starting=week.week, sessions=len(needs), demand=demand, usable=usable, balance=balance, shortfall=shortfall,
                below_reorder_point=balance <= ingredient.reorder_point + EPS,
            )
        )
    shortage = None
    if short_from is not None:
        reorder_by = short_from - timedelta(days=ingredient.reorder_lead_days)
        shortage = ShortageOutlook(
            short_from=short_from, week_starting=week_of(short_from), weeks_ahead=min(MAX_FORECAST_WEEKS, max(0, (short_from - today).days // 7)),
            missing=missing, reorder_lead_days=ingredient.reorder_lead_days, reorder_by=reorder_by, reorder_overdue=reorder_by < today,
        )
    return StockForecast(
        ingredient=code, unit=ingredient.unit, request_id=request_id, answers=answers, forecast_at=now,
        usable_now=q(sum(lot.on_hand for lot in usable_lots)), reorder_point=ingredient.reorder_point,
        reorder_lead_days=ingredient.reorder_lead_days, weeks=tuple(lines), shortage=shortage,
    )


def shortage_forecast(forecast: StockForecast) -> StockShortageForecast | None:
    """The warning beside a forecast that falls short: the same facts, on a topic of its own."""
    if forecast.shortage is None:
        return None
    return StockShortageForecast(
        ingredient=forecast.ingredient, unit=forecast.unit, request_id=forecast.request_id, forecast_at=forecast.forecast_at,
        **forecast.shortage.model_dump(),
    )


# -- outcomes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    held: tuple[Holding, ...] = ()
    """What the session holds afterwards (empty after a shortage)."""
    missing: dict[str, float] = field(default_factory=dict)
    shortage_cause: ShortageCause | None = None
    released: tuple[Holding, ...] = ()
    """What this round gave back to stock."""

    @property
    def short(self) -> bool:
        return bool(self.missing)

    @property
    def ingredients(self) -> set[str]:
        return {h.ingredient for h in (*self.held, *self.released)} | set(self.missing)


@dataclass(frozen=True)
class Consumed:
    ingredient: str
    lot_number: str
    unit: str
    amount: float
    """Used (taken off the shelf, or recorded as a shortfall)."""
    reserved: float
    """What the session held of the lot until then."""


WithdrawalKind = Literal["adverse_events", "recall"]


@dataclass(frozen=True)
class Move:
    """What a withdrawal did to one session holding the lot."""

    ref: SessionRef
    status: Literal["reservation_moved", "shortage"]
    held: tuple[Holding, ...] = ()
    missing: dict[str, float] | None = None
    released: tuple[Holding, ...] = ()


Job = dict[str, Any]
"""A withdrawal's steps as stored (``withdrawals``, by ``<lot>|<kind>``): the withdrawal entry's facts, the
``phase`` (scan, move, administered, done), where it stands (``cursor``, ``pending``, ``step``) and what it
found (``holders``, ``moved``, ``administered``). Small: only sessions holding the lot, or affected."""


def withdrawal_job(meta: LotMeta, kind: WithdrawalKind, entry: Entry, recall_reason: RecallReason | None) -> Job:
    return {
        "_id": f"{meta.lot_number}|{kind}", "lot": meta.lot_number, "ingredient": meta.ingredient, "unit": meta.unit,
        "expires_on": meta.expires_on.isoformat(), "kind": kind, "recall_reason": recall_reason, "seq": entry["seq"], "at": entry["at"],
        "escalation_ids": list(entry.get("escalation_ids", ())), "last_consume": entry.get("last_consume"),
        "phase": "scan", "cursor": 0, "step": 1, "holders": {}, "pending": [], "moved": [], "administered": [],
    }


# -- outgoing events ---------------------------------------------------------------------------------


def allocations(held: Iterable[Holding]) -> tuple[LotAllocation, ...]:
    return tuple(
        LotAllocation(ingredient=h.ingredient, lot_number=h.lot_number, amount=h.amount, unit=h.unit, expires_on=h.expires_on)
        for h in sorted(held, key=lambda h: (h.ingredient, h.expires_on, h.lot_number))
    )


def ingredients_reserved(ref: SessionRef, held: Iterable[Holding], now: datetime) -> IngredientsReserved:
    return IngredientsReserved(
        patient_id=ref.patient_id, course_id=ref.course_id, session_id=ref.session_id, scheduled_for=ref.scheduled_for,
        reserved_at=now, allocations=allocations(held),
    )


def ingredient_shortage(ref: SessionRef, missing: dict[str, float], units: dict[str, str], cause: ShortageCause, now: datetime) -> IngredientShortage:
    return IngredientShortage(
        patient_id=ref.patient_id, course_id=ref.course_id, session_id=ref.session_id, needed_by=ref.scheduled_for,
        detected_at=now, cause=cause,
        missing=tuple(DoseLine(ingredient=i, amount=a, unit=units[i]) for i, a in sorted(missing.items())),
    )


def reservation_released(ref: SessionRef, lines: Iterable[Holding], cause: ReleaseCause, now: datetime) -> ReservationReleased:
    return ReservationReleased(
        patient_id=ref.patient_id, course_id=ref.course_id, session_id=ref.session_id, released_at=now,
        cause=cause, released=allocations(lines),
    )


def stock_consumed(ref: SessionRef, lines: list[Consumed], now: datetime) -> StockConsumed:
    used = [line for line in lines if line.amount > 0]
    returned = [line for line in lines if line.amount <= 0 and line.reserved > 0]
    return StockConsumed(
        patient_id=ref.patient_id, course_id=ref.course_id, session_id=ref.session_id, consumed_at=now,
        consumed=tuple(
            ConsumedLine(ingredient=c.ingredient, lot_number=c.lot_number, amount=c.amount, reserved_amount=c.reserved, unit=c.unit) for c in used
        ),
        returned=tuple(LotLine(ingredient=c.ingredient, lot_number=c.lot_number, amount=c.reserved, unit=c.unit) for c in returned),
    )


def lot_quarantined(job: Job) -> LotQuarantined:
    """The announcement of a withdrawal whose steps are done: every session that used the lot, or held it."""
    affected: dict[str, AffectedSession] = {}
    for used in job["administered"]:
        affected[used["session_id"]] = AffectedSession(
            patient_id=used["patient_id"], session_id=used["session_id"], scheduled_for=used["scheduled_for"], status="administered"
        )
    for moved in job["moved"]:
        affected[moved["session_id"]] = AffectedSession(
            patient_id=moved["patient_id"], session_id=moved["session_id"], scheduled_for=moved["scheduled_for"], status=moved["status"]
        )
    return LotQuarantined(
        lot_number=job["lot"], ingredient=job["ingredient"], quarantined_at=job["at"], cause=job["kind"],
        recall_reason=job["recall_reason"], escalation_ids=tuple(job["escalation_ids"]), affected=tuple(affected.values()),
    )


def stock_accepted(delivery: StockReceived, on_hand: float, now: datetime) -> StockAccepted:
    return StockAccepted(
        delivery_id=delivery.delivery_id, ingredient=delivery.ingredient, lot_number=delivery.lot_number, expires_on=delivery.expires_on,
        quantity=delivery.quantity, unit=delivery.unit, on_hand=max(0.0, on_hand), accepted_at=now,
    )


def stock_refused(delivery: StockReceived, refused: Refused, now: datetime) -> StockRefused:
    return StockRefused.model_validate(
        {
            "delivery_id": delivery.delivery_id, "ingredient": delivery.ingredient, "lot_number": delivery.lot_number, "quantity": delivery.quantity,
            "unit": delivery.unit, "reason": refused.reason, "detail": refused.detail[:200], "refused_at": now,
        }
    )


def stock_low(crossing: Crossing) -> StockLow:
    return StockLow(
        ingredient=crossing.ingredient, unit=crossing.unit, on_hand=max(0.0, crossing.on_hand), reserved=max(0.0, crossing.reserved),
        available=crossing.available, reorder_point=crossing.reorder_point, detected_at=crossing.at,
    )


def lots_expiring(levels: list[LotStock], config: InventoryConfig, today: date, now: datetime) -> list[LotExpiringSoon]:
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
