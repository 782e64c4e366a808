"""The rule set and formulary are data: validated at load, overridable from a JSON file."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from services.consultation.config import ConsultationConfig, CourseTemplate, RuleSet, load_config

DEFAULTS = ConsultationConfig()


def rule_set(**changes) -> dict:
    return {**DEFAULTS.rule_set.model_dump(mode="json"), **changes}


def test_the_defaults_are_a_complete_versioned_rule_set():
    assert DEFAULTS.rule_set.version == "2026.11-1"
    assert DEFAULTS.rule_set.rules["contra.pregnancy"].outcome == "reject"
    assert DEFAULTS.rule_set.rules["suitability.scarring_alopecia"].referral == "dermatologist"


def test_a_rule_set_without_a_rule_the_screening_fires_is_refused():
    data = rule_set()
    del data["rules"]["scalp.active_infection"]
    with pytest.raises(ValidationError, match=r"lacks scalp\.active_infection"):
        RuleSet.model_validate(data)


def test_a_configured_lab_needs_its_rules():
    data = rule_set()
    del data["rules"]["labs.tsh_out_of_range"]
    with pytest.raises(ValidationError, match=r"lacks labs\.tsh_out_of_range"):
        RuleSet.model_validate(data)


@pytest.mark.parametrize(("rule", "outcome"), [("suitability.scarring_alopecia", "review"), ("allergy.known_allergen", "note"), ("review.clinician_rejected", "defer")])
def test_rules_the_code_depends_on_keep_their_outcome(rule, outcome):
    data = rule_set()
    data["rules"][rule]["outcome"] = outcome
    with pytest.raises(ValidationError, match=f"{rule} must have outcome"):
        RuleSet.model_validate(data)


def test_consent_can_never_be_made_clearable():
    data = rule_set()
    data["rules"]["consent.not_given"]["clearable"] = True
    with pytest.raises(ValidationError, match="cannot be clearable"):
        RuleSet.model_validate(data)


def test_a_lab_range_in_a_unit_the_lab_does_not_report_is_refused():
    data = rule_set()
    data["labs"]["tsh"]["ranges"]["ng/mL"] = {"low": 1, "high": 2}
    with pytest.raises(ValidationError, match="tsh is not reported in ng/mL"):
        RuleSet.model_validate(data)


def test_a_lab_range_must_be_ordered():
    data = rule_set()
    data["labs"]["tsh"]["ranges"]["mIU/L"] = {"low": 4, "high": 0.4}
    with pytest.raises(ValidationError, match="low must not exceed high"):
        RuleSet.model_validate(data)


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("sessions", 2, False),
        ("sessions", 3, True),
        ("sessions", 10, True),
        ("sessions", 11, False),
        ("interval_days", 6, False),
        ("interval_days", 7, True),
        ("interval_days", 28, True),
        ("interval_days", 29, False),
        ("depth_mm", 0.9, False),
        ("depth_mm", 1.0, True),
        ("depth_mm", 4.0, True),
        ("depth_mm", 4.1, False),
        ("maintenance_interval_weeks", 3, False),
        ("maintenance_interval_weeks", 52, True),
        ("maintenance_interval_weeks", 53, False),
    ],
)
def test_a_course_template_stays_within_the_seed_ranges(field, value, valid):
    data = {"sessions": 6, "interval_days": 14, "depth_mm": 2.0, "technique": "gun", "pattern": "grid", "maintenance_interval_weeks": 12, field: value}
    if valid:
        assert getattr(CourseTemplate.model_validate(data), field) == value
    else:
        with pytest.raises(ValidationError):
            CourseTemplate.model_validate(data)


def test_a_json_file_named_in_the_environment_replaces_sections(tmp_path, monkeypatch):
    data = rule_set(version="2027.01-3", lab_max_age_days=90)
    path = tmp_path / "consultation.json"
    path.write_text(json.dumps({"rule_set": data, "timezone": "Europe/Berlin"}))
    monkeypatch.setenv("CLINIC_CONSULTATION_CONFIG", str(path))

    config = load_config()

    assert (config.rule_set.version, config.rule_set.lab_max_age_days, config.timezone) == ("2027.01-3", 90, "Europe/Berlin")
    assert config.formulary == DEFAULTS.formulary


def test_without_a_file_the_defaults_apply(monkeypatch):
    monkeypatch.delenv("CLINIC_CONSULTATION_CONFIG", raising=False)
    assert load_config() == DEFAULTS


def test_an_unknown_key_in_the_file_is_refused_not_ignored(tmp_path):
    path = tmp_path / "consultation.json"
    path.write_text(json.dumps({"rule_sets": {}}))
    with pytest.raises(ValidationError):
        load_config(str(path))


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(ValidationError, match="unknown time zone"):
        ConsultationConfig(timezone="Mars/Olympus_Mons")
