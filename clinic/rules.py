"""The rules reference: what the services decide with, written from their live configuration.

    python -m clinic.rules [--check]            (make rules) docs/rules.md and docs/rules.json
    python -m clinic.rules --from-env DIR       the same for this environment's configuration files

Everything comes from the services' public configuration loaders (``services.<name>.config.load_config()``),
``shared.settings.Settings``, the dead-letter table (``shared.contracts.dead_letters``) and the contract
limits; the committed files describe the defaults (``CLINIC_<NAME>_CONFIG`` is ignored unless
``--from-env``). tests/contract/test_rules_reference.py fails when the committed files are stale.

Only what the configuration cannot say is written here: in words, what fires each screening rule.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import importlib
import inspect
import json
import os
import sys
import types
from collections.abc import Iterator
from datetime import date, time
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr

from shared.contracts import base as limits
from shared.contracts.dead_letters import REASONS
from shared.settings import Settings, env_name

SERVICES = ("consultation", "scheduling", "inventory", "aftercare")
DOCS = Path(__file__).resolve().parent.parent / "docs"
MARKDOWN, JSON_FILE = "rules.md", "rules.json"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

OUTCOMES = {
    "reject": "Absolute: the consultation is rejected (ConsultationRejected); no review clears it.",
    "defer": "Approval waits until it is resolved (ConsultationDeferred lists what is missing); some may be cleared by a clinician's review.",
    "review": "Approval waits for a clinician's review (ConsultationReviewed with decision `clear`).",
    "exclude_ingredient": "The ingredient is left out of the cocktail (a plan that cannot do without it is rejected instead).",
    "note": "Changes nothing; published with the decision so it can be explained.",
}
CLEARABLE = ("defer", "review")
"""Outcomes a clinician's review can clear (when the rule is clearable): services/consultation/domain.py."""


def _triggers(config: Any) -> dict[str, str]:
    """What fires each rule, in words: the code's part of a rule (services/consultation/rules.py, cocktail.py)."""
    precautions = config.precautions
    washout = precautions.aspirin_nsaid_washout_days
    allergens = ", ".join(precautions.anaesthetic_allergens)
    fires = {
        "suitability.scarring_alopecia": "`hair_loss_type` is `scarring_alopecia`.",
        "suitability.alopecia_areata": "`hair_loss_type` is `alopecia_areata`.",
        "suitability.other_hair_loss": "`hair_loss_type` is `other`.",
        "contra.pregnancy": "`pregnant` is true.",
        "contra.breastfeeding": "`breastfeeding` is true.",
        "contra.essential_ingredient_allergy": "A known allergy or a positive allergy test excludes an ingredient the plan cannot do "
        "without (the formulary's *essential for*).",
        "contra.no_ingredients_left": "Every ingredient of the type and severity band is excluded (and no essential-ingredient rule fired).",
        "review.essential_ingredient_sensitivity": "A sensitivity recorded after an adverse event (AdverseEventEscalated's suspect "
        "ingredients) concerns an essential ingredient; cleared, the ingredient stays in the plan.",
        "allergy.known_allergen": "`known_allergies` names a formulary ingredient of the plan.",
        "allergy.positive_test": "An AllergyTestRecorded result for an ingredient of the plan is positive.",
        "allergy.recorded_sensitivity": "A sensitivity was recorded for an ingredient of the plan after an adverse event.",
        "allergy.test_required": "An ingredient of the plan has no negative allergy test, and either the patient has a history of "
        "allergies" + (" (then every ingredient needs one)" if config.rule_set.test_all_ingredients_on_allergy_history else "")
        + " or never received that ingredient before (`previously_received_ingredients`).",
        "scalp.active_infection": "`scalp_condition` is `active_infection`.",
        "scalp.open_wound": "`scalp_condition` is `open_wound`.",
        "meds.blood_thinner_washout": f"Aspirin or an NSAID is still taken (no `stopped_on`): the first session waits {washout} days "
        "from today (the washout).",
        "meds.washout_in_progress": f"Aspirin or an NSAID was stopped less than {washout} days ago: the first session waits for "
        "the end of the washout.",
        "review.anticoagulant": f"A prescribed anticoagulant or antiplatelet is taken, or was stopped within {washout} days.",
        "review.bleeding_disorder": "`medical_history.bleeding_disorder` is true.",
        "review.immunosuppressed": "`medical_history.immunosuppressed` is true.",
        "consent.not_given": "`consent_given` is false.",
        "consent.expectations_not_discussed": "`expectations_discussed` is false.",
        "review.clinician_rejected": "A ConsultationReviewed with decision `reject` was recorded.",
        "precaution.numbing_cream_allergy": f"`known_allergies` names a local anaesthetic ({allergens}): no numbing cream before sessions.",
    }
    max_age = config.rule_set.lab_max_age_days
    for test, requirement in config.rule_set.labs.items():
        ranges = "; ".join(f"{_num(r.low)}-{_num(r.high)} {unit}" for unit, r in requirement.ranges.items())
        fires[f"labs.{test}_missing"] = f"No `{test}` result measured within the last {max_age} days (in the event or on the patient's file)."
        fires[f"labs.{test}_out_of_range"] = f"The latest `{test}` result is outside {ranges}, or in another unit."
    return fires


