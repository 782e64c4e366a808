"""The clinic calendar is data: defaults that make sense, and mistakes refused when loaded."""

from __future__ import annotations

import json
from datetime import time

import pytest
from pydantic import ValidationError

from services.scheduling.config import CONFIG_ENV, CalendarConfig, OpeningHours, SchedulingConfig, SeriesRules, load_config


def test_the_default_clinic_opens_six_days_with_two_chairs_and_two_practitioners():
    config = SchedulingConfig()

    assert {h.weekday for h in config.calendar.opening_hours} == {0, 1, 2, 3, 4, 5}
    assert len(config.calendar.chairs) == len(config.calendar.practitioners) == 2
    assert (config.series.min_interval_days, config.series.max_interval_days) == (7, 28)


def test_appointment_lengths_off_the_slot_grid_are_refused():
    with pytest.raises(ValidationError, match="multiple of slot_step_minutes"):
        CalendarConfig(slot_step_minutes=20, session_minutes=45)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(ValidationError, match="unknown time zone"):
        CalendarConfig(timezone="Mars/Olympus_Mons")


def test_opening_hours_must_open_before_they_close():
    with pytest.raises(ValidationError, match="is not before closes"):
        OpeningHours(weekday=0, opens=time(12), closes=time(9))


def test_interval_bounds_must_be_in_order():
    with pytest.raises(ValidationError, match="exceeds"):
        SeriesRules(min_interval_days=14, max_interval_days=10)


def test_a_json_file_named_in_the_environment_overrides_the_defaults(tmp_path, monkeypatch):
    path = tmp_path / "scheduling.json"
    path.write_text(json.dumps({"calendar": {"chairs": ["chair_09"], "closed_dates": ["2026-12-25"]}, "shortage": {"restock_lead_days": 5}}))
    monkeypatch.setenv(CONFIG_ENV, str(path))

    config = load_config()

    assert config.calendar.chairs == ("chair_09",)
    assert {str(d) for d in config.calendar.closed_dates} == {"2026-12-25"}
    assert config.shortage.restock_lead_days == 5
    assert config.calendar.practitioners == SchedulingConfig().calendar.practitioners
