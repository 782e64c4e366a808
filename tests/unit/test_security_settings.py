"""Kafka security settings become client options in one place; secrets stay secret in every message."""

from __future__ import annotations

import io
import logging
import ssl

import pytest
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from pydantic import SecretStr, ValidationError

from shared.runtime.kafka_client import Kafka, broker_security, client_options, refusal, topic_configs
from shared.runtime.logs import _Fields, patient_hash
from shared.settings import Settings, explain, redact

PASSWORD = "s3cr3t-Pa55-7f2c"


def sasl(**changes) -> Settings:
    return Settings(kafka_security_protocol="SASL_SSL", kafka_username="clinic-inventory", kafka_password=PASSWORD, **changes)


def test_plaintext_needs_no_options():
    assert client_options(Settings()) == {} and broker_security(Settings()) is None
    assert Kafka.of(Settings(kafka_bootstrap_servers="k:9092")) == Kafka("k:9092", {})


def test_sasl_ssl_with_scram_512_gives_every_client_credentials_and_a_verifying_tls_context():
    options = client_options(sasl())
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "clinic-inventory" and options["sasl_plain_password"] == PASSWORD
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    security = broker_security(sasl())
    assert isinstance(security, SASLScram512) and security.use_ssl and security.username == "clinic-inventory"


def test_sasl_plaintext_with_scram_256_has_no_tls():
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-256", kafka_username="u", kafka_password="p")
    assert "ssl_context" not in client_options(settings)
    security = broker_security(settings)
    assert isinstance(security, SASLScram256) and not security.use_ssl


def test_ssl_alone_is_tls_without_sasl():
    settings = Settings(kafka_security_protocol="SSL")
    assert set(client_options(settings)) == {"security_protocol", "ssl_context"}
    assert type(broker_security(settings)) is BaseSecurity and broker_security(settings).use_ssl


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "CLINIC_KAFKA_USERNAME is required with CLINIC_KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_username": "u"}, "CLINIC_KAFKA_PASSWORD is required"),
        ({"kafka_username": "u", "kafka_password": PASSWORD}, "CLINIC_KAFKA_SECURITY_PROTOCOL=PLAINTEXT sends no credentials"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"}, "CLINIC_KAFKA_SSL_CAFILE: no readable file at /nonexistent/ca.pem"),
        ({"kafka_ssl_cafile": "/etc/hostname"}, "CLINIC_KAFKA_SSL_CAFILE is set but CLINIC_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS"),
        ({"kafka_security_protocol": "SASL_MD5"}, "CLINIC_KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_a_missing_or_contradictory_setting_is_named_in_one_line_without_its_value(changes, named):
    with pytest.raises(ValidationError) as raised:
        Settings(**changes)
    line = explain(raised.value)
    assert named in line and "\n" not in line
    assert PASSWORD not in line and PASSWORD not in str(raised.value)


def test_secrets_are_hidden_in_the_settings_repr():
    settings = sasl(mongodb_url=f"mongodb://clinic-inventory:{PASSWORD}@db:27017/clinic_inventory", log_patient_key="k" * 32)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())
    assert "k" * 32 not in repr(settings)


def test_secrets_are_read_from_files_named_like_the_variables(tmp_path, monkeypatch):
    (tmp_path / "CLINIC_KAFKA_PASSWORD").write_text(PASSWORD)
    (tmp_path / "MONGODB_URL").write_text(f"mongodb://u:{PASSWORD}@db/")
    monkeypatch.setenv("CLINIC_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("CLINIC_KAFKA_USERNAME", "clinic-aftercare")
    monkeypatch.delenv("MONGODB_URL", raising=False)  # a variable, when set, wins over the file
    settings = Settings(_secrets_dir=tmp_path)
    assert settings.kafka_password.get_secret_value() == PASSWORD
    assert settings.mongodb_url.get_secret_value() == f"mongodb://u:{PASSWORD}@db/"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"mongodb://admin:{PASSWORD}@db:27017/?replicaSet=rs0", "mongodb://***@db:27017/?replicaSet=rs0"),
        (f"mongodb+srv://u:{PASSWORD}@cluster.example.net/x", "mongodb+srv://***@cluster.example.net/x"),
        (f"cannot reach mongodb://u:p@ss{PASSWORD}@h1,h2/ (timeout)", "cannot reach mongodb://***@h1,h2/ (timeout)"),
        ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
        (SecretStr(f"mongodb://a:{PASSWORD}@h/"), "mongodb://***@h/"),
    ],
)
def test_one_helper_redacts_the_credentials_of_any_url_in_a_text(text, shown):
    assert redact(text) == shown


