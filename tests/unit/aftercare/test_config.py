import json

import pytest
from pydantic import ValidationError

from services.aftercare.config import CONFIG_ENV, AftercareConfig, load_config
from shared.contracts.aftercare import Symptom


def test_defaults_follow_the_seed_and_domain():
    config = AftercareConfig()
    assert config.check_in_hours == (24, 72)
    assert config.escalation.escalate_from_grade == 3
    assert config.escalation.serious_symptoms == {Symptom.ALLERGIC_REACTION, Symptom.INFECTION}
    assert {r.hours for r in config.instructions} == {24, 48, 14 * 24}


def test_a_json_file_named_in_the_environment_overrides_the_defaults(tmp_path, monkeypatch):
    path = tmp_path / "aftercare.json"
    path.write_text(json.dumps({"check_in_hours": [12, 48], "escalation": {"persisting_after_days": 3}}))
    monkeypatch.setenv(CONFIG_ENV, str(path))
    config = load_config()
    assert config.check_in_hours == (12, 48)
    assert config.escalation.persisting_after_days == 3
    assert config.escalation.escalate_from_grade == 3


def test_without_a_file_the_defaults_apply(monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert load_config() == AftercareConfig()


@pytest.mark.parametrize(
    "override",
    [
        {"check_in_hours": [0]},
        {"check_in_hours": [721]},
        {"check_in_hours": [24, 24]},
        {"instructions": []},
        {"instructions": [{"advice": "no_alcohol", "hours": 48}, {"advice": "no_alcohol", "hours": 24}]},
        {"instructions": [{"advice": "no_alcohol", "hours": 0}]},
        {"instructions": [{"advice": "no_alcohol", "hours": 48, "text": "free text is not configuration"}]},
        {"escalation": {"escalate_from_grade": 6}},
        {"escalation": {"serious_symptoms": ["redness"]}},
        {"escalation": {"unknown_threshold": 1}},
    ],
)
def test_an_invalid_configuration_is_refused(override):
    with pytest.raises(ValidationError):
        AftercareConfig.model_validate(override)


def test_check_in_hours_at_the_edges_are_accepted():
    assert AftercareConfig(check_in_hours=(720, 1)).check_in_hours == (1, 720)
