"""Asynchronous effects are awaited by polling with a deadline, never by sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> T:
    """Returns the probe's first truthy result; fails with the last result when the deadline passes.

    A probe that itself hangs is cut off at the deadline too, so a wait can never outlive it."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        remaining = deadline - time.monotonic()
        task = asyncio.ensure_future(probe())
        done, _ = await asyncio.wait({task}, timeout=max(remaining, 0.5))
        if task not in done:  # abandoned rather than awaited: a probe may not honour cancellation
            task.cancel()
            raise AssertionError(f"{what} not reached within {timeout}s: the last check itself did not return")
        last = task.result()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last value: {last!r}")
        await asyncio.sleep(interval)
