"""`clinic outbox`: the events a service could not publish and set aside, listed and sent again."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from clinic import outbox_ops
from clinic.asyncapi import SERVICES
from clinic.cli import common
from clinic.cli.common import EXIT_CODES, Bootstrap, Json
from shared.runtime import store
from shared.runtime.kafka_client import Kafka
from shared.settings import Settings

app = typer.Typer(help="Events a service set aside after the broker refused them: list them, send them again.", no_args_is_help=True, epilog=EXIT_CODES)
Service = Annotated[str, typer.Argument(help=f"The service whose outbox to read: {', '.join(SERVICES)}.")]


@app.command("list")
def list_(
    service: Service,
    as_json: Json = False,
) -> None:
    """The set-aside events of SERVICE: type, key, attempts and the broker's last refusal."""
    settings = Settings()
    rows = _run("outbox list", settings, service, lambda db: outbox_ops.set_aside(db))
    if as_json:
        common.echo_json([{**vars(r), "due_at": r.due_at.isoformat()} for r in rows])
        return
    table = Table(title=f"{len(rows)} set-aside event(s) in {service}'s outbox", title_justify="left")
    for column in ("event id", "type", "key", "attempts", "last error", "bytes"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.id, row.type, row.key or "-", str(row.attempts), row.error, str(row.size))
    common.console().print(table)


@app.command("redrive")
def redrive(
    service: Service,
    event_id: Annotated[list[str] | None, typer.Option("--id", help="Only this event id (repeatable).", show_default="every set-aside event")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent; send nothing.")] = False,
    bootstrap: Bootstrap = None,
) -> None:
    """Publish SERVICE's set-aside events again (same ids) after the cause is fixed; exit 1 if any is refused again."""
    settings = common.settings(bootstrap)
    results = _run("outbox redrive", settings, service, lambda db: outbox_ops.redrive(db, Kafka.of(settings), event_id, partitions=settings.topic_partitions, dry_run=dry_run))
    refused = 0
    for row, error in results:
        verb = "would send" if dry_run else ("sent" if error is None else f"refused again ({error})")
        refused += error is not None
        typer.echo(f"{verb} {row.id} ({row.type}) -> {row.topic}")
    typer.echo(f"{'would send' if dry_run else 'sent'} {len(results) - refused} of {len(results)} set-aside event(s) from {service}")
    if refused:
        raise typer.Exit(1)


def _run(command: str, settings: Settings, service: str, action: Any) -> Any:
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}", param_hint="SERVICE")

    async def go() -> Any:
        client = store.connect(settings.mongodb_url.get_secret_value(), "clinic-cli")
        try:
            return await action(store.database(client, settings.database(service)))
        finally:
            await client.close()

    return common.run(command, go(), settings)
