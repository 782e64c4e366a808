"""`clinic export fhir PATIENT_ID`: a patient's course as a FHIR R4 Bundle for the clinic's EHR."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

from clinic import fhir
from clinic.cli import common
from clinic.cli.common import EXIT_CODES, Bootstrap, Json
from shared.runtime.kafka_client import Kafka

app = typer.Typer(help="Export a patient's record for other clinic systems.", no_args_is_help=True, epilog=EXIT_CODES)
PATIENT_ID = re.compile(r"^pt_[A-Za-z0-9]{8,40}$")


@app.command("fhir", epilog=EXIT_CODES)
def fhir_bundle(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT_ID", help="Pseudonymous patient id, e.g. pt_7Q2M9K4X.", show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write the Bundle to FILE instead of standard output.")] = None,
    as_json: Json = False,
    bootstrap: Bootstrap = None,
) -> None:
    """The patient's course as a FHIR R4 Bundle (type collection): CarePlan, Appointment (a version per
    state), MedicationAdministration (with lot numbers) and AdverseEvent, built from the patient's events.

    It covers what the topics still retain. The Bundle goes to standard output, or to --output FILE with a
    one-line summary (as JSON with --json). An unknown patient (no events on the topics) exits 1."""
    if not PATIENT_ID.fullmatch(patient_id):
        raise typer.BadParameter(f"{patient_id!r} is not a patient id (pt_ and 8-40 letters or digits)", param_hint="PATIENT_ID")
    found = common.settings(bootstrap)
    try:
        exported = common.run("export fhir", fhir.export(Kafka.of(found), found.topic_prefix, patient_id), found)
    except fhir.UnknownPatient as error:
        common.fail("export fhir", f"{error} on Kafka at {found.kafka_bootstrap_servers}")
    document = json.dumps(exported.bundle, indent=2)
    if output is None:
        typer.echo(document)
        return
    output.write_text(document + "\n")
    summary = {"patient_id": patient_id, "file": str(output), "events": exported.events, "undecodable": exported.undecodable, "resources": exported.counts()}
    if as_json:
        common.echo_json(summary)
    else:
        counts = ", ".join(f"{n} {kind}" for kind, n in exported.counts().items())
        skipped = f"; {exported.undecodable} undecodable records skipped" if exported.undecodable else ""
        typer.echo(f"wrote a FHIR R4 Bundle of {patient_id} to {output}: {counts} (from {exported.events} events{skipped})")
