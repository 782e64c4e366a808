"""Who may do what on Kafka: least-privilege ACLs derived from the contracts, in one place.

The contract registry says who produces each event; the services' handlers say who consumes it. From
those two facts alone (no hand-kept list) every principal gets exactly what it needs:

- each service (``User:clinic-<service>``): READ the topics it consumes, WRITE the topics it produces and
  the dead-letter topics of what it consumes (and CREATE those, its own topics), READ its own consumer
  group ``<prefix>clinic.<service>``;
- the operator (``User:clinic-operator``, the CLI): READ every clinic topic, DESCRIBE every clinic
  group (lag), READ the dead-letter replay group, WRITE the consumed topics (a replay goes back there);
- the integrator (``User:clinic-integrator``, other clinic systems): WRITE the input topics (the events
  published from outside), nothing else;
- the viewer (``User:clinic-viewer``, the Kafka web UI): READ and DESCRIBE_CONFIGS every clinic topic,
  DESCRIBE every clinic group; it writes nothing;
- the admin (``User:clinic-admin``) is the broker's super user: it creates the topics and these ACLs.

``clinic acl list`` prints them; ``clinic acl apply`` (as the admin) creates every topic and ACL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError, SecurityDisabled, for_code
from aiokafka.protocol.admin import CreateAclsRequest_v1, DescribeAclsRequest_v1
from aiokafka.protocol.api import Request

from clinic.asyncapi import SERVICES, consumed_by
from shared.contracts import REGISTRY, EventData, dlq_topic, topic_of
from shared.runtime.kafka import ensure_topics
from shared.runtime.kafka_client import Kafka, topic_configs
from shared.settings import Settings

Resource = Literal["topic", "group", "cluster"]
Operation = Literal["READ", "WRITE", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS"]
Pattern = Literal["literal", "prefixed"]
ROLES = (*SERVICES, "operator", "integrator", "viewer")
ADMIN = "admin"
REPLAY = "dlq-replay"
"""The replay's consumer group is ``Settings.group_id(REPLAY)`` (see clinic.operations)."""


def user(role: str) -> str:
    """The SASL user name of a role (a service, operator, integrator, viewer or admin)."""
    return f"clinic-{role}"


def principal(role: str) -> str:
    return f"User:{user(role)}"


@dataclass(frozen=True, order=True)
class Grant:
    principal: str
    resource: Resource
    name: str
    operation: Operation
    pattern: Pattern = "literal"

    def __str__(self) -> str:
        star = "*" if self.pattern == "prefixed" else ""
        return f"{self.principal:<24} {self.operation:<16} {self.resource} {self.name}{star}"


def consumed(services: Iterable[str] = SERVICES) -> dict[str, list[type[EventData]]]:
    """What each service's handlers react to (the same source as the AsyncAPI document)."""
    return {service: consumed_by(service) for service in services}


def grants(prefix: str = "", consumers: Mapping[str, list[type[EventData]]] | None = None) -> list[Grant]:
    """Every ACL of a deployment (``prefix`` = its topic prefix), sorted."""
    consumers = consumers if consumers is not None else consumed()
    settings = Settings.model_construct(topic_prefix=prefix)  # only for its group names; nothing read from the environment
    found: set[Grant] = set()

    def allow(role: str, resource: Resource, name: str, *operations: Operation, pattern: Pattern = "literal") -> None:
        found.update(Grant(principal(role), resource, name, operation, pattern) for operation in operations)

    every_consumed = sorted({m.event_type for models in consumers.values() for m in models})
    for service, models in consumers.items():
        for model in models:
            allow(service, "topic", topic_of(model, prefix), "READ")
            allow(service, "topic", dlq_topic(topic_of(model, prefix)), "WRITE", "CREATE")
        for model in REGISTRY.produced_by(service):
            allow(service, "topic", topic_of(model, prefix), "WRITE", "CREATE")
        allow(service, "group", settings.group_id(service), "READ")
    clinic = f"{prefix}clinic."
    allow("operator", "topic", clinic, "READ", pattern="prefixed")
    allow("operator", "group", clinic, "DESCRIBE", pattern="prefixed")
    allow("operator", "group", settings.group_id(REPLAY), "READ")
    for event_type in every_consumed:
        allow("operator", "topic", topic_of(event_type, prefix), "WRITE")
    for model in REGISTRY.produced_by("external"):
        allow("integrator", "topic", topic_of(model, prefix), "WRITE")
    allow("viewer", "topic", clinic, "READ", "DESCRIBE_CONFIGS", pattern="prefixed")
    allow("viewer", "group", clinic, "DESCRIBE", pattern="prefixed")
    return sorted(found)


