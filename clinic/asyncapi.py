"""The system's AsyncAPI document: which services there are, what each consumes (from its handlers), and the
committed file under asyncapi/ that the contract tests keep current.

    python -m clinic.asyncapi [--check]      (make asyncapi; make lint-asyncapi runs the official parser)
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from shared.contracts import EventData
from shared.contracts.asyncapi import specification as build

SERVICES = ("consultation", "scheduling", "inventory", "aftercare")
DOCUMENT = Path(__file__).resolve().parent.parent / "asyncapi" / "clinic.asyncapi.json"


def consumed_by(service: str) -> list[type[EventData]]:
    try:  # the app module wires every handler module of the service
        importlib.import_module(f"services.{service}.app")
        module = importlib.import_module(f"services.{service}.handlers")
    except ModuleNotFoundError:
        return []
    return [model for model, _ in module.handlers.by_type.values()]


def specification(services: tuple[str, ...] = SERVICES, bootstrap: str = "kafka:9092") -> dict[str, Any]:
    """The whole system's document, or one service's."""
    return build({service: consumed_by(service) for service in services}, bootstrap)


def render(services: tuple[str, ...] = SERVICES) -> str:
    return json.dumps(specification(services), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        current = DOCUMENT.read_text() if DOCUMENT.exists() else ""
        if current != render():
            print(f"{DOCUMENT} is stale; run `make asyncapi`", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.parent.mkdir(exist_ok=True)
    DOCUMENT.write_text(render())
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
