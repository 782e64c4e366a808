"""`clinic events` and `clinic publish`: the contracts, and publishing a validated event."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from aiokafka.structs import RecordMetadata
from pydantic import ValidationError

from clinic.cli import common
from clinic.cli.common import Bootstrap, Json
from clinic.operations import writer
from shared.contracts import REGISTRY, UnknownEventType, topic_of
from shared.envelope import CloudEvent, encode, new_event
from shared.runtime.kafka_client import Kafka
from shared.settings import Settings

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def events(
    producer: Annotated[str | None, typer.Option(help="Only events published by this service, or 'external'.", show_default="all")] = None,
    as_json: Json = False,
) -> None:
    """List every event: CLI name, CloudEvents type (= topic), producer and schema file."""
    rows = sorted((m for m in REGISTRY if producer is None or m.producer == producer), key=lambda m: (m.producer, m.event_type))
    if not rows:
        raise typer.BadParameter(f"no events are produced by {producer!r}", param_hint="--producer")
    if as_json:
        common.echo_json([
            {"name": m.event_name(), "class": m.__name__, "type": m.event_type, "topic": topic_of(m), "producer": m.producer,
             "key": m.key_field, "subject": m.subject_field, "schema": f"schemas/{m.event_type}.json"}
            for m in rows
        ])
        return
    width = max(len(m.event_name()) for m in rows)
    for model in rows:
        typer.echo(f"{model.event_name():<{width}}  {model.event_type:<44} {model.producer:<13} schemas/{model.event_type}.json")


def publish(
    event: Annotated[str, typer.Argument(help="Event name (e.g. session-completed), class name or CloudEvents type.")],
    file: Annotated[str, typer.Argument(help="JSON file with the event's data, or - for standard input.")] = "-",
    source: Annotated[str, typer.Option(help="CloudEvents source: the system publishing.")] = "/clinic/cli",
    correlation_id: Annotated[str | None, typer.Option(help="Correlation id of the flow this event belongs to.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the CloudEvent, do not send it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Say what was published (topic, partition, offset, id, key) as JSON.")] = False,
    bootstrap: Bootstrap = None,
) -> None:
    """Validate event data against its contract, wrap it in a CloudEvent and publish it to its topic."""
    try:
        model = REGISTRY.by_name(event)
    except UnknownEventType as error:
        raise typer.BadParameter(str(error), param_hint="EVENT") from None
    raw = sys.stdin.read() if file == "-" else _read(file)
    try:
        data = model.model_validate_json(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<data>"
        more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise typer.BadParameter(f"{model.__name__} is invalid at {where}: {first['msg']}{more}", param_hint="FILE") from None
    cloud_event = new_event(data, source=source, correlation_id=correlation_id)
    settings = common.settings(bootstrap)
    topic = topic_of(model, settings.topic_prefix)
    if dry_run:
        value, headers = encode(cloud_event)
        common.echo_json({"topic": topic, "key": cloud_event.key, "headers": {k: v.decode() for k, v in headers}, "data": json.loads(value)})
        return
    sent = common.run("publish", _send(settings, topic, cloud_event), settings)
    if as_json:
        common.echo_json({"topic": topic, "partition": sent.partition, "offset": sent.offset, "id": cloud_event.id, "type": model.event_type, "key": cloud_event.key})
    else:
        typer.echo(f"published {model.event_type} id={cloud_event.id} key={cloud_event.key} to {topic}")


def _read(file: str) -> str:
    try:
        return Path(file).read_text()
    except OSError as error:
        raise typer.BadParameter(f"cannot read {file}: {error.strerror}", param_hint="FILE") from None


async def _send(settings: Settings, topic: str, event: CloudEvent) -> RecordMetadata:
    from shared.runtime.kafka import ensure_topics
    from shared.runtime.kafka_client import topic_configs

    value, headers = encode(event)
    kafka = Kafka.of(settings)
    # the broker creates no topic on demand: the first event of a type creates its topic, as the services would
    await ensure_topics(kafka.bootstrap, [topic], settings.topic_partitions, settings.topic_replication, options=kafka.options, configs=topic_configs(settings, [topic]), timeout=10.0)
    async with writer(kafka) as producer:
        return await producer.send_and_wait(topic, value, key=event.key.encode() if event.key else None, headers=headers)
