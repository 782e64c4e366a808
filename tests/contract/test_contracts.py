"""Every producer's examples parse in every consumer's model, and the exported schemas say the same."""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from shared.contracts import REGISTRY, EventData, aftercare, consultation, examples, inventory, scheduling
from shared.contracts.schemas import DEFAULT_DIR, export

pytestmark = pytest.mark.contract

MODELS = list(REGISTRY)
EXAMPLES = [pytest.param(m, e, id=f"{m.__name__}-{i}") for m in MODELS for i, e in enumerate(examples(m))]
PRODUCERS = {"external", "consultation", "scheduling", "inventory", "aftercare"}
IDENTIFYING = re.compile(
    r"(^|_)(names?|surname|email|phone|mobile|fax|address|street|postcode|zip|city|contact|notes?|comments?|"
    r"text|narrative|dob|birth_?date|date_of_birth|ssn|nhs|insurance|passport)(_|$)"
)


def _nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _nested_models(arg)


def _fields(model: type[BaseModel], path: str = "") -> Iterator[tuple[str, Any]]:
    """Every field of the model and of the models nested in it, with a dotted path."""
    for name, info in model.model_fields.items():
        yield f"{path}{name}", info
        for nested in _nested_models(info.annotation):
            yield from _fields(nested, f"{path}{name}.")


def _string_nodes(node: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "string":
            yield path, node
        for key, value in node.items():
            if key not in ("examples", "default"):
                yield from _string_nodes(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _string_nodes(value, f"{path}[{i}]")


def _schema_file(model: type[EventData]) -> dict[str, Any]:
    return json.loads((DEFAULT_DIR / f"{model.event_type}.json").read_text(encoding="utf-8"))


def test_every_module_registers_every_event_it_defines() -> None:
    for module in (consultation, scheduling, inventory, aftercare):
        defined = {
            obj for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, EventData) and obj.__module__ == module.__name__
        }
        assert defined == set(module.EVENTS), module.__name__


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_event_has_an_example(model: type[EventData]) -> None:
    assert examples(model), f"{model.__name__} has no example"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_event_names_its_type_producer_and_purpose(model: type[EventData]) -> None:
    assert re.fullmatch(r"clinic\.[a-z_]+\.[a-z_]+\.v[0-9]+", model.event_type), model.event_type
    assert model.producer in PRODUCERS
    own_doc = vars(model).get("__doc__") or ""
    assert len(own_doc.split()) >= 15, f"{model.__name__} needs a docstring: when it is published, what consumers do"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_key_and_subject_name_required_fields(model: type[EventData]) -> None:
    fields = model.model_fields
    assert model.key_field in fields and fields[model.key_field].is_required(), model.key_field
    if model.subject_field is not None:
        assert model.subject_field in fields and fields[model.subject_field].is_required(), model.subject_field


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_is_described(model: type[EventData]) -> None:
    undescribed = [path for path, info in _fields(model) if not (info.description or "").strip()]
    assert not undescribed, f"{model.__name__}: no description on {undescribed}"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_no_field_could_carry_names_contact_details_or_notes(model: type[EventData]) -> None:
    suspicious = [path for path, _ in _fields(model) if IDENTIFYING.search(path.rsplit(".", 1)[-1])]
    assert not suspicious, f"{model.__name__}: identifying field names {suspicious}"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_no_string_is_unbounded_free_text(model: type[EventData]) -> None:
    schema = model.model_json_schema()
    loose = [
        path for path, node in _string_nodes(schema)
        if not ({"pattern", "enum", "const", "format"} & node.keys()) and node.get("maxLength", 10**6) > 200
    ]
    assert not loose, f"{model.__name__}: strings without a pattern, vocabulary or short bound at {loose}"


@pytest.mark.parametrize(("model", "example"), EXAMPLES)
def test_examples_are_valid_events(model: type[EventData], example: dict[str, Any]) -> None:
    event = model.model_validate(example)
    assert event.key()


@pytest.mark.parametrize(("model", "example"), EXAMPLES)
def test_examples_are_valid_against_the_exported_schema(model: type[EventData], example: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(_schema_file(model), format_checker=jsonschema.FormatChecker())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(example)]
    assert not errors, errors


@pytest.mark.parametrize(("model", "example"), EXAMPLES)
def test_consumers_read_back_what_producers_write(model: type[EventData], example: dict[str, Any]) -> None:
    event = model.model_validate(example)
    assert model.model_validate_json(event.model_dump_json()) == event


def test_exported_schemas_are_current(tmp_path: Path) -> None:
    export(tmp_path)
    fresh = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text(encoding="utf-8") for p in DEFAULT_DIR.glob("clinic.*.json")}
    assert sorted(fresh) == sorted(committed), "run: python -m shared.contracts.schemas"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale schemas {stale}; run: python -m shared.contracts.schemas"


def test_exported_schemas_are_valid_json_schema() -> None:
    for model in MODELS:
        schema = _schema_file(model)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert (schema["title"], schema["x-topic"], schema["x-producer"], schema["x-key"]) == (
            model.__name__, model.event_type, model.producer, model.key_field
        )


def _unbounded(node: Any, path: str) -> Iterator[str]:
    """Every array without maxItems and every string without a length bound (maxLength, an enum or
    const, a date/time format, or a pattern that cannot repeat without limit), anywhere in a schema."""
    if isinstance(node, dict):
        if node.get("type") == "array" and "maxItems" not in node:
            yield f"{path}: array without maxItems"
        if node.get("type") == "string" and not ({"maxLength", "enum", "const", "format"} & node.keys()):
            pattern = node.get("pattern", "")
            if not pattern or re.search(r"[*+]|\{\d+,\}", pattern):
                yield f"{path}: string without a length bound"
        for key, value in node.items():
            yield from _unbounded(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _unbounded(value, f"{path}[{index}]")


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_list_and_string_of_a_contract_is_bounded(model):
    assert list(_unbounded(model.model_json_schema(), model.__name__)) == []


def test_an_oversized_list_is_refused_by_the_model_and_by_the_exported_schema():
    recorded = REGISTRY.by_name("ConsultationRecorded")
    oversized = {**examples(recorded)[0], "known_allergies": [f"allergen_{i}" for i in range(101)]}
    with pytest.raises(ValueError, match="at most 100 items"):
        recorded.model_validate(oversized)
    schema = json.loads((DEFAULT_DIR / f"{recorded.event_type}.json").read_text())
    assert not jsonschema.Draft202012Validator(schema).is_valid(oversized)
