"""docker-compose.yml cannot run on machines without Docker; this keeps it honest against the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from infra.local import KAFKA_VERSION
from shared.asyncapi import SERVICES
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICE_DEFS = COMPOSE["services"]


def settings_env_names() -> set[str]:
    names = set()
    for field, info in Settings.model_fields.items():
        choices = getattr(info.validation_alias, "choices", None)
        names.update(str(c) for c in choices) if choices else names.add(f"CLINIC_{field}".upper())
    return names


def test_every_service_runs_from_the_one_image_with_its_own_module():
    for name in SERVICES:
        definition = SERVICE_DEFS[name]
        assert definition["build"] == "."
        assert definition["command"] == ["python", "-m", f"services.{name}"]
        assert importlib.util.find_spec(f"services.{name}.__main__") is not None, f"services.{name} has no __main__"


def test_every_environment_variable_given_to_a_service_is_a_setting():
    known = settings_env_names()
    for name in SERVICES:
        unknown = set(SERVICE_DEFS[name]["environment"]) - known
        assert not unknown, f"{name} sets {unknown}, which Settings does not read"


def test_topic_settings_match_the_brokers_defaults():
    env = SERVICE_DEFS["consultation"]["environment"]
    assert env["CLINIC_TOPIC_PARTITIONS"] == SERVICE_DEFS["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"]
    assert env["CLINIC_TOPIC_REPLICATION"] == "1", "a single broker can hold only one replica"


def test_services_start_after_healthy_infrastructure_and_report_their_own_health():
    for name in SERVICES:
        definition = SERVICE_DEFS[name]
        assert definition["depends_on"] == {"kafka": {"condition": "service_healthy"}, "mongo": {"condition": "service_healthy"}}
        assert "/readyz" in " ".join(definition["healthcheck"]["test"])
        assert definition["environment"]["CLINIC_HTTP_PORT"] == str(definition["ports"][0].split(":")[1])
    for name in ("kafka", "mongo"):
        assert "healthcheck" in SERVICE_DEFS[name]


def test_kafka_is_kraft_on_the_same_major_version_as_the_local_broker():
    kafka = SERVICE_DEFS["kafka"]
    assert kafka["image"].split(":")[1].split(".")[0] == KAFKA_VERSION.split(".")[0]
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_mongodb_is_version_8_as_a_single_node_replica_set():
    mongo = SERVICE_DEFS["mongo"]
    assert mongo["image"] == "mongo:8"
    assert "--replSet" in mongo["command"]
    assert "replicaSet=rs0" in SERVICE_DEFS["consultation"]["environment"]["MONGODB_URL"]


def test_operators_get_a_kafka_web_ui_on_the_internal_listener():
    ui = SERVICE_DEFS["kafka-ui"]
    assert ui["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == SERVICE_DEFS["consultation"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]


def test_the_image_contains_every_package_the_services_import():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("shared", "services", "pyproject.toml"):
        assert f"COPY {package}" in dockerfile
