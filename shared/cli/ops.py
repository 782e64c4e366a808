"""Operator commands: `tail`, `lag`, `dlq list`, `dlq replay`, `monitor`."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from shared import operations
from shared.contracts import DLQ_SUFFIX, REGISTRY, UnknownEventType, topic_of
from shared.envelope import CloudEvent, InvalidEvent, decode, to_structured
from shared.settings import Settings

dlq = typer.Typer(help="Dead letters: list them, replay them after a fix.", no_args_is_help=True)
Bootstrap = Annotated[str | None, typer.Option("--bootstrap", help="Kafka bootstrap servers [default: $KAFKA_BOOTSTRAP_SERVERS].")]


def _console() -> Console:
    """Wide enough for the tables when the output is piped to a file or a script."""
    console = Console()
    return console if console.is_terminal else Console(width=180)


def _settings(bootstrap: str | None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"kafka_bootstrap_servers": bootstrap}) if bootstrap else settings


def _run(coroutine: Any, settings: Settings) -> Any:
    try:
        return asyncio.run(coroutine)
    except (KafkaError, TimeoutError) as error:
        typer.echo(f"clinic: Kafka at {settings.kafka_bootstrap_servers} did not answer ({error.__class__.__name__}); is it running? (clinic infra status)", err=True)
        raise typer.Exit(1) from None


def _topic(name: str, prefix: str) -> str:
    if name.startswith(prefix + "clinic."):
        return name
    try:
        return topic_of(REGISTRY.by_name(name), prefix)
    except UnknownEventType as error:
        raise typer.BadParameter(str(error), param_hint="TOPIC") from None


def describe(event: CloudEvent) -> str:
    """One readable line: time, type, patient, subject and the event's key facts (no free text exists)."""
    data = event.data.model_dump(mode="json") if hasattr(event.data, "model_dump") else dict(event.data)
    shown = {"patient_id", data.get("patient_id")}
    facts = []
    for name, value in data.items():
        if name in shown or value is None or value == [] or value == {}:
            continue
        if isinstance(value, list):
            facts.append(f"{name}=[{len(value)}]")
        elif isinstance(value, dict):
            continue
        else:
            facts.append(f"{name}={value}")
        if len(facts) == 5:
            break
    clock = event.time.astimezone(UTC).strftime("%H:%M:%S")
    return f"{clock}  {event.type.removeprefix('clinic.'):<36} {event.key or '-':<14} {' '.join(facts)}"


def tail(
    topic: Annotated[list[str] | None, typer.Argument(help="Topics or event names (e.g. session-completed); every clinic topic when omitted.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only this CloudEvents type.")] = None,
    patient: Annotated[str | None, typer.Option(help="Only events keyed by this pseudonymous patient id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One structured-mode CloudEvent per line, for scripts.")] = False,
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Start at the oldest retained event.")] = False,
    limit: Annotated[int | None, typer.Option("--max", min=1, help="Stop after this many events.")] = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Print decoded CloudEvents as they arrive (Ctrl-C to stop)."""
    settings = _settings(bootstrap)
    _run(_tail(settings, topic, type_, patient, as_json, from_beginning, limit), settings)


async def _tail(
    settings: Settings, names: list[str] | None, type_: str | None, patient: str | None, as_json: bool, from_beginning: bool, limit: int | None,
    positioned: asyncio.Event | None = None,
) -> None:
    prefix = settings.topic_prefix
    chosen = [_topic(n, prefix) for n in names] if names else [t for t in await operations.topics(settings.kafka_bootstrap_servers, prefix) if not t.endswith(DLQ_SUFFIX)]
    if not chosen:
        typer.echo("clinic tail: no clinic topics exist yet", err=True)
        raise typer.Exit(1)
    seen = 0
    async for record in operations.follow(settings.kafka_bootstrap_servers, chosen, from_beginning=from_beginning, positioned=positioned):
        line = _line(record, type_, patient, as_json)
        if line is None:
            continue
        typer.echo(line)
        seen += 1
        if limit and seen >= limit:
            return


def _line(record: ConsumerRecord, type_: str | None, patient: str | None, as_json: bool) -> str | None:
    if patient and (record.key or b"").decode() != patient:
        return None
    try:
        event = decode(record.value, record.headers)
    except InvalidEvent as error:
        return None if type_ else f"{'':8}  {record.topic} offset {record.offset}: undecodable ({error.reason})"
    if type_ and event.type != type_:
        return None
    return to_structured(event).decode() if as_json else describe(event)


def lag(
    group: Annotated[str | None, typer.Option(help="One consumer group (default: every clinic group).")] = None,
    threshold: Annotated[int, typer.Option(min=0, help="Exit 1 when a group's total lag is above this.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    bootstrap: Bootstrap = None,
) -> None:
    """Consumer lag per group and partition; exit status 1 when a group's lag is above --threshold."""
    settings = _settings(bootstrap)
    rows = _run(operations.consumer_lag(settings.kafka_bootstrap_servers, settings.topic_prefix, group), settings)
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.group] = totals.get(row.group, 0) + row.lag
    if as_json:
        typer.echo(json.dumps({"groups": totals, "partitions": [{**row.__dict__, "lag": row.lag} for row in rows]}, indent=2))
    else:
        _console().print(_lag_table(rows, totals))
    behind = {g: n for g, n in totals.items() if n > threshold}
    if behind:
        typer.echo("lag above threshold: " + ", ".join(f"{g}={n}" for g, n in sorted(behind.items())), err=True)
        raise typer.Exit(1)


