"""`clinic`: the one command-line tool for operators and integrators."""

from __future__ import annotations

import logging
import sys

import typer

from shared.cli import events, infra, ops, outbox, stack

app = typer.Typer(
    help="Clinic workflow backbone: local infrastructure, event contracts, publishing and watching topics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("run")(stack.run)
app.command("up")(stack.up)
app.command("down")(stack.down)
app.add_typer(infra.app, name="infra")
app.command("events")(events.events)
app.command("publish")(events.publish)
app.command("tail")(ops.tail)
app.command("lag")(ops.lag)
app.command("monitor")(ops.monitor)
app.command("stock")(ops.stock)
app.add_typer(ops.dlq, name="dlq")
app.add_typer(outbox.app, name="outbox")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a usage error is one line on stderr and exit status 2, never a traceback."""
    # the commands say in one line what failed; the client library's own connection errors would repeat it
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    logging.getLogger("aiokafka").propagate = False
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="clinic", standalone_mode=False)
    except typer.TyperException as error:  # usage errors and bad parameters
        ctx = getattr(error, "ctx", None)
        where = ctx.command_path if ctx is not None else "clinic"
        hint = f" (see '{where} --help')" if error.exit_code == 2 else ""
        typer.echo(f"{where}: {error.format_message()}{hint}", err=True)
        return error.exit_code
    except typer.Exit as error:
        return error.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("clinic: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