# Environment variables read outside Settings and the service configs, with what they mean.
OTHER_ENVIRONMENT = {
    "CLINIC_SECRETS_DIR": "Folder of secret files named like the settings' variables (default /run/secrets when it exists).",
    "CLINIC_CACHE_DIR": "`clinic infra up`: where Kafka's jars and the FerretDB build are cached (default ~/.cache/clinic-backbone).",
    "CLINIC_STATE_DIR": "`clinic infra up`: data, logs, pid files and endpoints.env (default .local/ in the checkout).",
    "CLINIC_KAFKA_PORT": "`clinic infra up`: Kafka's client port on 127.0.0.1 (`--kafka-port`).",
    "CLINIC_CONTROLLER_PORT": "`clinic infra up`: Kafka's KRaft controller port (default: the Kafka port + 1).",
    "CLINIC_MONGO_PORT": "`clinic infra up`: FerretDB's port on 127.0.0.1 (`--mongo-port`).",
    "CGO_ENABLED": "`clinic infra up`: Go's cgo switch for the FerretDB build.",
}


# -- reading ---------------------------------------------------------------------------------------


def config_module(service: str) -> types.ModuleType:
    return importlib.import_module(f"services.{service}.config")


def environ_reads(module: types.ModuleType) -> list[tuple[str, Any]]:
    """(name, literal default or None) of every ``os.environ.get``/``os.getenv``/``os.environ[...]`` in a module."""
    found: dict[str, Any] = {}
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        arguments: list[ast.expr] = []
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv"):
            arguments = node.args
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            arguments = [node.slice]
        if not arguments:
            continue
        name = _literal(arguments[0], module)
        if isinstance(name, str):
            default = _literal(arguments[1], module) if len(arguments) > 1 else None
            found.setdefault(name, default)
    return sorted(found.items())


def _literal(node: ast.expr, module: types.ModuleType) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and isinstance(getattr(module, node.id, None), str | int | float):
        return getattr(module, node.id)
    return None


def service_config_env(service: str) -> list[str]:
    """The variables the service's configuration loader reads (its module's environment reads)."""
    loader = config_module(service).load_config
    return [name for name, _ in environ_reads(inspect.getmodule(loader))]  # type: ignore[arg-type]


@contextlib.contextmanager
def _defaults_only() -> Iterator[None]:
    """Hide the configuration files' variables so the loaders return the defaults."""
    names = {name for service in SERVICES for name in service_config_env(service)}
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def load_configs(from_env: bool = False) -> dict[str, BaseModel]:
    with contextlib.nullcontext() if from_env else _defaults_only():
        return {service: config_module(service).load_config() for service in SERVICES}


