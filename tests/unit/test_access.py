"""The ACLs are derived from who produces and who consumes each event, and grant nothing more."""

from __future__ import annotations

from clinic import access
from clinic.asyncapi import SERVICES
from shared.contracts import REGISTRY, dlq_topic, topic_of

PREFIX = "acme."
GRANTS = access.grants(PREFIX)
CONSUMED = access.consumed()


def allowed(role: str, operation: str, resource: str = "topic") -> set[str]:
    return {g.name for g in GRANTS if g.principal == access.principal(role) and g.operation == operation and g.resource == resource}


def test_a_service_reads_exactly_the_topics_it_consumes_and_only_its_own_group():
    for service in SERVICES:
        assert allowed(service, "READ") == {topic_of(m, PREFIX) for m in CONSUMED[service]}
        assert allowed(service, "READ", "group") == {f"{PREFIX}clinic.{service}"}
        assert not allowed(service, "DESCRIBE", "group")


def test_a_service_writes_and_creates_only_its_own_events_and_its_dead_letters():
    for service in SERVICES:
        own = {topic_of(m, PREFIX) for m in REGISTRY.produced_by(service)} | {dlq_topic(topic_of(m, PREFIX)) for m in CONSUMED[service]}
        assert allowed(service, "WRITE") == own == allowed(service, "CREATE")


def test_scheduling_may_not_publish_what_consultation_decides():
    approved = topic_of(REGISTRY.by_name("ConsultationApproved"), PREFIX)
    assert approved in allowed("consultation", "WRITE") and approved in allowed("scheduling", "READ")
    assert approved not in allowed("scheduling", "WRITE")


def test_the_integrator_writes_the_input_topics_and_reads_nothing():
    assert allowed("integrator", "WRITE") == {topic_of(m, PREFIX) for m in REGISTRY.produced_by("external")}
    assert {g.operation for g in GRANTS if g.principal == access.principal("integrator")} == {"WRITE"}


def test_the_operator_reads_everything_describes_groups_and_joins_only_the_replay_group():
    operator = {g for g in GRANTS if g.principal == access.principal("operator")}
    assert {(g.resource, g.name, g.operation, g.pattern) for g in operator if g.pattern == "prefixed"} == {
        ("topic", f"{PREFIX}clinic.", "READ", "prefixed"), ("group", f"{PREFIX}clinic.", "DESCRIBE", "prefixed"),
    }
    assert allowed("operator", "READ", "group") == {f"{PREFIX}clinic.dlq-replay"}
    # a replay goes back to the topic the dead letter came from: any consumed topic, never a dead-letter topic
    assert allowed("operator", "WRITE") == {topic_of(m, PREFIX) for models in CONSUMED.values() for m in models}


def test_the_viewer_of_the_web_ui_writes_nothing():
    assert {g.operation for g in GRANTS if g.principal == access.principal("viewer")} == {"READ", "DESCRIBE", "DESCRIBE_CONFIGS"}


def test_nobody_but_the_admin_may_touch_the_cluster_and_every_grant_is_scoped_to_the_deployment():
    assert not [g for g in GRANTS if g.resource == "cluster"]
    assert all(g.name.startswith(f"{PREFIX}clinic.") for g in GRANTS)
    assert access.principal(access.ADMIN) not in {g.principal for g in GRANTS}


def test_the_grants_follow_the_handlers_not_a_hand_kept_list():
    lot_recalled = REGISTRY.by_name("LotRecalled")
    only = access.grants(PREFIX, {"aftercare": [lot_recalled]})
    reads = {g.name for g in only if g.principal == access.principal("aftercare") and g.operation == "READ" and g.resource == "topic"}
    assert reads == {topic_of(lot_recalled, PREFIX)}


def test_every_topic_of_the_deployment_is_listed_for_creation():
    names = access.topics(PREFIX)
    assert {topic_of(m, PREFIX) for m in REGISTRY} <= set(names)
    assert {dlq_topic(topic_of(m, PREFIX)) for models in CONSUMED.values() for m in models} <= set(names)
    assert len(names) == len(set(names))
