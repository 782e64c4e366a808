"""`clinic up`, `clinic down`, `clinic run`: the whole system on this machine, without Docker."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer

from clinic import stack
from clinic.cli.ops import _tail as tail_topics
from infra import local
from shared.settings import Settings

BasePort = Annotated[int, typer.Option("--http-base-port", min=1, max=65000, help="First of four ports for the services' health endpoints.")]


def _say(message: str) -> None:
    typer.secho(message, err=True, fg=typer.colors.CYAN)


def _start(base_port: int) -> tuple[local.Layout, list[stack.ServiceProcess]]:
    layout = local.Layout.from_env()
    try:
        local.up(layout, say=_say)
        env = {"KAFKA_BOOTSTRAP_SERVERS": layout.bootstrap, "MONGODB_URL": layout.mongodb_url}
        for name, port in stack.ports(base_port).items():
            if stack.running_pid(layout.state, name) is None and local._port_open("127.0.0.1", port):
                raise stack.StackError(f"port 127.0.0.1:{port} for {name} is already taken; pick other ports with --http-base-port")
        _say("starting consultation, scheduling, inventory and aftercare ...")
        processes = stack.start(env, layout.state, http_ports=stack.ports(base_port))
        stack.wait_ready(processes)
    except (local.InfraError, stack.StackError) as error:
        stack.stop(layout.state)  # leave nothing half-started behind
        typer.secho(f"clinic: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        stack.stop(layout.state)
        raise
    return layout, processes


def up(http_base_port: BasePort = stack.BASE_HTTP_PORT) -> None:
    """Start Kafka, the store and the four services in the background; print the endpoints."""
    layout, processes = _start(http_base_port)
    typer.echo(layout.env_lines())
    for service in processes:
        typer.echo(f"{service.name.upper()}_URL={service.url}  # /healthz /readyz /metrics /asyncapi.json, log {service.log}")


def down(wipe: Annotated[bool, typer.Option("--wipe", help="Also delete Kafka's and the store's data.")] = False) -> None:
    """Stop the services, then Kafka and the store."""
    layout = local.Layout.from_env()
    stopped = stack.stop(layout.state)
    if stopped:
        _say(f"stopped {', '.join(stopped)}")
    local.down(layout, say=_say, wipe=wipe)


def run(
    http_base_port: BasePort = stack.BASE_HTTP_PORT,
    journey: Annotated[bool, typer.Option("--journey/--no-journey", help="Play the sample patient journey.")] = True,
) -> None:
    """Start everything, play a sample patient journey and stream the events; Ctrl-C stops it all."""
    layout, processes = _start(http_base_port)
    for service in processes:
        _say(f"  {service.name:<13} {service.url}/readyz   log: {service.log}")
    _say("streaming every clinic topic (Ctrl-C stops everything) ...")
    settings = Settings(kafka_bootstrap_servers=layout.bootstrap, mongodb_url=layout.mongodb_url)
    try:
        asyncio.run(_run(settings, journey))
    except KeyboardInterrupt:
        pass
    finally:
        _say("stopping ...")
        stack.stop(layout.state)
        local.down(layout, say=_say)


async def _run(settings: Settings, journey: bool) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    positioned = asyncio.Event()
    tasks = [asyncio.create_task(tail_topics(settings, None, None, None, False, "latest", None, positioned), name="stream")]
    for task in tasks:
        task.add_done_callback(_report)
    if journey:
        from clinic.journey import play

        await asyncio.wait({asyncio.ensure_future(positioned.wait()), tasks[0]}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        tasks.append(asyncio.create_task(play(settings, say=_say), name="journey"))
        tasks[-1].add_done_callback(_report)
    await done.wait()
    for task in tasks:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks, return_exceptions=True)


def _report(task: asyncio.Task) -> None:
    """A failed journey or stream is said in one line; the stack keeps running until Ctrl-C."""
    if not task.cancelled() and task.exception() is not None:
        error = task.exception()
        typer.secho(f"clinic run: the {task.get_name()} stopped: {error.__class__.__name__}: {str(error)[:200]}", err=True, fg=typer.colors.RED)
