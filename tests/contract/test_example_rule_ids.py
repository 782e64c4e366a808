"""The examples in the schemas speak of rules that exist: every screening rule id in an event example (and
every example of a rule-id field) is a rule of the live rule set, with that rule's outcome and detail.

Integrators copy examples; an example that clears `review.alopecia_areata` while the service fires
`suitability.alopecia_areata` would teach them to send reviews the service dead-letters as unknown-rule."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from services.consultation.config import load_config
from shared.contracts import REGISTRY, examples
from shared.contracts.plan import RuleId
from shared.contracts.schemas import schema_of

RULES = load_config().rule_set.rules
RULE_ID_PATTERN = next(m.pattern for m in RuleId.__metadata__[0].metadata if hasattr(m, "pattern"))


def rule_ids_in(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(where, rule id) for every `rule_id` value and `rule_ids` item anywhere in an example."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else key
            if key == "rule_id" and isinstance(value, str):
                yield where, value
            elif key == "rule_ids" and isinstance(value, list):
                yield from ((f"{where}[{i}]", v) for i, v in enumerate(value))
            else:
                yield from rule_ids_in(value, where)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from rule_ids_in(item, f"{path}[{index}]")


def outcomes_in(node: Any) -> Iterator[dict[str, Any]]:
    """Every fired-rule object (rule_id, outcome, detail) in an example."""
    if isinstance(node, dict):
        if {"rule_id", "outcome", "detail"} <= node.keys():
            yield node
        for value in node.values():
            yield from outcomes_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from outcomes_in(item)


def rule_id_field_examples(schema: Any) -> Iterator[str]:
    """Examples given for any field that holds a rule id (recognised by its pattern)."""
    if isinstance(schema, dict):
        if schema.get("pattern") == RULE_ID_PATTERN:
            yield from schema.get("examples", [])
        for value in schema.values():
            yield from rule_id_field_examples(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from rule_id_field_examples(item)


def test_the_scan_finds_rule_ids_where_events_carry_them():
    found = {model.__name__ for model in REGISTRY for data in examples(model) if list(rule_ids_in(data))}
    assert {"ConsultationReviewed", "ConsultationApproved", "ConsultationDeferred", "ConsultationRejected"} <= found
    assert list(rule_ids_in({"a": [{"rule_ids": ["x.y"]}]})) == [("a[0].rule_ids[0]", "x.y")]


@pytest.mark.parametrize("model", list(REGISTRY), ids=lambda m: m.__name__)
def test_every_rule_id_in_an_example_is_a_live_rule(model):
    unknown = [(where, rule) for data in examples(model) for where, rule in rule_ids_in(data) if rule not in RULES]
    assert unknown == [], f"{model.__name__} examples name rules the rule set does not have"
    for fired in (fired for data in examples(model) for fired in outcomes_in(data)):
        spec = RULES[fired["rule_id"]]
        assert (fired["outcome"], fired["detail"]) == (spec.outcome, spec.detail), fired["rule_id"]


@pytest.mark.parametrize("model", list(REGISTRY), ids=lambda m: m.__name__)
def test_every_example_of_a_rule_id_field_is_a_live_rule(model):
    assert re.fullmatch(RULE_ID_PATTERN, "labs.ferritin_missing")
    assert [rule for rule in rule_id_field_examples(schema_of(model)) if rule not in RULES] == []
