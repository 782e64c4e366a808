"""A lot's running balance and the movements that change it (pure).

Every ledger entry stores the balance after it, so the next movement is computed from the latest entry
alone. Reserved stock never exceeds what is on hand: a reservation takes at most what is available, and
consumption beyond what a session held is capped and recorded as a shortfall.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

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
