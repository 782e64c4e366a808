"""Scheduling configuration: the clinic calendar, reminder lead times and follow-up rules.

Defaults follow the seed (sessions 1-4 weeks apart, numbing cream 30-60 minutes before, maintenance every
few months) and clinic-domain.md. A clinic overrides any of it with a JSON file named in
``CLINIC_SCHEDULING_CONFIG``.
"""

from __future__ import annotations

import json
import os
from datetime import date, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.contracts.base import ClinicianId
from shared.contracts.scheduling import ChairId

CONFIG_ENV = "CLINIC_SCHEDULING_CONFIG"


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpeningHours(_Config):
    """One opening interval on a weekday (several per day make a lunch break)."""

    weekday: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday.")
    opens: time
    closes: time

    @model_validator(mode="after")
    def _opens_before_closing(self) -> OpeningHours:
        if self.opens >= self.closes:
            raise ValueError(f"weekday {self.weekday}: opens {self.opens} is not before closes {self.closes}")
        return self


WEEKDAYS = tuple(OpeningHours(weekday=d, opens=time(9), closes=time(18)) for d in range(5))
SATURDAY = OpeningHours(weekday=5, opens=time(9), closes=time(13))


class CalendarConfig(_Config):
    timezone: str = Field("UTC", description="IANA time zone the opening hours and closed dates are in.")
    opening_hours: tuple[OpeningHours, ...] = Field((*WEEKDAYS, SATURDAY), min_length=1)
    closed_dates: frozenset[date] = Field(frozenset(), description="Whole days the clinic is closed (holidays).")
    chairs: tuple[ChairId, ...] = Field(("chair_01", "chair_02"), min_length=1, description="Treatment chairs, capacity 1 each.")
    practitioners: tuple[ClinicianId, ...] = Field(("clin_0107", "clin_0108"), min_length=1)
    slot_step_minutes: int = Field(15, ge=5, le=120, description="Grid of start times; claims are held per step.")
    session_minutes: int = Field(45, ge=10, le=240, description="Length of a treatment session.")
    follow_up_minutes: int = Field(30, ge=10, le=240, description="Length of a maintenance visit or review (no chair).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name

    @model_validator(mode="after")
    def _lengths_on_the_grid(self) -> CalendarConfig:
        for name in ("session_minutes", "follow_up_minutes"):
            if getattr(self, name) % self.slot_step_minutes:
                raise ValueError(f"{name} must be a multiple of slot_step_minutes")
        if len(set(self.chairs)) != len(self.chairs) or len(set(self.practitioners)) != len(self.practitioners):
            raise ValueError("chairs and practitioners must be distinct")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def step(self) -> timedelta:
        return timedelta(minutes=self.slot_step_minutes)


class SeriesRules(_Config):
    min_interval_days: int = Field(7, ge=1, le=28, description="Shortest gap a session may move to (1 week).")
    max_interval_days: int = Field(28, ge=1, le=56, description="Longest gap a session may move to (4 weeks).")
    booking_notice_hours: int = Field(24, ge=0, le=24 * 14, description="No session is booked sooner than this from now.")
    horizon_days: int = Field(365, ge=28, le=730, description="Every session of a series lies within this many days of its first possible day.")
    claim_attempts: int = Field(25, ge=1, le=200, description="Times a series is placed again after losing a slot to another booking.")
    early_completion_minutes: int = Field(
        0, ge=0, le=24 * 60, description="A session reported completed more than this before its booked start is flagged (SessionCompletionFlagged)."
    )

    @model_validator(mode="after")
    def _bounds_in_order(self) -> SeriesRules:
        if self.min_interval_days > self.max_interval_days:
            raise ValueError("min_interval_days exceeds max_interval_days")
        return self


class ReminderRules(_Config):
    numbing_cream_notice_minutes: int = Field(15, ge=0, le=240, description="The numbing-cream reminder comes this long before the cream is due.")
    anticoagulant_review_days: int = Field(3, ge=1, le=14, description="Prescribed anticoagulants: the clinician reviews this many days before each session.")


class FollowUpRules(_Config):
    maintenance_visits: int = Field(2, ge=0, le=6, description="Maintenance visits booked after a completed course, one plan interval apart.")
    maintenance_search_days: int = Field(14, ge=0, le=60, description="A maintenance visit may be this many days after its target day.")
    review_after_hours: int = Field(12, ge=0, le=24 * 7, description="An adverse-event review is booked no sooner than this after the escalation.")
    review_search_days: int = Field(14, ge=1, le=60, description="Days searched for a review slot.")


class ShortageRules(_Config):
    restock_lead_days: int = Field(3, ge=0, le=60, description="A shortage detected less than this before its session moves the session.")


class SchedulingConfig(_Config):
    calendar: CalendarConfig = CalendarConfig()
    series: SeriesRules = SeriesRules()
    reminders: ReminderRules = ReminderRules()
    follow_ups: FollowUpRules = FollowUpRules()
    shortage: ShortageRules = ShortageRules()


def load_config(path: str | Path | None = None) -> SchedulingConfig:
    """The defaults, overridden by the JSON file at ``path`` or ``$CLINIC_SCHEDULING_CONFIG`` when set."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return SchedulingConfig()
    return SchedulingConfig.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
