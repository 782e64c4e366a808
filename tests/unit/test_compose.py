"""docker-compose.yml cannot run on machines without Docker; this keeps it honest against the code."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.local import KAFKA_VERSION
from shared.asyncapi import SERVICES
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICE_DEFS = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


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


def test_kafka_is_kraft_on_the_same_version_as_the_local_broker():
    kafka = SERVICE_DEFS["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}", "compose and infra/local.py KAFKA_VERSION must run the same Kafka"
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_every_image_is_pinned_to_an_explicit_version():
    images = [d["image"] for d in SERVICE_DEFS.values() if "image" in d]
    assert len(images) == 3
    for image in images:
        assert re.fullmatch(r"[a-z0-9./_-]+:v?\d+\.\d+\.\d+", image), f"{image} is not pinned to an explicit x.y.z version"
    assert re.search(r"^FROM python:3\.11\.\d+-slim$", DOCKERFILE, re.M), "the Dockerfile's base image is not pinned"


def test_mongodb_is_version_8_as_a_single_node_replica_set():
    mongo = SERVICE_DEFS["mongo"]
    assert mongo["image"].startswith("mongo:8.")
    assert "--replSet" in mongo["command"]
    assert "replicaSet=rs0" in SERVICE_DEFS["consultation"]["environment"]["MONGODB_URL"]


def test_operators_get_a_kafka_web_ui_on_the_internal_listener():
    ui = SERVICE_DEFS["kafka-ui"]
    assert ui["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == SERVICE_DEFS["consultation"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]


def test_the_image_contains_every_package_the_services_import():
    for package in ("shared", "services", "pyproject.toml"):
        assert f"COPY {package}" in DOCKERFILE


def test_the_image_installs_the_hash_checked_lock_before_it_copies_the_source():
    install = DOCKERFILE.index("pip install --require-hashes --no-deps -r requirements/runtime.txt")
    assert DOCKERFILE.index("COPY requirements/runtime.txt") < install < DOCKERFILE.index("COPY shared")
    assert "pip install --no-deps --no-build-isolation ." in DOCKERFILE


def locked(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / name).read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", text, re.M))
    requirements = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert pins and len(requirements) == len(pins), "every requirement in the lock is pinned with =="
    assert text.count("--hash=sha256:") >= len(pins)
    return {canonicalize_name(k): v for k, v in pins.items()}


def test_the_locks_pin_every_dependency_with_hashes_and_agree_with_each_other():
    dev, runtime = locked("dev.txt"), locked("runtime.txt")
    assert {k: dev.get(k) for k in runtime} == runtime, "requirements/runtime.txt differs from dev.txt; run `make lock`"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec, lock in [*((s, runtime) for s in project["dependencies"]), *((s, dev) for s in project["optional-dependencies"]["dev"])]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{name} is not in the lock; run `make lock`"
        assert requirement.specifier.contains(lock[name], prereleases=True), f"locked {name}=={lock[name]} does not satisfy {spec}; run `make lock`"
    for tool in ("pip", "setuptools"):
        assert tool in runtime, f"{tool} (installs and builds the project) is not locked"