def _lag_table(rows: list[operations.PartitionLag], totals: dict[str, int]) -> Table:
    table = Table(title="consumer lag", title_justify="left")
    for column in ("service", "group", "topic", "partition", "committed", "end", "lag"):
        table.add_column(column, justify="right" if column in ("partition", "committed", "end", "lag") else "left")
    for row in rows:
        style = "red" if row.lag > 0 else None
        table.add_row(row.service, row.group, row.topic, str(row.partition), "-" if row.committed is None else str(row.committed), str(row.end), str(row.lag), style=style)
    if not rows:
        table.add_row("-", "no clinic consumer groups yet", "", "", "", "", "")
    table.caption = "  ".join(f"{g}: {n}" for g, n in sorted(totals.items()))
    return table


@dlq.command("list")
def dlq_list(
    topic: Annotated[str | None, typer.Argument(help="A dead-letter topic or the event name whose dead letters to list (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    bootstrap: Bootstrap = None,
) -> None:
    """List dead letters: where they came from and why they failed."""
    settings = _settings(bootstrap)
    chosen = _dlq_topic(topic, settings.topic_prefix) if topic else None
    letters = _run(operations.dead_letters(settings.kafka_bootstrap_servers, settings.topic_prefix, chosen), settings)
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in vars(letter).items() if k != "record"} for letter in letters], indent=2))
        return
    table = Table(title=f"{len(letters)} dead letter(s)", title_justify="left")
    for column in ("dead-letter topic", "offset", "from", "reason", "error", "event id", "key", "failed at"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        origin = f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}"
        table.add_row(letter.topic, f"{letter.partition}:{letter.offset}", origin, letter.reason, letter.error[:120], letter.event_id or "-", letter.key or "-", letter.failed_at[:19])
    _console().print(table)


@dlq.command("replay")
def dlq_replay(
    topic: Annotated[str, typer.Argument(help="The dead-letter topic (or the event name) to replay.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed; publish nothing.")] = False,
    bootstrap: Bootstrap = None,
) -> None:
    """Re-publish dead letters not replayed before to their original topic (after the fix is deployed)."""
    settings = _settings(bootstrap)
    chosen = _dlq_topic(topic, settings.topic_prefix)
    letters = _run(operations.replay(settings.kafka_bootstrap_servers, chosen, dry_run=dry_run), settings)
    verb = "would replay" if dry_run else "replayed"
    for letter in letters:
        typer.echo(f"{verb} {letter.topic}:{letter.partition}:{letter.offset} -> {letter.original_topic} ({letter.reason}, event {letter.event_id or '-'})")
    typer.echo(f"{verb} {len(letters)} dead letter(s) from {chosen}")


def _dlq_topic(name: str, prefix: str) -> str:
    return name if name.endswith(DLQ_SUFFIX) else _topic(name, prefix) + DLQ_SUFFIX


def monitor(
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes.")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit (for scripts and tests).")] = False,
    bootstrap: Bootstrap = None,
) -> None:
    """A live view: per topic end offsets and rate, per group lag, dead-letter depths, last events."""
    settings = _settings(bootstrap)
    _run(_monitor(settings, interval, once), settings)


async def _monitor(settings: Settings, interval: float, once: bool) -> None:
    bootstrap, prefix = settings.kafka_bootstrap_servers, settings.topic_prefix
    last: deque[str] = deque(maxlen=8)
    previous: dict[str, int] = {}
    previous_at = time.monotonic()
    console = _console()
    with Live(console=console, auto_refresh=False, transient=False) if not once else _NoLive(console) as live:
        async with operations.reader(bootstrap) as consumer:
            while True:
                names = await operations.topics(bootstrap, prefix)
                ends = await operations.end_offsets(consumer, names)
                now = time.monotonic()
                per_topic: dict[str, int] = {}
                for tp, end in ends.items():
                    per_topic[tp.topic] = per_topic.get(tp.topic, 0) + end
                rates = {t: (n - previous.get(t, n)) / max(now - previous_at, 1e-6) for t, n in per_topic.items()}
                await _latest_events(consumer, ends, last)
                lags = await operations.consumer_lag(bootstrap, prefix)
                live.update(_monitor_view(per_topic, rates, lags, last), refresh=True)
                previous, previous_at = per_topic, now
                if once:
                    return
                await asyncio.sleep(interval)


