"""Operator commands: `tail`, `lag`, `dlq list`, `dlq replay`, `monitor`, `stock`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from aiokafka import ConsumerRecord
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from clinic import operations
from clinic.cli import common
from clinic.cli.common import EXIT_CODES, Bootstrap, Json
from shared.contracts import DLQ_SUFFIX
from shared.envelope import CloudEvent, InvalidEvent, decode, to_structured
from shared.runtime.kafka_client import Kafka
from shared.settings import Settings

dlq = typer.Typer(help="Dead letters: list them, replay them after a fix.", no_args_is_help=True, epilog=EXIT_CODES)


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
    topic: Annotated[list[str] | None, typer.Argument(help="Topics or event names (e.g. session-completed); every clinic topic when omitted.", show_default=False)] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only this CloudEvents type.")] = None,
    patient: Annotated[str | None, typer.Option(help="Only events keyed by this pseudonymous patient id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One structured-mode CloudEvent per line, for scripts.")] = False,
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Start at the oldest retained event (same as --offset earliest).")] = False,
    partition: Annotated[int | None, typer.Option("--partition", min=0, help="Only this partition of each topic.")] = None,
    offset: Annotated[str | None, typer.Option("--offset", metavar="OFFSET", show_default="latest",
                                               help="Where to start in --partition: an offset, 'earliest' or 'latest'.")] = None,
    exit_at_end: Annotated[bool, typer.Option("--exit-at-end", help="Stop at the end of the topics as they are now, instead of waiting for more.")] = False,
    limit: Annotated[int | None, typer.Option("--max-messages", "--max", min=1, help="Stop after this many events (--max is the old name).")] = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Print decoded CloudEvents as they arrive (Ctrl-C to stop)."""
    start: str | int = "earliest" if from_beginning else "latest"
    if offset is not None:
        if from_beginning:
            raise typer.BadParameter("give --from-beginning or --offset, not both", param_hint="--offset")
        if partition is None:
            raise typer.BadParameter("an offset is per partition; give --partition too", param_hint="--offset")
        start = _offset(offset)
    found = common.settings(bootstrap)
    names = [common.topic(n, found.topic_prefix) for n in topic] if topic else None
    common.run("tail", _tail(found, names, type_, patient, as_json, start, limit, partition=partition, to_end=exit_at_end), found)


def _offset(value: str) -> str | int:
    if value in ("earliest", "latest"):
        return value
    if value.isdigit():
        return int(value)
    raise typer.BadParameter(f"{value!r} is not an offset, 'earliest' or 'latest'", param_hint="--offset")


async def _tail(
    settings: Settings, names: list[str] | None, type_: str | None, patient: str | None, as_json: bool, start: str | int, limit: int | None,
    positioned: asyncio.Event | None = None, partition: int | None = None, to_end: bool = False,
) -> None:
    prefix, kafka = settings.topic_prefix, Kafka.of(settings)
    chosen = names or [t for t in await operations.topics(kafka, prefix) if not t.endswith(DLQ_SUFFIX)]
    if not chosen:
        common.fail("tail", f"no clinic topics exist on Kafka at {settings.kafka_bootstrap_servers} yet")
    seen = 0
    follow = operations.follow(kafka, chosen, start=start, partition=partition, to_end=to_end, positioned=positioned)
    async with contextlib.aclosing(follow):  # its consumer stops here, whichever way this ends
        async for record in follow:
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


LAG_EXITS = "Exit status: 0 every group within --threshold; 1 a group's lag is above it; 3 Kafka did not answer; 2 bad usage."


def lag(
    group: Annotated[str | None, typer.Option(help="One consumer group.", show_default="every clinic group")] = None,
    threshold: Annotated[int, typer.Option(min=0, help="Exit status 1 when a group's total lag is above this.")] = 0,
    as_json: Json = False,
    bootstrap: Bootstrap = None,
) -> None:
    """Consumer lag per group and partition; the exit status tells alerting scripts whether a group is behind."""
    found = common.settings(bootstrap)
    rows = common.run("lag", _lag(found, group), found)
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.group] = totals.get(row.group, 0) + row.lag
    if as_json:
        common.echo_json({"groups": totals, "partitions": [{**row.__dict__, "lag": row.lag} for row in rows], "threshold": threshold})
    else:
        common.console().print(_lag_table(rows, totals))
    behind = {g: n for g, n in totals.items() if n > threshold}
    if behind:
        common.fail("lag", "lag above threshold: " + ", ".join(f"{g}={n}" for g, n in sorted(behind.items())), common.FAILED)


