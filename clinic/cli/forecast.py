"""`clinic stock`: the stock now (`clinic stock [INGREDIENT...]`, the default `levels`) and the stock
forecast (`clinic stock forecast`), asked of the inventory service through the event bus."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import click
import typer
from pydantic import ValidationError
from rich.console import Group
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from clinic.cli import common, ops
from clinic.cli.common import EXIT_CODES, Bootstrap, Json
from shared.contracts.inventory import DEFAULT_FORECAST_WEEKS, MAX_FORECAST_WEEKS, StockForecast, StockForecastRequested
from shared.runtime.kafka_client import Kafka


class StockGroup(TyperGroup):
    """`clinic stock ARGS` is `clinic stock levels ARGS` unless ARGS begin with a subcommand (or ask for help)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["levels", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=StockGroup, help="Stock per lot and ingredient now (levels, the default), and the forecast of booked demand (forecast).", epilog=EXIT_CODES
)
app.command("levels", epilog=EXIT_CODES)(ops.stock)


@dataclass(frozen=True)
class Refused(Exception):
    reason: str
    error: str


@app.command("forecast", epilog=EXIT_CODES)
def forecast(
    ingredient: Annotated[
        str | None, typer.Option("--ingredient", "-i", metavar="CODE", help="Only this ingredient (a formulary code, e.g. minoxidil).", show_default="every ingredient")
    ] = None,
    weeks: Annotated[int, typer.Option(min=1, max=MAX_FORECAST_WEEKS, help="ISO weeks ahead, the current one first.")] = DEFAULT_FORECAST_WEEKS,
    timeout: Annotated[float, typer.Option(min=1, max=600, help="Seconds to wait for the inventory service's answer.")] = 30.0,
    as_json: Json = False,
    bootstrap: Bootstrap = None,
) -> None:
    """The stock forecast per ingredient, week by week: demand of the sessions already booked, stock usable
    that week (lots in date, not recalled or quarantined), balance, the first shortage and the date by which
    to reorder (its lead time before).

    It publishes StockForecastRequested and prints inventory's StockForecast answers (the inventory service
    must be running). An ingredient inventory does not stock exits 1 with its reason; so does no answer
    within --timeout."""
    try:
        request = StockForecastRequested(request_id=f"fcr_{secrets.token_hex(8)}", ingredient=ingredient, weeks=weeks, requested_at=datetime.now(UTC))
    except ValidationError:
        raise typer.BadParameter(f"{ingredient!r} is not an ingredient code (lowercase letters, digits and _)", param_hint="--ingredient") from None
    found = common.settings(bootstrap)
    try:
        answers = common.run("stock forecast", ask(Kafka.of(found), found.topic_prefix, request, timeout), found)
    except Refused as refused:
        common.fail("stock forecast", f"inventory refused the request ({refused.reason}): {refused.error}")
    except AssertionError:
        common.fail("stock forecast", f"no answer from the inventory service within {timeout:g}s; is it running? (clinic lag --group clinic.inventory)")
    if as_json:
        common.echo_json([a.model_dump(mode="json") for a in answers])
        return
    common.console().print(Group(*(part for answer in answers for part in render(answer))))


async def ask(kafka: Kafka, prefix: str, request: StockForecastRequested, timeout: float) -> list[StockForecast]:
    """Publish the request; inventory's answers (one StockForecast per ingredient), or Refused with the dead
    letter's reason."""
    from clinic.client import EventClient
    from clinic.operations import DeadLetter
    from clinic.polling import eventually

    async with EventClient(kafka, prefix) as client:
        event = await client.publish(request, source="/clinic/cli")

        async def answered() -> list[StockForecast] | None:
            for record in await client.dead_letters(StockForecastRequested):
                letter = DeadLetter.of(record)
                if letter.event_id == event.id:
                    raise Refused(letter.reason, letter.error)
            mine = {e.data.ingredient: e.data for e in await client.events(StockForecast, lambda d: d.request_id == request.request_id)}
            if mine and len(mine) >= next(iter(mine.values())).answers:
                return [mine[code] for code in sorted(mine)]
            return None

        return await eventually(answered, timeout=timeout, interval=0.3, what="the inventory service's answer")


def render(answer: StockForecast) -> list[Any]:
    unit = answer.unit.value
    title = (
        f"{answer.ingredient} ({unit}): usable now {answer.usable_now:g}, reorder point {answer.reorder_point:g}, "
        f"reorder lead time {answer.reorder_lead_days} days"
    )
    table = Table(title=title, title_justify="left")
    for column in ("week of", "sessions", "demand", "usable", "balance", "shortage", "reorder by"):
        table.add_column(column, justify="right" if column in ("sessions", "demand", "usable", "balance") else "left")
    shortage = answer.shortage
    for week in answer.weeks:
        marker = f"SHORT {week.shortfall:g}" if week.shortfall > 0 else ("below reorder point" if week.below_reorder_point else "")
        reorder = ""
        if shortage is not None and week.week_starting == shortage.week_starting:
            reorder = shortage.reorder_by.isoformat() + (" (overdue)" if shortage.reorder_overdue else "")
        table.add_row(
            week.week_starting.isoformat(), str(week.sessions), f"{week.demand:g}", f"{week.usable:g}", f"{week.balance:g}", marker, reorder,
            style="bold red" if week.shortfall > 0 else None,
        )
    if shortage is None:
        summary = Text(f"{answer.ingredient}: no shortage within {len(answer.weeks)} weeks")
    else:
        overdue = " (already past: order now)" if shortage.reorder_overdue else ""
        summary = Text(
            f"{answer.ingredient}: SHORT from {shortage.short_from.isoformat()} ({shortage.weeks_ahead} weeks ahead), {shortage.missing:g} {unit} missing; "
            f"reorder by {shortage.reorder_by.isoformat()}{overdue}",
            style="bold red",
        )
    return [table, summary, Text("")]
