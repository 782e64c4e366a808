"""A stopping service is not held up by its own tasks (docs/liveness.md, cause 7).

A fresh-clone run hung 300 s in ``Service.stop()``: the outbox relay was woken in the same loop step as
it was cancelled, Python 3.11's ``asyncio.wait_for`` dropped the cancellation, and the relay went on
polling while ``stop()`` waited for it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from shared.clock import SystemClock
from shared.runtime.relay import OutboxRelay
from shared.runtime.service import stop_tasks

DEADLINE = 10.0
"""Fails the test instead of hanging it; the relay under test polls every 60 s."""


def idle_relay() -> OutboxRelay:
    """A relay with nothing due that never needs the store or the broker: it only waits to be woken."""
    relay = OutboxRelay(None, None, SystemClock(), service="probe", poll_seconds=60.0, batch_size=10, retry_cap=1.0)  # type: ignore[arg-type]
    relay._loaded_for = frozenset()
    relay._loaded_at = time.monotonic()
    return relay


async def until_waiting(task: asyncio.Task[Any], where: str) -> None:
    """Let ``task`` run until it is suspended in ``where`` (a function name on its stack)."""
    deadline = time.monotonic() + DEADLINE
    while not any(frame.f_code.co_name == where for frame in task.get_stack()):
        assert time.monotonic() < deadline, f"{task.get_name()} never reached {where}"
        await asyncio.sleep(0)


async def test_a_relay_woken_as_it_is_cancelled_stops():
    relay = idle_relay()
    task = asyncio.create_task(relay.run(), name="probe-relay")
    await until_waiting(task, "run")
    for _ in range(3):  # into the wait for a wake-up
        await asyncio.sleep(0)

    relay.nudge()  # the same loop step: the wake-up is delivered first, then the cancellation
    task.cancel()

    done, _ = await asyncio.wait({task}, timeout=DEADLINE)
    assert task in done, "the relay swallowed its cancellation and kept running"
    assert task.cancelled()


async def test_a_task_that_ignores_its_cancellation_is_named_and_left_behind(caplog):
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                continue

    obedient = asyncio.create_task(asyncio.Event().wait(), name="obedient")
    stuck = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR):
        await asyncio.wait_for(stop_tasks([obedient, stuck], logging.getLogger("clinic.probe"), seconds=0.05), DEADLINE)

    assert obedient.cancelled()
    assert not stuck.done()
    [record] = [r for r in caplog.records if r.getMessage() == "task did not stop"]
    assert record.task == "stubborn"
    assert "test_service_stop.py" in record.waiting_at
    release.set()
    stuck.cancel()
    await asyncio.wait({stuck}, timeout=DEADLINE)
    assert stuck.done()
