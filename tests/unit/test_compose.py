"""docker-compose.yml cannot run on machines without Docker; this keeps it honest against the code."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from clinic import access
from clinic.asyncapi import SERVICES
from infra import compose_secrets
from infra.local import KAFKA_VERSION
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICE_DEFS = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
KAFKA_START = (ROOT / "infra" / "compose" / "kafka-start.sh").read_text()
MONGO_INIT = (ROOT / "infra" / "compose" / "mongo-init.js").read_text()
MONGO_HEALTH = (ROOT / "infra" / "compose" / "mongo-health.js").read_text()
KAFKA_PROPERTIES = dict(line.split("=", 1) for line in KAFKA_START.splitlines() if re.match(r"^[a-z][a-z.0-9-]+=", line))


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
    for name in (*SERVICES, "kafka-setup"):
        env = SERVICE_DEFS[name]["environment"]
        assert env["CLINIC_TOPIC_PARTITIONS"] == KAFKA_PROPERTIES["num.partitions"]
        assert env["CLINIC_TOPIC_REPLICATION"] == "1", "a single broker can hold only one replica"


def test_services_start_after_the_topics_and_acls_exist_and_the_store_is_healthy_and_report_their_own_health():
    for name in SERVICES:
        definition = SERVICE_DEFS[name]
        assert definition["depends_on"] == {"kafka-setup": {"condition": "service_completed_successfully"}, "mongo": {"condition": "service_healthy"}}
        assert "/readyz" in " ".join(definition["healthcheck"]["test"])
        assert definition["environment"]["CLINIC_HTTP_PORT"] == str(definition["ports"][0].split(":")[-1])
    assert SERVICE_DEFS["kafka-setup"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    for name in ("kafka", "mongo"):
        assert "healthcheck" in SERVICE_DEFS[name]


def test_kafka_is_kraft_on_the_same_version_as_the_local_broker():
    kafka = SERVICE_DEFS["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}", "compose and infra/local.py KAFKA_VERSION must run the same Kafka"
    assert KAFKA_PROPERTIES["process.roles"] == "broker,controller"
    assert kafka["entrypoint"][-1] == "/opt/clinic/kafka-start.sh" and "./infra/compose/kafka-start.sh:/opt/clinic/kafka-start.sh:ro" in kafka["volumes"]


def test_every_image_is_pinned_to_an_explicit_version():
    images = [d["image"] for d in SERVICE_DEFS.values() if "image" in d]
    assert len(images) == 3
    for image in images:
        assert re.fullmatch(r"[a-z0-9./_-]+:v?\d+\.\d+\.\d+", image), f"{image} is not pinned to an explicit x.y.z version"
    assert re.search(r"^FROM python:3\.11\.\d+-slim$", DOCKERFILE, re.M), "the Dockerfile's base image is not pinned"


def test_mongodb_is_version_8_as_a_single_node_replica_set():
    mongo = SERVICE_DEFS["mongo"]
    assert mongo["image"].startswith("mongo:8.")
    assert "--replSet rs0" in " ".join(mongo["command"])
    urls = compose_secrets.recipes()
    passwords = {f"mongo_{s}_password": "pw" for s in SERVICES}
    assert all("replicaSet=rs0" in urls[f"mongo_{s}_url"](passwords) for s in SERVICES)


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


# -- production-like security (README, "Security") -------------------------------------------------

def published(definition: dict) -> list[str]:
    return [str(p) if isinstance(p, str) else f"{p.get('host_ip', '')}:{p['published']}:{p['target']}" for p in definition.get("ports", [])]


def secrets_of(definition: dict) -> dict[str, str]:
    """Secret source -> the file name it is mounted as under /run/secrets."""
    found = {}
    for entry in definition.get("secrets", []):
        source = entry if isinstance(entry, str) else entry["source"]
        found[source] = source if isinstance(entry, str) else entry.get("target", source)
    return found


def test_every_published_port_is_bound_to_loopback():
    ports = [(name, port) for name, definition in SERVICE_DEFS.items() for port in published(definition)]
    assert ports and all(port.startswith("127.0.0.1:") for _, port in ports), [p for p in ports if not p[1].startswith("127.0.0.1:")]


def test_kafka_accepts_only_sasl_scram_logins_and_enforces_acls():
    protocols = dict(pair.split(":") for pair in KAFKA_PROPERTIES["listener.security.protocol.map"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}, "no unauthenticated listener"
    assert KAFKA_PROPERTIES["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert KAFKA_PROPERTIES["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert KAFKA_PROPERTIES["super.users"] == "User:clinic-admin;User:controller"
    assert KAFKA_PROPERTIES["allow.everyone.if.no.acl.found"] == "false"
    assert KAFKA_PROPERTIES["auto.create.topics.enable"] == "false"


def test_kafka_has_a_scram_user_per_service_and_role_made_when_its_storage_is_formatted():
    users = re.search(r"for user in ([a-z ]+); do", KAFKA_START).group(1).split()
    assert users == [access.ADMIN, *access.ROLES]
    assert 'kafka-storage.sh format --config "$CONFIG" --cluster-id "$CLUSTER_ID" --ignore-formatted "${scram[@]}"' in KAFKA_START
    assert set(secrets_of(SERVICE_DEFS["kafka"])) == {f"kafka_{u}_password" for u in users} | {"kafka_controller_password"}
    assert "--command-config /tmp/clinic/admin.properties" in " ".join(SERVICE_DEFS["kafka"]["healthcheck"]["test"])


def test_kafka_keeps_its_data_in_a_volume():
    assert "kafka-data:/var/lib/kafka/data" in SERVICE_DEFS["kafka"]["volumes"] and "kafka-data" in COMPOSE["volumes"]
    assert KAFKA_PROPERTIES["log.dirs"] == "/var/lib/kafka/data"


def test_the_admin_creates_every_topic_and_acl_before_the_services_start():
    setup = SERVICE_DEFS["kafka-setup"]
    assert setup["command"] == ["clinic", "acl", "apply"] and setup["restart"] == "no"
    assert setup["environment"]["CLINIC_KAFKA_USERNAME"] == access.user(access.ADMIN)
    assert secrets_of(setup) == {"kafka_admin_password": "CLINIC_KAFKA_PASSWORD"}


def test_each_service_logs_in_to_kafka_and_mongodb_as_itself_with_secrets_from_files():
    for name in SERVICES:
        definition = SERVICE_DEFS[name]
        env = definition["environment"]
        assert env["CLINIC_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT" and env["CLINIC_KAFKA_USERNAME"] == access.user(name)
        assert not {"CLINIC_KAFKA_PASSWORD", "MONGODB_URL"} & env.keys(), "secrets never in the environment"
        assert secrets_of(definition) == {f"kafka_{name}_password": "CLINIC_KAFKA_PASSWORD", f"mongo_{name}_url": "MONGODB_URL"}
    assert {"CLINIC_KAFKA_PASSWORD", "MONGODB_URL"} <= settings_env_names(), "the files are read as these settings"


def test_mongodb_requires_a_root_login_and_a_keyfile_from_secrets():
    mongo = SERVICE_DEFS["mongo"]
    assert mongo["environment"] == {"MONGO_INITDB_ROOT_USERNAME": "root", "MONGO_INITDB_ROOT_PASSWORD_FILE": "/run/secrets/mongo_root_password"}
    assert "--keyFile /etc/mongo-keyfile" in " ".join(mongo["command"]) and "install -m 400 -o mongodb -g mongodb /run/secrets/mongo_keyfile" in " ".join(mongo["command"])
    assert {"mongo_root_password", "mongo_keyfile"} <= set(secrets_of(mongo))


def test_each_service_has_a_mongodb_user_with_readwrite_on_its_own_database_only():
    assert "./infra/compose/mongo-init.js:/docker-entrypoint-initdb.d/10-clinic-users.js:ro" in SERVICE_DEFS["mongo"]["volumes"]
    assert re.search(r'const services = \["consultation", "scheduling", "inventory", "aftercare"\];', MONGO_INIT)
    assert "createUser({ user: `clinic-${service}`, pwd: secret(`mongo_${service}_password`), roles: [{ role: \"readWrite\", db: name }] })" in MONGO_INIT
    assert {f"mongo_{s}_password" for s in SERVICES} <= set(secrets_of(SERVICE_DEFS["mongo"]))
    recipes, passwords = compose_secrets.recipes(), {f"mongo_{s}_password": "pw" for s in SERVICES}
    for service in SERVICES:
        assert recipes[f"mongo_{service}_url"](passwords) == (
            f"mongodb://clinic-{service}:pw@mongo:27017/clinic_{service}?replicaSet=rs0&authSource=clinic_{service}"
        )
        assert Settings().database(service) == f"clinic_{service}"


def test_the_mongodb_healthcheck_proves_a_writable_primary():
    assert SERVICE_DEFS["mongo"]["healthcheck"]["test"] == ["CMD", "mongosh", "--quiet", "--nodb", "--file", "/opt/clinic/mongo-health.js"]
    assert "replSetInitiate" in MONGO_HEALTH and "if (!hello.isWritablePrimary)" in MONGO_HEALTH and "quit(1)" in MONGO_HEALTH
    assert "/run/secrets/mongo_root_password" in MONGO_HEALTH


def test_the_kafka_web_ui_is_read_only_behind_a_login_as_the_viewer():
    ui = SERVICE_DEFS["kafka-ui"]
    env = ui["environment"]
    assert env["KAFKA_CLUSTERS_0_READONLY"] == "true" and env["AUTH_TYPE"] == "LOGIN_FORM"
    assert env["KAFKA_CLUSTERS_0_PROPERTIES_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT" and env["SPRING_CONFIG_IMPORT"] == "configtree:/run/secrets/"
    assert secrets_of(ui) == {"kafka_ui_password": "spring.security.user.password", "kafka_ui_jaas": "kafka.clusters.0.properties.sasl.jaas.config"}
    jaas = compose_secrets.recipes()["kafka_ui_jaas"]({"kafka_viewer_password": "pw"})
    assert f'username="{access.user("viewer")}" password="pw"' in jaas


def test_every_secret_is_made_by_the_generator_and_kept_out_of_git_and_the_image(tmp_path):
    declared = COMPOSE["secrets"]
    assert all(entry == {"file": f"./secrets/{name}"} for name, entry in declared.items())
    used = {source for definition in SERVICE_DEFS.values() for source in secrets_of(definition)}
    assert used == set(declared) and set(declared) <= set(compose_secrets.recipes())
    assert "secrets/" in (ROOT / ".gitignore").read_text().splitlines() and "secrets" in (ROOT / ".dockerignore").read_text().splitlines()
    written = compose_secrets.generate(tmp_path / "secrets")
    assert set(written) == set(compose_secrets.recipes()) and compose_secrets.generate(tmp_path / "secrets") == []
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    password = (tmp_path / "secrets" / "mongo_inventory_password").read_text().strip()
    assert (tmp_path / "secrets" / "mongo_inventory_url").read_text().startswith(f"mongodb://clinic-inventory:{password}@mongo:27017/")
