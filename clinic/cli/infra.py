"""`clinic infra`: the local Kafka broker and FerretDB store, started without Docker."""

from __future__ import annotations

from typing import Annotated

import typer

from clinic.cli.common import EXIT_CODES, Json, echo_json
from infra import local

app = typer.Typer(help="Local Kafka and MongoDB-compatible store (no Docker needed).", no_args_is_help=True, epilog=EXIT_CODES)

KafkaPort = Annotated[int | None, typer.Option("--kafka-port", min=1, max=65535, show_default="9092 or $CLINIC_KAFKA_PORT", help="Kafka listener port.")]
MongoPort = Annotated[int | None, typer.Option("--mongo-port", min=1, max=65535, show_default="27017 or $CLINIC_MONGO_PORT", help="FerretDB port.")]
ControllerPort = Annotated[int | None, typer.Option("--controller-port", min=1, max=65535, show_default="Kafka port + 1", help="KRaft controller port.")]


def _err(message: str) -> None:
    typer.secho(message, err=True, fg=typer.colors.YELLOW)


@app.command()
def up(kafka_port: KafkaPort = None, mongo_port: MongoPort = None, controller_port: ControllerPort = None) -> None:
    """Fetch/build what is missing, start Kafka and FerretDB, wait until both answer, print the endpoints."""
    layout = local.Layout.from_env(kafka_port=kafka_port, mongo_port=mongo_port, controller_port=controller_port)
    try:
        local.up(layout, say=_err)
    except local.InfraError as error:
        _err(f"infra up failed: {error}")
        raise typer.Exit(1) from None
    typer.echo(layout.env_lines())


@app.command()
def down(wipe: Annotated[bool, typer.Option("--wipe", help="Also delete the broker's and store's data.")] = False) -> None:
    """Stop the local Kafka and FerretDB started by `clinic infra up`."""
    local.down(local.Layout.from_env(), say=_err, wipe=wipe)


@app.command()
def status(kafka_port: KafkaPort = None, mongo_port: MongoPort = None, as_json: Json = False) -> None:
    """Say whether the local Kafka and FerretDB are running; exit status 1 when either is not."""
    layout = local.Layout.from_env(kafka_port=kafka_port, mongo_port=mongo_port)
    states = local.status(layout)
    if as_json:
        echo_json({name: {"running": state.startswith("running"), "status": state} for name, state in states.items()})
    else:
        for name, state in states.items():
            typer.echo(f"{name:<9} {state}")
    if not all(s.startswith("running") for s in states.values()):
        raise typer.Exit(1)