async def _latest_events(consumer: Any, ends: dict, last: deque[str]) -> None:
    recent = [(tp, end) for tp, end in ends.items() if end > 0 and not tp.topic.endswith(DLQ_SUFFIX)]
    records = await operations.read_to_end(consumer, {tp: max(0, end - 2) for tp, end in recent})
    for record in sorted(records, key=lambda r: r.timestamp)[-8:]:
        try:
            line = describe(decode(record.value, record.headers))
        except InvalidEvent:
            continue
        if line not in last:
            last.append(line)


def _monitor_view(per_topic: dict[str, int], rates: dict[str, float], lags: list[operations.PartitionLag], last: deque[str]) -> Group:
    topics = Table(title=f"topics at {datetime.now(UTC):%H:%M:%S} UTC", title_justify="left")
    for column in ("topic", "events", "per s", "dead letters"):
        topics.add_column(column, justify="left" if column == "topic" else "right")
    for topic in sorted(t for t in per_topic if not t.endswith(DLQ_SUFFIX)):
        dead = per_topic.get(topic + DLQ_SUFFIX, 0)
        topics.add_row(topic, str(per_topic[topic]), f"{rates.get(topic, 0):.1f}", str(dead), style="red" if dead else None)
    totals: dict[str, int] = {}
    for row in lags:
        totals[row.group] = totals.get(row.group, 0) + row.lag
    lag_view = _lag_table([row for row in lags if row.lag > 0], totals)
    lag_view.title = "consumer lag (partitions behind only)"
    recent = Table(title="last events", title_justify="left", show_header=False)
    recent.add_column("event")
    for line in last:
        recent.add_row(line)
    return Group(topics, lag_view, recent)


class _NoLive:
    def __init__(self, console: Console) -> None:
        self.console = console

    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, renderable: Any, refresh: bool = False) -> None:
        self.console.print(renderable)


def stock(
    ingredient: Annotated[list[str] | None, typer.Argument(help="Only these ingredient codes (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Current stock per lot and per ingredient, read from the inventory service's ledger."""
    settings = Settings()
    try:
        lots = asyncio.run(_stock(settings, set(ingredient) if ingredient else None))
    except Exception as error:  # the store is the one dependency here; say which and where
        from pymongo.errors import PyMongoError

        if not isinstance(error, PyMongoError):
            raise
        typer.echo(f"clinic stock: the store at {settings.mongodb_url} did not answer ({error.__class__.__name__})", err=True)
        raise typer.Exit(1) from None
    from services.inventory.stock import by_ingredient

    totals = by_ingredient(lots)
    if as_json:
        typer.echo(json.dumps({"lots": [{**vars(lot), "expires_on": lot.expires_on.isoformat()} for lot in lots],
                               "ingredients": {k: {**vars(v), "available": v.available} for k, v in totals.items()}}, indent=2))
        return
    table = Table(title="stock per lot (first expiry first)", title_justify="left")
    for column in ("ingredient", "lot", "expires", "status", "on hand", "reserved", "available", "unit"):
        table.add_column(column, justify="right" if column in ("on hand", "reserved", "available") else "left")
    for lot in lots:
        table.add_row(lot.ingredient, lot.lot_number, lot.expires_on.isoformat(), lot.status, f"{lot.on_hand:g}", f"{lot.reserved:g}", f"{lot.available:g}", lot.unit,
                      style=None if lot.usable else "dim")
    summary = Table(title="usable stock per ingredient", title_justify="left")
    for column in ("ingredient", "on hand", "reserved", "available", "unit"):
        summary.add_column(column, justify="left" if column in ("ingredient", "unit") else "right")
    for name, total in sorted(totals.items()):
        summary.add_row(name, f"{total.on_hand:g}", f"{total.reserved:g}", f"{total.available:g}", total.unit)
    _console().print(Group(table, summary))


async def _stock(settings: Settings, ingredients: set[str] | None) -> list:
    from services.inventory.stock import stock_levels
    from shared.runtime import store

    client = store.connect(settings.mongodb_url, "clinic-cli")
    try:
        return await stock_levels(store.database(client, settings.database("inventory")), datetime.now(UTC).date(), ingredients)
    finally:
        await client.close()
