"""`clinic outbox`: the events a service could not publish and set aside, listed and sent again."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError
from rich.table import Table

from shared import outbox_ops
from shared.cli.ops import Bootstrap, _console, _settings
from shared.asyncapi import SERVICES
from shared.runtime import store
from shared.settings import Settings, redact

app = typer.Typer(help="Events a service set aside after the broker refused them: list them, send them again.", no_args_is_help=True)
Service = Annotated[str, typer.Argument(help=f"The service whose outbox to read: {', '.join(SERVICES)}.")]


@app.command("list")
def list_(
    service: Service,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The set-aside events of SERVICE: type, key, attempts and the broker's last refusal."""
    settings = Settings()
    rows = _run(settings, service, lambda db: outbox_ops.set_aside(db))
    if as_json:
        typer.echo(json.dumps([{**vars(r), "due_at": r.due_at.isoformat()} for r in rows], indent=2))
        return
    table = Table(title=f"{len(rows)} set-aside event(s) in {service}'s outbox", title_justify="left")
    for column in ("event id", "type", "key", "attempts", "last error", "bytes"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.id, row.type, row.key or "-", str(row.attempts), row.error, str(row.size))
    _console().print(table)


@app.command("redrive")
def redrive(
    service: Service,
    event_id: Annotated[list[str] | None, typer.Option("--id", help="Only this event id (repeatable); all set-aside events when omitted.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent; send nothing.")] = False,
    bootstrap: Bootstrap = None,
) -> None:
    """Publish SERVICE's set-aside events again (same ids) after the cause is fixed; exit 1 if any is refused again."""
    settings = _settings(bootstrap)
    results = _run(settings, service, lambda db: outbox_ops.redrive(db, settings.kafka_bootstrap_servers, event_id, dry_run=dry_run))
    refused = 0
    for row, error in results:
        verb = "would send" if dry_run else ("sent" if error is None else f"refused again ({error})")
        refused += error is not None
        typer.echo(f"{verb} {row.id} ({row.type}) -> {row.topic}")
    typer.echo(f"{'would send' if dry_run else 'sent'} {len(results) - refused} of {len(results)} set-aside event(s) from {service}")
    if refused:
        raise typer.Exit(1)


def _run(settings: Settings, service: str, action: Any) -> Any:
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}", param_hint="SERVICE")

    async def go() -> Any:
        client = store.connect(settings.mongodb_url, "clinic-cli")
        try:
            return await action(store.database(client, settings.database(service)))
        finally:
            await client.close()

    try:
        return asyncio.run(go())
    except PyMongoError as error:
        typer.echo(f"clinic outbox: the store at {redact(settings.mongodb_url)} did not answer ({error.__class__.__name__})", err=True)
        raise typer.Exit(1) from None
    except (KafkaError, TimeoutError) as error:
        typer.echo(f"clinic outbox: Kafka at {settings.kafka_bootstrap_servers} did not answer ({error.__class__.__name__})", err=True)
        raise typer.Exit(1) from None

