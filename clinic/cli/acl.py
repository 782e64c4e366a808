"""`clinic acl`: the Kafka ACLs of least privilege, derived from the contracts; listed, and applied by the admin."""

from __future__ import annotations

from typing import Annotated

import typer
from aiokafka.errors import SecurityDisabled

from clinic import access
from clinic.cli import common
from clinic.cli.common import EXIT_CODES, Bootstrap, Json
from shared.runtime.kafka_client import Kafka
from shared.settings import Settings

app = typer.Typer(help="Kafka ACLs per principal (services, operator, integrator, viewer), derived from the contracts.", no_args_is_help=True, epilog=EXIT_CODES)


@app.command("list")
def list_(
    role: Annotated[str | None, typer.Option("--principal", help=f"Only this role: {', '.join(access.ROLES)}.", show_default="all")] = None,
    as_json: Json = False,
) -> None:
    """Every ACL the deployment (its CLINIC_TOPIC_PREFIX) needs: who may read, write or create what."""
    if role is not None and role not in access.ROLES:
        raise typer.BadParameter(f"unknown role {role!r}; one of {', '.join(access.ROLES)}", param_hint="--principal")
    chosen = [g for g in access.grants(Settings().topic_prefix) if role is None or g.principal == access.principal(role)]
    if as_json:
        common.echo_json([vars(g) for g in chosen])
        return
    for grant in chosen:
        typer.echo(str(grant))


@app.command("apply")
def apply(bootstrap: Bootstrap = None) -> None:
    """As the admin (CLINIC_KAFKA_USERNAME=clinic-admin): create every topic of the deployment with its
    retention and min.insync.replicas, and every ACL. Safe to run again."""
    found = common.settings(bootstrap)
    created, grants = common.run("acl apply", _apply(found), found)
    principals = len({g.principal for g in grants})
    typer.echo(f"created {len(created)} topic(s); {len(grants)} ACLs in place for {principals} principals on Kafka at {found.kafka_bootstrap_servers}")


async def _apply(found: Settings) -> tuple[list[str], list[access.Grant]]:
    try:
        return await access.apply(Kafka.of(found), found)
    except SecurityDisabled as error:
        common.fail("acl apply", f"Kafka at {found.kafka_bootstrap_servers}: {error}")