def test_replicated_topics_require_two_in_sync_replicas_and_dead_letters_are_kept_longer():
    configs = topic_configs(Settings(topic_replication=3), ["clinic.lot.recalled.v1", "clinic.lot.recalled.v1.dlq"])
    assert configs["clinic.lot.recalled.v1"] == {"retention.ms": str(7 * 86_400_000), "min.insync.replicas": "2"}
    assert configs["clinic.lot.recalled.v1.dlq"]["retention.ms"] == str(30 * 86_400_000)
    assert topic_configs(Settings(), ["t"])["t"]["min.insync.replicas"] == "1"


def test_a_refusal_names_the_principal_and_what_to_check_never_the_password():
    from aiokafka.errors import GroupAuthorizationFailedError, SaslAuthenticationFailed, TopicAuthorizationFailedError

    settings = sasl()
    assert "User:clinic-inventory" in refusal(SaslAuthenticationFailed(), settings) and "CLINIC_KAFKA_PASSWORD" in refusal(SaslAuthenticationFailed(), settings)
    assert "topic clinic.x.v1" in refusal(TopicAuthorizationFailedError("clinic.x.v1"), settings)
    assert "consumer group" in refusal(GroupAuthorizationFailedError(), settings)
    assert refusal(ValueError("x"), settings) is None
    assert all(PASSWORD not in refusal(e, settings) for e in (SaslAuthenticationFailed(), TopicAuthorizationFailedError()))


def _line(formatter: logging.Formatter, **fields) -> str:
    record = logging.makeLogRecord({"name": "clinic.test", "msg": "event", "levelno": 20, "levelname": "INFO", **fields})
    return formatter.format(record)


def test_with_a_key_logs_carry_a_keyed_hash_of_the_patient_instead_of_the_id():
    key = SecretStr("a-long-random-log-key")
    line = _line(_Fields(False, key), patient="pt_7Q2M9K4X", event_id="e1")
    assert "pt_7Q2M9K4X" not in line and f"patient={patient_hash(key, 'pt_7Q2M9K4X')}" in line
    assert patient_hash(key, "pt_7Q2M9K4X") == patient_hash(key, "pt_7Q2M9K4X") != patient_hash(SecretStr("another"), "pt_7Q2M9K4X")
    assert "patient=pt_7Q2M9K4X" in _line(_Fields(False), patient="pt_7Q2M9K4X")
    assert '"patient": "h:' in _line(_Fields(True, key), patient="pt_7Q2M9K4X")


def test_a_service_process_configured_with_a_key_hashes_patients(monkeypatch):
    from shared.runtime import logs

    stream = io.StringIO()
    monkeypatch.setattr(logs.sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO", "text", patient_key=SecretStr("k"))
        logging.getLogger("clinic.test").info("event", extra={"patient": "pt_7Q2M9K4X"})
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert "pt_7Q2M9K4X" not in stream.getvalue() and "patient=h:" in stream.getvalue()


def test_a_store_refusal_names_the_credentials_or_the_role_to_check():
    from pymongo.errors import OperationFailure

    from shared.runtime import store

    assert store.refusal(OperationFailure("Authentication failed.", code=18), "clinic_inventory") == (
        "the store refused the credentials in MONGODB_URL: check its user, password and authSource"
    )
    assert store.refusal(OperationFailure("not authorized", code=13), "clinic_inventory") == (
        "the store's user in MONGODB_URL may not use database clinic_inventory: it needs the role readWrite on clinic_inventory"
    )
    assert store.refusal(OperationFailure("other", code=2), "clinic_inventory") is None