async def _lag(settings: Settings, group: str | None) -> list[operations.PartitionLag]:
    if group is not None:
        async with operations.admin(Kafka.of(settings)) as client:
            known = {g[0] for g in await client.list_consumer_groups()}
        if group not in known:
            raise typer.BadParameter(f"no consumer group {group!r} on Kafka at {settings.kafka_bootstrap_servers}; `clinic lag` lists them", param_hint="--group")
    return await operations.consumer_lag(Kafka.of(settings), settings.topic_prefix, group)


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
    topic: Annotated[str | None, typer.Argument(help="A dead-letter topic or the event name whose dead letters to list.", show_default="all")] = None,
    as_json: Json = False,
    bootstrap: Bootstrap = None,
) -> None:
    """List dead letters: where they came from and why they failed."""
    found = common.settings(bootstrap)
    chosen = common.dlq_topic(topic, found.topic_prefix) if topic else None
    letters = common.run("dlq list", operations.dead_letters(Kafka.of(found), found.topic_prefix, chosen), found)
    if as_json:
        common.echo_json([_letter(letter) for letter in letters])
        return
    again = sum(1 for letter in letters if letter.replayed_from)
    title = f"{len(letters)} dead letter(s)" + (f", {again} of them failed again after a replay" if again else "")
    table = Table(title=title, title_justify="left")
    for column in ("dead-letter topic", "offset", "from", "reason", "error", "event id", "key", "failed at"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        origin = f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}"
        if letter.replayed_from:
            origin += f" (replay of {letter.replayed_from})"
        table.add_row(letter.topic, f"{letter.partition}:{letter.offset}", origin, letter.reason, letter.error[:120], letter.event_id or "-", letter.key or "-", letter.failed_at[:19])
    common.console().print(table)


def _letter(letter: operations.DeadLetter) -> dict[str, Any]:
    return {k: v for k, v in vars(letter).items() if k != "record"}


@dlq.command("replay")
def dlq_replay(
    topic: Annotated[str, typer.Argument(help="The dead-letter topic (or the event name) to replay.")],
    reason: Annotated[list[str] | None, typer.Option("--reason", help="Only dead letters with this dlq_reason (repeatable), e.g. handler-error.", show_default=False)] = None,
    event_id: Annotated[list[str] | None, typer.Option("--event-id", help="Only the dead letter of this CloudEvents id (repeatable).", show_default=False)] = None,
    partition: Annotated[int | None, typer.Option("--partition", min=0, help="Only this partition of the dead-letter topic.")] = None,
    from_offset: Annotated[int | None, typer.Option("--from-offset", min=0, help="Only dead letters at this offset of the dead-letter topic or later.")] = None,
    to_offset: Annotated[int | None, typer.Option("--to-offset", min=0, help="Only dead letters at this offset or earlier.")] = None,
    again: Annotated[bool, typer.Option("--again", help="Also dead letters replayed before (each is otherwise replayed once).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed; publish nothing.")] = False,
    as_json: Json = False,
    bootstrap: Bootstrap = None,
) -> None:
    """Re-publish dead letters to their original topic (after the fix is deployed); all not replayed before,
    or those selected by reason, event id or offset range (every given criterion must match)."""
    if from_offset is not None and to_offset is not None and from_offset > to_offset:
        raise typer.BadParameter(f"--from-offset {from_offset} is after --to-offset {to_offset}", param_hint="--from-offset")
    found = common.settings(bootstrap)
    chosen = common.dlq_topic(topic, found.topic_prefix)
    selection = operations.Selection(frozenset(reason or ()), frozenset(event_id or ()), partition, from_offset, to_offset)
    replay = operations.replay(Kafka.of(found), chosen, dry_run=dry_run, selection=selection, again=again, group=found.group_id(operations.REPLAY_SERVICE))
    letters = common.run("dlq replay", replay, found)
    if as_json:
        common.echo_json({"topic": chosen, "dry_run": dry_run, "replayed": [_letter(letter) for letter in letters]})
        return
    verb = "would replay" if dry_run else "replayed"
    for letter in letters:
        typer.echo(f"{verb} {letter.topic}:{letter.partition}:{letter.offset} -> {letter.original_topic} ({letter.reason}, event {letter.event_id or '-'})")
    typer.echo(f"{verb} {len(letters)} dead letter(s) from {chosen}")


