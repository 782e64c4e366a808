"""The rules reference (docs/rules.md and docs/rules.json) is written from the live configuration and kept
current, like the schemas and the AsyncAPI document: change a rule, a dose, an opening hour, a threshold, a
dead-letter reason or a setting and this fails until `make rules` (python -m clinic.rules) is run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinic import rules
from clinic.asyncapi import SERVICES, consumed_by
from shared.contracts.dead_letters import REASONS
from shared.settings import Settings, env_name

CONFIGS = rules.load_configs()
DOC = json.loads((rules.DOCS / rules.JSON_FILE).read_text(encoding="utf-8"))
MARKDOWN = (rules.DOCS / rules.MARKDOWN).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", [rules.MARKDOWN, rules.JSON_FILE])
def test_the_committed_reference_is_current(name):
    assert (rules.DOCS / name).read_text(encoding="utf-8") == rules.render()[name], "run `make rules` (python -m clinic.rules) and commit docs/"


def test_check_mode_reports_a_stale_or_missing_file(tmp_path: Path, capsys):
    assert rules.main(["--check"]) == 0
    assert rules.stale(tmp_path) == [rules.MARKDOWN, rules.JSON_FILE]
    for name, content in rules.render().items():
        (tmp_path / name).write_text(content.replace("2026", "2025", 1), encoding="utf-8")
    assert rules.stale(tmp_path) == [rules.MARKDOWN, rules.JSON_FILE]


def test_every_screening_rule_with_what_fires_it_its_outcome_and_the_version():
    rule_set = CONFIGS["consultation"].rule_set
    assert DOC["screening"]["rule_set_version"] == rule_set.version
    assert f"Rule set version **{rule_set.version}**" in MARKDOWN
    documented = {r["id"]: r for r in DOC["screening"]["rules"]}
    assert documented.keys() == rule_set.rules.keys()
    for rule, spec in rule_set.rules.items():
        assert (documented[rule]["outcome"], documented[rule]["detail"]) == (spec.outcome, spec.detail)
        assert documented[rule]["fires_when"].endswith(".") and len(documented[rule]["fires_when"]) > 15
        assert f"| `{rule}` |" in MARKDOWN
    assert {r["outcome"] for r in documented.values()} <= DOC["screening"]["outcomes"].keys()


def test_a_rule_the_generator_cannot_explain_stops_it(monkeypatch):
    monkeypatch.setattr(rules, "_triggers", lambda config: {})
    with pytest.raises(LookupError, match="say what fires"):
        rules.reference()


def test_the_formulary_labs_and_essential_ingredients():
    formulary = CONFIGS["consultation"].formulary
    ingredients = {i["code"]: i for i in DOC["formulary"]["ingredients"]}
    assert ingredients.keys() == {i.code for i in formulary.ingredients}
    for ingredient in formulary.ingredients:
        assert ingredients[ingredient.code]["unit"] == ingredient.unit.value
        assert ingredients[ingredient.code]["essential_for"] == [k.value for k in ingredient.essential_for]
        assert ingredients[ingredient.code]["doses"] == {k.value: dict(bands) for k, bands in ingredient.doses.items()}
    rule_set = CONFIGS["consultation"].rule_set
    assert DOC["screening"]["lab_max_age_days"] == rule_set.lab_max_age_days
    assert {t: {u: [r["low"], r["high"]] for u, r in req["ranges"].items()} for t, req in DOC["screening"]["labs"].items()} == {
        t.value: {u: [r.low, r.high] for u, r in req.ranges.items()} for t, req in rule_set.labs.items()
    }


def test_the_calendar_aftercare_windows_and_thresholds():
    scheduling, aftercare, inventory = CONFIGS["scheduling"], CONFIGS["aftercare"], CONFIGS["inventory"]
    calendar = DOC["scheduling"]["calendar"]
    assert calendar["chairs"] == list(scheduling.calendar.chairs) and calendar["practitioners"] == list(scheduling.calendar.practitioners)
    assert len(calendar["opening_hours"]) == len(scheduling.calendar.opening_hours)
    assert DOC["scheduling"]["series"]["booking_notice_hours"] == scheduling.series.booking_notice_hours
    assert {i["advice"]: i["hours"] for i in DOC["aftercare"]["instructions"]} == {r.advice.value: r.hours for r in aftercare.instructions}
    assert DOC["aftercare"]["escalation"]["escalate_from_grade"] == aftercare.escalation.escalate_from_grade
    assert {i["code"]: i["quarantine_after_escalations"] for i in DOC["inventory"]["ingredients"]} == {
        i.code: i.quarantine_after_escalations for i in inventory.ingredients
    }
    for heading in ("## Calendar", "## Aftercare", "## Escalation and quarantine", "## Inventory"):
        assert heading in MARKDOWN


def test_every_dead_letter_reason_with_its_meaning():
    assert [(r["code"], r["meaning"]) for r in DOC["dead_letter_reasons"]] == [(r.code, r.meaning) for r in REASONS.values()]
    assert all(f"| `{code}` |" in MARKDOWN for code in REASONS)


def test_each_services_consumer_group_configuration_file_and_topics():
    assert list(DOC["services"]) == list(SERVICES)
    for service, documented in DOC["services"].items():
        assert documented["consumer_group"] == Settings.model_construct(topic_prefix="").group_id(service)
        assert documented["config_env"] == [f"CLINIC_{service.upper()}_CONFIG"]
        assert documented["consumes"] == sorted(m.event_type for m in consumed_by(service))


def test_every_environment_variable():
    documented = {s["env"]: s for s in DOC["environment"]["settings"]}
    assert documented.keys() == {env_name(name) for name in Settings.model_fields}
    assert documented["CLINIC_MAX_EVENT_BYTES"]["default"] == Settings.model_fields["max_event_bytes"].default == DOC["limits"]["max_event_bytes"]
    others = {e["env"] for e in DOC["environment"]["other"]}
    assert {"CLINIC_SECRETS_DIR", "CLINIC_KAFKA_PORT", "CLINIC_MONGO_PORT", "CLINIC_CONTROLLER_PORT", "CLINIC_CACHE_DIR", "CLINIC_STATE_DIR"} <= others
    assert DOC["environment"]["local_infrastructure"] == {"kafka_port": 9092, "controller_port": 9093, "mongo_port": 27017, "host": "127.0.0.1"}
    assert all(f"`{name}`" in MARKDOWN for name in (*documented, *others))


def test_the_reference_shows_the_defaults_and_from_env_shows_a_clinics_own_files(tmp_path: Path, monkeypatch):
    override = tmp_path / "aftercare.json"
    override.write_text(json.dumps({"check_in_hours": [12, 96]}), encoding="utf-8")
    monkeypatch.setenv("CLINIC_AFTERCARE_CONFIG", str(override))
    assert rules.render() == {rules.MARKDOWN: MARKDOWN, rules.JSON_FILE: (rules.DOCS / rules.JSON_FILE).read_text(encoding="utf-8")}
    assert rules.main(["--from-env", str(tmp_path / "out")]) == 0
    written = json.loads((tmp_path / "out" / rules.JSON_FILE).read_text(encoding="utf-8"))
    assert written["aftercare"]["check_in_hours"] == [12, 96] and written["generated_by"].endswith("--from-env")
    assert "Check-ins fall due 12, 96 hours" in (tmp_path / "out" / rules.MARKDOWN).read_text(encoding="utf-8")