def consumed(service: str) -> list[str]:
    from clinic.asyncapi import consumed_by

    return sorted(model.event_type for model in consumed_by(service))


# -- the reference as data ---------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """JSON-ready and deterministic: sets sorted, enums by value, times and dates in ISO 8601."""
    if isinstance(value, BaseModel):
        return {name: plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    return value


def reference(from_env: bool = False) -> dict[str, Any]:
    configs = load_configs(from_env)
    consultation, scheduling, inventory, aftercare = (configs[s] for s in SERVICES)
    rule_set = consultation.rule_set  # type: ignore[attr-defined]
    fires = _triggers(consultation)
    unexplained = sorted(set(rule_set.rules) - set(fires))
    if unexplained:
        raise LookupError(f"say what fires {', '.join(unexplained)} in clinic/rules.py (_triggers)")
    return {
        "generated_by": "python -m clinic.rules" + (" --from-env" if from_env else ""),
        "limits": {
            "max_event_bytes": Settings.model_fields["max_event_bytes"].default,
            "max_event_bytes_env": env_name("max_event_bytes"),
            "unknown_fields": "refused: dead-lettered as schema-invalid (additionalProperties: false in every schema)",
            "max_items": {"FEW": limits.FEW, "INGREDIENTS": limits.INGREDIENTS, "LINES": limits.LINES, "SESSIONS": limits.SESSIONS},
        },
        "screening": {
            "rule_set_version": rule_set.version,
            "outcomes": OUTCOMES,
            "rules": [
                {"id": rule, "fires_when": fires[rule], **plain(spec), "review_clears_it": spec.clearable and spec.outcome in CLEARABLE}
                for rule, spec in sorted(rule_set.rules.items())
            ],
            "labs": plain(rule_set.labs),
            "lab_max_age_days": rule_set.lab_max_age_days,
            "test_all_ingredients_on_allergy_history": rule_set.test_all_ingredients_on_allergy_history,
        },
        "formulary": plain(consultation.formulary),  # type: ignore[attr-defined]
        "precautions": plain(consultation.precautions),  # type: ignore[attr-defined]
        "consultation_timezone": consultation.timezone,  # type: ignore[attr-defined]
        "scheduling": plain(scheduling),
        "aftercare": plain(aftercare),
        "inventory": plain(inventory),
        "dead_letter_reasons": [{"code": r.code, "meaning": r.meaning, "raised_by": list(r.raised_by)} for r in REASONS.values()],
        "services": {
            service: {
                "consumer_group": Settings.model_construct(topic_prefix="").group_id(service),
                "config_env": service_config_env(service),
                "config_sections": list(type(configs[service]).model_fields),
                "consumes": consumed(service),
            }
            for service in SERVICES
        },
        "environment": {
            "settings": [_setting(name) for name in Settings.model_fields],
            "other": [
                {"env": name, "default": default, "description": _other_env(name)}
                for module in ("shared.settings", "infra.local")
                for name, default in environ_reads(importlib.import_module(module))
            ],
            "local_infrastructure": {f.name: f.default for f in dataclasses.fields(_layout()) if f.default is not dataclasses.MISSING},
        },
    }


def _layout() -> Any:
    return importlib.import_module("infra.local").Layout


def _other_env(name: str) -> str:
    try:
        return OTHER_ENVIRONMENT[name]
    except KeyError:
        raise LookupError(f"say what {name} means in clinic/rules.py (OTHER_ENVIRONMENT)") from None


def _setting(name: str) -> dict[str, Any]:
    field = Settings.model_fields[name]
    choices = [c for c in getattr(field.validation_alias, "choices", []) if isinstance(c, str) and c != name]
    default = None if field.default_factory is not None else plain(field.default)
    return {
        "field": name,
        "env": env_name(name),
        "aliases": [c for c in choices if c != env_name(name)],
        "type": _type(field.annotation),
        "default": default,
        "default_note": "computed: <host name>-<process id>" if field.default_factory is not None else None,
        "description": field.description or "",
    }


def _type(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " | ".join(str(a) for a in get_args(annotation))
    if isinstance(annotation, types.UnionType) or get_origin(annotation) is not None:
        return " | ".join(_type(a) for a in get_args(annotation))
    return "null" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


# -- Markdown ------------------------------------------------------------------------------------------


def _num(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value) or "—"
    return _num(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _settings_table(model: type[BaseModel], values: dict[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    rows = [
        [f"`{name}`", _code(values[name]), field.description or ""]
        for name, field in model.model_fields.items()
        if name not in skip and not isinstance(values[name], dict) and not (values[name] and isinstance(values[name], list) and isinstance(values[name][0], dict))
    ]
    return _table(["setting", "value", "meaning"], rows)


def _code(value: Any) -> str:
    if value == "":
        return '"" (empty)'
    return "—" if value is None or value == [] else _cell(value)


def _sub(config: BaseModel, name: str) -> type[BaseModel]:
    return type(getattr(config, name))


def markdown(data: dict[str, Any], configs: dict[str, BaseModel]) -> str:
    screening, formulary = data["screening"], data["formulary"]
    sched, after, inv = data["scheduling"], data["aftercare"], data["inventory"]
    out = [
        "# Rules reference",
        "",
        f"<!-- Generated by `{data['generated_by']}` (make rules) from the services' configuration; do not edit. -->",
        "",
        "What the services decide with: the screening rules, the formulary, the required labs, the calendar, aftercare, "
        "the escalation and quarantine thresholds, the dead-letter reasons and every environment variable. Written from "
        "the live configuration (the defaults; a clinic replaces any part with the JSON files named below) and checked "
        "by `tests/contract/test_rules_reference.py`. The same in machine-readable form: [`rules.json`](rules.json).",
        "",
        "## Contents",
        "",
        *[f"- [{title}](#{title.lower().replace(' ', '-').replace(',', '')})" for title in (
            "Limits", "Screening rules", "Required labs", "Formulary", "Courses", "Before a session", "Calendar",
            "Aftercare", "Escalation and quarantine", "Inventory", "Dead-letter reasons", "Services", "Environment variables")],
        "",
        "## Limits",
        "",
        f"- A record (value plus headers) larger than **{data['limits']['max_event_bytes']} bytes** "
        f"({data['limits']['max_event_bytes'] // 1024} KiB, `{data['limits']['max_event_bytes_env']}`) is dead-lettered as "
        "`oversized` before it is parsed.",
        "- A field the contract does not have is refused: the record is dead-lettered as `schema-invalid` and `dlq_error` names "
        "the field (every schema says `additionalProperties: false`). Add a field only after every consumer knows it.",
        f"- Lists hold at most {limits.FEW} (reasons, goals, photo views), {limits.INGREDIENTS} (ingredients), {limits.LINES} "
        f"(medications, lab results, rules fired, lots) or {limits.SESSIONS} (sessions of a lot) items; strings are bounded by "
        "pattern, enum or length (see `schemas/`).",
        "",
        "## Screening rules",
        "",
        f"Rule set version **{screening['rule_set_version']}** (on every ConsultationApproved, Deferred and Rejected as "
        "`rule_set_version`). A ConsultationReviewed with decision `clear` clears the rules it names by id, where the table says so "
        "(an unknown id is dead-lettered as `unknown-rule`).",
        "",
        *_table(["outcome", "meaning"], [[f"`{k}`", v] for k, v in screening["outcomes"].items()]),
        *_table(
            ["rule", "fires when", "outcome", "a review clears it", "referral", "published detail"],
            [[f"`{r['id']}`", r["fires_when"], f"`{r['outcome']}`", r["review_clears_it"], r["referral"], r["detail"]] for r in screening["rules"]],
        ),
        "## Required labs",
        "",
        f"Every consultation needs a current result of each test: measured within **{screening['lab_max_age_days']} days** "
        "(older results count as missing), inside the range for the unit it is reported in (inclusive).",
        "",
        *_table(
            ["test", "unit", "low", "high"],
            [[f"`{test}`", unit, r["low"], r["high"]] for test, req in screening["labs"].items() for unit, r in req["ranges"].items()],
        ),
        f"Allergy tests: {'with a history of allergies every ingredient of the plan needs a negative test; otherwise ' if screening['test_all_ingredients_on_allergy_history'] else ''}"
        "each ingredient the patient never received before.",
        "",
        "## Formulary",
        "",
        "Per-session amount of each ingredient by hair-loss type and severity band (— : not used for that type). "
        "*Essential for*: a plan of that type cannot do without it (an allergy to it rejects the consultation).",
        "",
    ]
    kinds = list(formulary["courses"])
    out += _table(
        ["ingredient", "unit", "role", "essential for", *[f"`{k}`" for k in kinds]],
        [
            [f"`{i['code']}`", i["unit"], i["role"], i["essential_for"],
             *[" · ".join(f"{band} {_num(v)}" for band, v in i["doses"][k].items()) if k in i["doses"] else None for k in kinds]]
            for i in formulary["ingredients"]
        ],
    )
    out += ["Severity bands of each scale:", ""]
    out += _table(
        ["scale", "band", "from", "to"],
        [[scale, b["band"], b["low"], b["high"]] for scale, bands in formulary["bands"].items() for b in bands],
    )
    out += [f"Types without a severity scale are in band `{formulary['unscaled_band']}`.", "", "## Courses", ""]
    out += _table(
        ["type", "band", "sessions", "every (days)", "depth (mm)", "technique", "pattern", "maintenance every (weeks)"],
        [[f"`{kind}`", band, c["sessions"], c["interval_days"], c["depth_mm"], c["technique"], c["pattern"], c["maintenance_interval_weeks"]]
         for kind, bands in formulary["courses"].items() for band, c in bands.items()],
    )
    consultation = configs["consultation"]
    out += ["## Before a session", ""]
    out += _settings_table(_sub(consultation, "precautions"), data["precautions"])
    out += [f"The consultation service's day boundary is in time zone `{data['consultation_timezone']}`.", "", "## Calendar", ""]
    calendar = sched["calendar"]
    hours: dict[int, list[str]] = {}
    for interval in calendar["opening_hours"]:
        hours.setdefault(interval["weekday"], []).append(f"{interval['opens'][:5]}-{interval['closes'][:5]}")
    out += _table(["day", "open"], [[WEEKDAYS[d], ", ".join(hours[d]) if d in hours else "closed"] for d in range(7)])
    scheduling = configs["scheduling"]
    out += _settings_table(_sub(scheduling, "calendar"), calendar, skip=("opening_hours",))
    for section, title in (("series", "Booking a series"), ("reminders", "Reminders"), ("follow_ups", "Follow-ups"), ("shortage", "Shortages")):
        out += [f"{title}:", ""]
        out += _settings_table(_sub(scheduling, section), sched[section])
    out += ["## Aftercare", "", "Instructions issued after every session, each holding for a window after it:", ""]
    out += _table(["advice", "hours"], [[f"`{i['advice']}`", i["hours"]] for i in after["instructions"]])
    out += [f"Check-ins fall due {', '.join(str(h) for h in after['check_in_hours'])} hours after each session.", ""]
    out += ["## Escalation and quarantine", "", "A side effect (reported or from a check-in answer) is escalated "
            "(AdverseEventEscalated: the course is paused, a review booked, the lots flagged) when:", ""]
    out += _settings_table(_sub(configs["aftercare"], "escalation"), after["escalation"])
    out += ["A lot is quarantined (LotQuarantined) after this many escalated adverse events name it:", ""]
    out += _table(["ingredient", "quarantine after escalations"], [[f"`{i['code']}`", i["quarantine_after_escalations"]] for i in inv["ingredients"]])
    out += ["## Inventory", ""]
    out += _table(
        ["ingredient", "unit", "reorder point", "expiry warning (days)", "reorder lead time (days)"],
        [[f"`{i['code']}`", i["unit"], i["reorder_point"], i["expiry_warning_days"], i["reorder_lead_days"]] for i in inv["ingredients"]],
    )
    out += [f"The stock forecast (StockForecast, StockShortageForecast) is published every week for {inv['forecast_weeks']} weeks ahead, "
            "and on request (StockForecastRequested); the reorder-by date is the first day stock falls short minus the reorder lead time.", ""]
    out += ["## Dead-letter reasons", "", "A record a service cannot accept goes to `<topic>.dlq` with the reason in the `dlq_reason` "
            "header (and what failed in `dlq_error`). `runtime`: any service. From `shared/contracts/dead_letters.py`.", ""]
    out += _table(["dlq_reason", "meaning", "raised by"], [[f"`{r['code']}`", r["meaning"], r["raised_by"]] for r in data["dead_letter_reasons"]])
    out += ["## Services", "", "Consumer groups and topics carry the deployment's `CLINIC_TOPIC_PREFIX` in front.", ""]
    out += _table(
        ["service", "consumer group", "configuration file (path of a JSON file)", "sections", "consumes"],
        [[service, f"`{s['consumer_group']}`", [f"`{e}`" for e in s["config_env"]], [f"`{c}`" for c in s["config_sections"]],
          [f"`{t}`" for t in s["consumes"]]] for service, s in data["services"].items()],
    )
    out += ["A configuration file is JSON; each top-level section it names replaces that section of the defaults, "
            "and it is validated at start (a service with an invalid file does not start).", "", "## Environment variables", "",
            "Every service (shared/settings.py; a file named like the variable in `CLINIC_SECRETS_DIR` works too):", ""]
    out += _table(
        ["variable", "also", "type", "default", "meaning"],
        [[f"`{s['env']}`", [f"`{a}`" for a in s["aliases"]], s["type"], s["default_note"] or _code(s["default"]), s["description"]]
         for s in data["environment"]["settings"]],
    )
    out += ["Elsewhere (the services' configuration files are above):", ""]
    out += _table(["variable", "default", "meaning"], [[f"`{e['env']}`", _code(e["default"]), e["description"]] for e in data["environment"]["other"]])
    out += ["Local infrastructure (`clinic infra up`, infra/local.py) listens on:", ""]
    out += _table(["setting", "default", "variable"], [
        [f"`{k}`", v, f"`CLINIC_{k.upper()}`" if any(e["env"] == f"CLINIC_{k.upper()}" for e in data["environment"]["other"]) else None]
        for k, v in data["environment"]["local_infrastructure"].items()
    ])
    return "\n".join(out).rstrip() + "\n"


def render(from_env: bool = False) -> dict[str, str]:
    """File name -> content."""
    data = reference(from_env)
    return {MARKDOWN: markdown(data, load_configs(from_env)), JSON_FILE: json.dumps(data, indent=2, ensure_ascii=False) + "\n"}


def stale(directory: Path = DOCS) -> list[str]:
    return [name for name, content in render().items() if not (directory / name).is_file() or (directory / name).read_text(encoding="utf-8") != content]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinic.rules", description="Write the rules reference (docs/rules.md, docs/rules.json).")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is stale")
    mode.add_argument("--from-env", type=Path, metavar="DIR", help="write this environment's reference (CLINIC_<NAME>_CONFIG files) into DIR")
    args = parser.parse_args(argv)
    if args.check:
        if problems := stale():
            print(f"stale: {', '.join(problems)}; run `make rules`", file=sys.stderr)
            return 1
        return 0
    directory: Path = args.from_env or DOCS
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in render(from_env=args.from_env is not None).items():
        (directory / name).write_text(content, encoding="utf-8")
        print(f"wrote {directory / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
