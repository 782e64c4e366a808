"""`clinic`: the one command-line tool for operators and integrators."""

from __future__ import annotations

import logging
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer
from pydantic import ValidationError

from clinic.cli import acl, events, export, forecast, infra, ops, outbox, stack
from clinic.cli.common import EXIT_CODES, INTERRUPTED, USAGE
from shared.settings import explain

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: defaults show as [default: ...] and nothing is cut at the terminal's edge
    epilog=EXIT_CODES + " Shell completion: clinic --install-completion.",
)
app.command("run", epilog=EXIT_CODES)(stack.run)
app.command("up", epilog=EXIT_CODES)(stack.up)
app.command("down", epilog=EXIT_CODES)(stack.down)
app.add_typer(infra.app, name="infra")
app.command("events", epilog=EXIT_CODES)(events.events)
app.command("publish", epilog=EXIT_CODES)(events.publish)
app.command("tail", epilog=EXIT_CODES)(ops.tail)
app.command("lag", epilog=ops.LAG_EXITS)(ops.lag)
app.command("monitor", epilog=EXIT_CODES)(ops.monitor)
app.add_typer(forecast.app, name="stock")
app.add_typer(ops.dlq, name="dlq")
app.add_typer(outbox.app, name="outbox")
app.add_typer(acl.app, name="acl")
app.add_typer(export.app, name="export")


def _version() -> str:
    try:
        return version("clinic-backbone")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"clinic {_version()}")
        raise typer.Exit()


@app.callback()
def clinic(
    show_version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Clinic workflow backbone: local infrastructure, event contracts, publishing and watching topics."""


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
        message = error.format_message().strip()
        if error.__class__.__name__ == "NoArgsIsHelpError":  # `clinic`, `clinic dlq`: the help says it all
            if message:
                typer.echo(message, err=True)
            return error.exit_code
        where = ctx.command_path if ctx is not None else "clinic"
        hint = f" (see '{where} --help')" if error.exit_code == 2 else ""
        typer.echo(f"{where}: {message}{hint}", err=True)
        return error.exit_code
    except typer.Exit as error:
        return error.exit_code
    except SystemExit as error:  # shell completion ends this way
        return error.code if isinstance(error.code, int) else 0 if error.code is None else 1
    except ValidationError as error:  # settings from the environment: which one, never its value
        typer.echo(f"clinic: {explain(error)}", err=True)
        return USAGE
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("clinic: interrupted", err=True)
        return INTERRUPTED
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
