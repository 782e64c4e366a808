"""The local secure broker's configuration: SASL everywhere, the authorizer, a SCRAM user per principal."""

from __future__ import annotations

from pathlib import Path

from clinic import access
from infra import local, security
from shared.settings import Settings


def layout(tmp_path: Path) -> local.Layout:
    return local.Layout(cache=tmp_path / "cache", state=tmp_path / "state", kafka_port=19192, controller_port=19193)


def test_every_principal_gets_a_random_password_kept_private_and_reused(tmp_path):
    path = tmp_path / "state" / "kafka" / "credentials.json"
    first = security.Credentials.load_or_create(path)
    assert set(first.passwords) == {access.user(access.ADMIN), *(access.user(r) for r in access.ROLES), security.CONTROLLER_USER}
    assert len(set(first.passwords.values())) == len(first.passwords)
    assert path.stat().st_mode & 0o777 == 0o600
    assert security.Credentials.load_or_create(path) == first


def test_the_broker_listens_only_with_sasl_and_enforces_acls(tmp_path):
    credentials = security.Credentials.load_or_create(tmp_path / "credentials.json")
    base = local._server_properties(layout(tmp_path), tmp_path / "data")
    lines = dict(line.split("=", 1) for line in (base + security.sasl_properties(layout(tmp_path), credentials)).splitlines() if "=" in line and not line.startswith("#"))
    assert lines["listeners"] == "SASL_PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193"
    assert lines["listener.security.protocol.map"] == "CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
    assert lines["sasl.enabled.mechanisms"] == "SCRAM-SHA-512" and lines["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert lines["authorizer.class.name"] == security.AUTHORIZER and lines["allow.everyone.if.no.acl.found"] == "false"
    assert lines["super.users"] == "User:clinic-admin;User:controller"


def test_scram_credentials_are_made_for_every_client_user_at_format(tmp_path):
    credentials = security.Credentials.load_or_create(tmp_path / "credentials.json")
    arguments = security.scram_arguments(credentials)
    made = [a for a in arguments if a != "--add-scram"]
    assert arguments.count("--add-scram") == len(made) == len(credentials.passwords) - 1
    assert f"SCRAM-SHA-512=[name=clinic-inventory,password={credentials.password('inventory')}]" in made


def test_a_principal_connects_with_sasl_scram(tmp_path):
    credentials = security.Credentials.load_or_create(tmp_path / "credentials.json")
    settings = credentials.settings("scheduling", Settings())
    assert (settings.kafka_security_protocol, settings.kafka_username) == ("SASL_PLAINTEXT", "clinic-scheduling")
    assert settings.kafka_password.get_secret_value() == credentials.password("scheduling")