def topics(prefix: str = "", consumers: Mapping[str, list[type[EventData]]] | None = None) -> list[str]:
    """Every topic of a deployment: one per event type, and a dead-letter topic per consumed type."""
    consumers = consumers if consumers is not None else consumed()
    names = {topic_of(m, prefix) for m in REGISTRY}
    names |= {dlq_topic(topic_of(m, prefix)) for models in consumers.values() for m in models}
    return sorted(names)


# -- applying them (aiokafka speaks CreateAcls but its admin client has no method for it) -------------

_RESOURCE = {"topic": 2, "group": 3, "cluster": 4}
_OPERATION = {"READ": 3, "WRITE": 4, "CREATE": 5, "DESCRIBE": 8, "DESCRIBE_CONFIGS": 10}
_PATTERN = {"literal": 3, "prefixed": 4}
_ALLOW, _ANY_HOST = 3, "*"


_NAMES = {"resource": {v: k for k, v in _RESOURCE.items()}, "operation": {v: k for k, v in _OPERATION.items()}, "pattern": {v: k for k, v in _PATTERN.items()}}
_ANY, _MATCH = 1, 2


class _CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, creations: list[tuple]) -> None:
        self.creations = creations

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self.creations)


class _DescribeAcls(Request[DescribeAclsRequest_v1]):
    API_KEY = 29

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        return request_struct_class(_ANY, None, _ANY, None, None, _ANY, _ANY)  # every ACL


async def apply(
    kafka: Kafka, settings: Settings, consumers: Mapping[str, list[type[EventData]]] | None = None, *, timeout: float = 30.0,
) -> tuple[list[str], list[Grant]]:
    """As the admin: create every topic of the deployment (with its retention and min.insync.replicas)
    and every ACL, then wait until the broker enforces them (the controller commits an ACL before the
    brokers have loaded it). Idempotent: existing topics and ACLs stay as they are. Returns the topics
    created and the ACLs in place."""
    prefix = settings.topic_prefix
    consumers = consumers if consumers is not None else consumed()
    names = topics(prefix, consumers)
    created = await ensure_topics(
        kafka.bootstrap, names, settings.topic_partitions, settings.topic_replication, options=kafka.options, configs=topic_configs(settings, names),
    )
    wanted = grants(prefix, consumers)
    admin = kafka.admin(client_id="clinic-acl")
    try:
        await admin.start()
        creations = [
            (_RESOURCE[g.resource], g.name, _PATTERN[g.pattern], g.principal, _ANY_HOST, _OPERATION[g.operation], _ALLOW) for g in wanted
        ]
        response = await admin._send_request(_CreateAcls(creations))
        for grant, (code, message) in zip(wanted, response.creation_responses, strict=True):
            if for_code(code) is SecurityDisabled:
                raise SecurityDisabled("the broker has no authorizer (authorizer.class.name): the topics exist, no ACL was applied")
            if code:
                raise for_code(code)(f"{grant}: {message or 'refused'}")
        deadline = time.monotonic() + timeout
        while missing := set(wanted) - await _described(admin):
            if time.monotonic() > deadline:
                raise KafkaTimeoutError(f"{len(missing)} ACLs created but not in effect after {timeout:.0f}s, e.g. {min(missing)}")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    return created, wanted


async def _described(admin: AIOKafkaAdminClient) -> set[Grant]:
    """The allowing ACLs the broker enforces now."""
    response = await admin._send_request(_DescribeAcls())
    if response.error_code:
        raise for_code(response.error_code)(response.error_message or "DescribeAcls refused")
    found = set()
    for resource_type, name, pattern, acls in response.resources:
        for who, _, operation, permission in acls:
            if permission == _ALLOW and resource_type in _NAMES["resource"] and operation in _NAMES["operation"] and pattern in _NAMES["pattern"]:
                found.add(Grant(who, _NAMES["resource"][resource_type], name, _NAMES["operation"][operation], _NAMES["pattern"][pattern]))
    return found
