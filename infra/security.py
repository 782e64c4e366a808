"""A local Kafka broker that authenticates and authorizes like production: SASL/SCRAM-SHA-512 for
clients, the KRaft ``StandardAuthorizer`` with ``clinic-admin`` as its super user, and nobody allowed
anything without an ACL.

Every principal of ``clinic.access`` (the four services, operator, integrator, viewer) and the admin get
a random password, kept in ``<state>/kafka/credentials.json`` (private to the user), and their SCRAM
credentials are written when the storage is formatted. The controller listener speaks SASL/PLAIN with a
user of its own (SCRAM credentials live in the metadata log, which a controller cannot read before it
authenticates its peers). The ACLs themselves come from ``clinic acl apply`` (``clinic.access.apply``),
run as the admin.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from clinic.access import ADMIN, ROLES, user
from infra import local
from shared.settings import Settings

MECHANISM = "SCRAM-SHA-512"
CONTROLLER_USER = "controller"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@dataclass(frozen=True)
class Credentials:
    passwords: dict[str, str]
    """user name -> password, for the admin, every role and the controller."""

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        if path.exists():
            return cls(json.loads(path.read_text()))
        names = [user(ADMIN), *(user(role) for role in ROLES), CONTROLLER_USER]
        found = cls({name: secrets.token_urlsafe(24) for name in names})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps(found.passwords, indent=2))
        return found

    def password(self, role: str) -> str:
        return self.passwords[user(role)]

    def settings(self, role: str, base: Settings) -> Settings:
        """``base`` connecting as ``role``'s principal over SASL_PLAINTEXT."""
        return base.model_copy(update={
            "kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": MECHANISM,
            "kafka_username": user(role), "kafka_password": SecretStr(self.password(role)),
        })


def sasl_properties(layout: local.Layout, credentials: Credentials) -> str:
    """Overrides of the plain broker's properties (later lines win): SASL listeners and the authorizer."""
    admin, admin_password = user(ADMIN), credentials.passwords[user(ADMIN)]
    controller_password = credentials.passwords[CONTROLLER_USER]
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    return "\n".join([
        "",
        "# infra/security.py: SASL/SCRAM for clients, PLAIN between broker and controller, ACLs enforced",
        f"listeners=SASL_PLAINTEXT://{layout.host}:{layout.kafka_port},CONTROLLER://{layout.host}:{layout.controller_port}",
        f"advertised.listeners=SASL_PLAINTEXT://{layout.host}:{layout.kafka_port}",
        "listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "inter.broker.listener.name=SASL_PLAINTEXT",
        f"sasl.enabled.mechanisms={MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
        f'listener.name.sasl_plaintext.{MECHANISM.lower()}.sasl.jaas.config={scram} required username="{admin}" password="{admin_password}";',
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        f'listener.name.controller.plain.sasl.jaas.config={plain} required username="{CONTROLLER_USER}" password="{controller_password}" '
        f'user_{CONTROLLER_USER}="{controller_password}";',
        f"authorizer.class.name={AUTHORIZER}",
        f"super.users=User:{admin};User:{CONTROLLER_USER}",
        "allow.everyone.if.no.acl.found=false",
        "auto.create.topics.enable=false",
        "",
    ])


def scram_arguments(credentials: Credentials) -> tuple[str, ...]:
    """``StorageTool format`` arguments creating every client user's SCRAM credentials."""
    arguments: list[str] = []
    for name, password in credentials.passwords.items():
        if name != CONTROLLER_USER:
            arguments += ["--add-scram", f"{MECHANISM}=[name={name},password={password}]"]
    return tuple(arguments)


def up(layout: local.Layout, say=print, wait_seconds: float = 120.0) -> Credentials:
    """Start (or reuse) the SASL broker of this layout's state folder; returns its credentials."""
    layout.state.mkdir(parents=True, exist_ok=True)
    credentials = Credentials.load_or_create(layout.state / "kafka" / "credentials.json")
    libs = local.fetch_kafka(layout, say)
    if local._start_kafka(layout, libs, say, sasl_properties(layout, credentials), scram_arguments(credentials)):
        deadline = time.monotonic() + wait_seconds
        local._wait(lambda: local._kafka_ready(layout), "kafka", layout, deadline, f"Kafka (SASL) did not answer on {layout.bootstrap}")
    return credentials
