"""Export one JSON Schema per event, so other clinic systems can validate before they publish.

    python -m shared.contracts.schemas [--check] [DIR]

Without ``--check`` the files in DIR (default: the repo's ``schemas/``) are rewritten; with it, nothing is
written and the exit status is 1 when a file is stale, missing or extra.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from shared.contracts import REGISTRY
from shared.contracts.base import EventData

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "schemas"
_SCHEMA_FILE = re.compile(r"^clinic\..+\.json$")


def schema_of(model: type[EventData]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": model.event_type,
        **schema,
        "x-topic": model.event_type,
        "x-producer": model.producer,
        "x-key": model.key_field,
        "x-subject": model.subject_field,
    }


def render(models: Iterable[type[EventData]] = REGISTRY) -> dict[str, str]:
    """File name -> file content, for every event."""
    return {f"{m.event_type}.json": json.dumps(schema_of(m), indent=2, sort_keys=True) + "\n" for m in models}


def export(directory: Path | str = DEFAULT_DIR) -> list[str]:
    """Write every schema into ``directory`` and remove schema files of events that no longer exist."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = render()
    for name, content in files.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
    for extra in _existing(directory) - files.keys():
        (directory / extra).unlink()
    return sorted(files)


def check(directory: Path | str = DEFAULT_DIR) -> list[str]:
    """Problems that ``export`` would fix, one line each; empty when the directory is current."""
    directory = Path(directory)
    files = render()
    existing = _existing(directory)
    problems = [f"missing: {name}" for name in sorted(files.keys() - existing)]
    problems += [f"extra: {name}" for name in sorted(existing - files.keys())]
    problems += [
        f"stale: {name}"
        for name in sorted(files.keys() & existing)
        if (directory / name).read_text(encoding="utf-8") != files[name]
    ]
    return problems


def _existing(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {p.name for p in directory.iterdir() if p.is_file() and _SCHEMA_FILE.match(p.name)}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m shared.contracts.schemas", description="Export the events' JSON Schemas.")
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 when stale, missing or extra")
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR, help=f"default: {DEFAULT_DIR}")
    args = parser.parse_args(argv)
    if args.directory.exists() and not args.directory.is_dir():
        parser.error(f"{args.directory} is not a directory")
    try:
        if args.check:
            problems = check(args.directory)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print(f"{len(problems)} schema files out of date; run: python -m shared.contracts.schemas", file=sys.stderr)
            return 1 if problems else 0
        written = export(args.directory)
    except OSError as error:
        parser.error(f"{args.directory}: {error.strerror or error}")
    print(f"{len(written)} schemas current in {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
