"""`clinic`: the one command-line tool for operators and integrators."""

from __future__ import annotations

import typer

from shared.cli import infra

app = typer.Typer(
    help="Clinic workflow backbone: local infrastructure, event contracts, publishing and watching topics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(infra.app, name="infra")


if __name__ == "__main__":
    app()