def monitor(
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes.")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit (for scripts and tests).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Each snapshot as one line of JSON (with --once: one snapshot).")] = False,
    bootstrap: Bootstrap = None,
) -> None:
    """A live view: per topic end offsets and rate, per group lag, dead-letter depths, last events."""
    found = common.settings(bootstrap)
    common.run("monitor", _monitor(found, interval, once, as_json), found)


async def _monitor(settings: Settings, interval: float, once: bool, as_json: bool = False) -> None:
    kafka, prefix = Kafka.of(settings), settings.topic_prefix
    last: deque[CloudEvent] = deque(maxlen=8)
    previous: dict[str, int] = {}
    previous_at = time.monotonic()
    console = common.console()
    with Live(console=console, auto_refresh=False, transient=False) if not (once or as_json) else _NoLive(console) as live:
        async with operations.reader(kafka) as consumer:
            while True:
                names = await operations.topics(kafka, prefix)
                ends = await operations.end_offsets(consumer, names)
                now = time.monotonic()
                per_topic: dict[str, int] = {}
                for tp, end in ends.items():
                    per_topic[tp.topic] = per_topic.get(tp.topic, 0) + end
                rates = {t: (n - previous.get(t, n)) / max(now - previous_at, 1e-6) for t, n in per_topic.items()}
                await _latest_events(consumer, ends, last)
                lags = await operations.consumer_lag(kafka, prefix)
                if as_json:
                    typer.echo(json.dumps(_snapshot(per_topic, rates, lags, last), separators=(",", ":")))
                else:
                    live.update(_monitor_view(per_topic, rates, lags, last), refresh=True)
                previous, previous_at = per_topic, now
                if once:
                    return
                await asyncio.sleep(interval)


def _snapshot(per_topic: dict[str, int], rates: dict[str, float], lags: list[operations.PartitionLag], last: deque[CloudEvent]) -> dict[str, Any]:
    totals: dict[str, int] = {}
    for row in lags:
        totals[row.group] = totals.get(row.group, 0) + row.lag
    return {
        "at": datetime.now(UTC).isoformat(),
        "topics": {
            t: {"events": n, "per_second": round(rates.get(t, 0.0), 2), "dead_letters": per_topic.get(t + DLQ_SUFFIX, 0)}
            for t, n in sorted(per_topic.items()) if not t.endswith(DLQ_SUFFIX)
        },
        "lag": {"groups": totals, "partitions": [{**row.__dict__, "lag": row.lag} for row in lags if row.lag > 0]},
        "last_events": [{"id": e.id, "type": e.type, "key": e.key, "time": e.time.isoformat(), "source": e.source} for e in last],
    }


async def _latest_events(consumer: Any, ends: dict, last: deque[CloudEvent]) -> None:
    recent = [(tp, end) for tp, end in ends.items() if end > 0 and not tp.topic.endswith(DLQ_SUFFIX)]
    records = await operations.read_to_end(consumer, {tp: max(0, end - 2) for tp, end in recent})
    for record in sorted(records, key=lambda r: r.timestamp)[-8:]:
        try:
            event = decode(record.value, record.headers)
        except InvalidEvent:
            continue
        if all(event.id != seen.id for seen in last):
            last.append(event)


def _monitor_view(per_topic: dict[str, int], rates: dict[str, float], lags: list[operations.PartitionLag], last: deque[CloudEvent]) -> Group:
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
    for event in last:
        recent.add_row(describe(event))
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
    ingredient: Annotated[list[str] | None, typer.Argument(help="Only these ingredient codes.", show_default="all")] = None,
    as_json: Json = False,
) -> None:
    """Current stock per lot and per ingredient, read from the inventory service's ledger."""
    found = Settings()
    lots = common.run("stock", _stock(found, set(ingredient) if ingredient else None), found)
    from services.inventory.domain import by_ingredient

    totals = by_ingredient(lots)
    if as_json:
        common.echo_json({"lots": [{**vars(lot), "expires_on": lot.expires_on.isoformat()} for lot in lots],
                          "ingredients": {k: {**vars(v), "available": v.available} for k, v in totals.items()}})
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
    common.console().print(Group(table, summary))


async def _stock(settings: Settings, ingredients: set[str] | None) -> list:
    from services.inventory.repository import stock_levels
    from shared.runtime import store

    client = store.connect(settings.mongodb_url.get_secret_value(), "clinic-cli")
    try:
        return await stock_levels(store.database(client, settings.database("inventory")), datetime.now(UTC).date(), ingredients)
    finally:
        await client.close()
