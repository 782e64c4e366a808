"""A minimal service on the real runtime, for testing the runtime itself.

It reacts to SideEffectReported by saving a note and publishing an AdverseEventEscalated for the same
patient. ``CLINIC_PROBE_CRASH`` makes the process kill itself at a chosen point, to prove that the
inbox and outbox heal a crash (see test_runtime_crash.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from shared.contracts import REGISTRY, EventData, examples
from shared.envelope import CloudEvent
from shared.runtime import Effects, Handlers, Runtime, Service, store

INBOUND = REGISTRY.by_name("SideEffectReported")
OUTBOUND = REGISTRY.by_name("AdverseEventEscalated")
handlers = Handlers("probe")
calls: list[str] = []


def inbound(patient_id: str, **changes: Any) -> EventData:
    return INBOUND.model_validate({**examples(INBOUND)[0], "patient_id": patient_id, **changes})


def outbound(patient_id: str) -> EventData:
    return OUTBOUND.model_validate({**examples(OUTBOUND)[0], "patient_id": patient_id})


@handlers.on(INBOUND)
async def on_inbound(event: CloudEvent, deps: Any) -> Effects:
    calls.append(event.id)
    patient = event.data.patient_id
    return Effects().put("notes", event.id, {"patient_id": patient}).emit(outbound(patient))


async def no_dependencies(runtime: Runtime) -> None:
    return None


def create(settings, clock=None) -> Service:
    return Service(handlers, no_dependencies, settings=settings, clock=clock)


def _crash_at(point: str) -> None:
    """Patch the runtime so the process dies by SIGKILL at ``point`` (no cleanup, like a power cut)."""

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "before-publish":  # state written, the event it decided not sent yet
        original = store.apply

        async def apply_then_die(*args: Any, **kwargs: Any) -> Any:
            await original(*args, **kwargs)
            die()

        store.apply = apply_then_die
    elif point == "mid-apply":  # effects recorded in the inbox, not yet applied
        async def record_then_die(*args: Any, **kwargs: Any) -> dict:
            document = await original_record(*args, **kwargs)
            die()
            return document

        original_record = store.record
        store.record = record_then_die
    else:
        raise SystemExit(f"unknown crash point {point!r}")


async def _main() -> None:
    from shared.runtime.logs import configure
    from shared.settings import Settings

    configure("INFO")
    if point := os.environ.get("CLINIC_PROBE_CRASH"):
        _crash_at(point)
    await create(Settings()).run_forever()


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
