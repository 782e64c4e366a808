"""History for the benchmark: events handled by the real system before the measured run.

History is made by driving the services, never by writing into their collections (whose layouts may
change): journeys at high concurrency, each followed by the treatment room completing every session
(SessionCompleted with the lots reserved), so that every service's store holds what a busy clinic's
would (consultations, courses and calendar, ledger and reservations, aftercare plans and check-ins).
Loading stops when the services' clinic_events_handled_total, summed over the four, reaches the target.

A loaded deployment can be kept (`--keep`) and measured again later (`--reuse PREFIX`); the number of
history events it holds is remembered in bench/results/<prefix>/history.json, so `--history N --reuse
PREFIX` only loads what is missing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import traffic
from bench.system import RESULTS, BenchError, Services
from bench.traffic import STOCK_LASTS, Driver, Journey, deliver, stock_delivery, stock_units

WEEKS_PER_PHASE = 4
"""With --history-weeks, the services' clocks move this far between phases of the history."""
SESSIONS_GUESS = 6
"""Sessions of the approvable patient's plan (moderate androgenetic alopecia), until its approval says."""
MIN_EVENTS_PER_JOURNEY = 8
"""Fewest handled events a journey can make (consultation 1, scheduling 1, inventory 6 for 6 sessions):
the stock delivered for a history is sized on it, so the history never runs out."""


def events_of(journey: Journey) -> int:
    """Handled events a journey with completions makes: the consultation (1), its approval at scheduling
    (1), a reservation per session at inventory, and each completion at scheduling, inventory and
    aftercare."""
    sessions = journey.sessions or SESSIONS_GUESS
    return 2 + 4 * sessions


def still_to_handle(journey: Journey) -> int:
    """Events of `journey` not handled yet, judged by what the services have published for it."""
    seen = (
        (journey.plan is not None)
        + bool(journey.scheduled)
        + len(journey.reserved)
        + len(journey.consumed)
        + len(journey.issued)
        + (len(journey.scheduled) if journey.course_completed else 0)
    )
    return max(0, events_of(journey) - seen)


def manifest_path(prefix: str) -> Path:
    return RESULTS / prefix / "history.json"


def read_manifest(prefix: str) -> dict[str, Any] | None:
    try:
        return json.loads(manifest_path(prefix).read_text())
    except (OSError, ValueError):
        return None


REORDER_RUNS = 4
"""A kept deployment whose stock runs low is delivered enough for this many runs like the one at hand."""


def stock_left(manifest: dict[str, Any] | None) -> int | None:
    """Journeys a kept deployment's shelf still covers (``traffic.STOCK_LASTS``): 0 for a new deployment (no
    manifest yet), None when not known (a deployment kept before it was counted: its next measured run
    delivers, and counting starts there)."""
    if manifest is None:
        return 0
    left = manifest.get("stock_journeys_left")
    return None if left is None else int(left)


def reorder(shelf: int | None, needed: int, *, kept: bool) -> tuple[int, int | None]:
    """(journeys to deliver stock for, journeys a kept deployment's stock covers after the run) for a measured
    run of ``needed`` journeys, ``shelf`` being what it covers before (``stock_left``). A run that is not
    kept, or one whose shelf is not known, is delivered for (and counting starts there when kept); a kept
    one whose shelf covers the run gets nothing, and one whose shelf does not gets enough for
    ``REORDER_RUNS`` such runs, as a clinic reorders when low, so measuring a deployment again does not add
    a lot of every ingredient each time."""
    if shelf is not None and shelf >= needed:
        return 0, shelf - needed
    short = needed - (shelf or 0)  # a shelf below zero (history journeys beyond what was counted) is made good too
    if not kept:
        return short, None
    ordered = max(short, REORDER_RUNS * needed)  # a clinic orders for a while, not for the next day
    return ordered, (shelf or 0) + stock_units(ordered) * STOCK_LASTS - needed


def write_manifest(prefix: str, **fields: Any) -> dict[str, Any]:
    manifest = {**(read_manifest(prefix) or {}), **fields, "prefix": prefix, "updated": datetime.now(UTC).isoformat(timespec="seconds")}
    path = manifest_path(prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2))
    return manifest


async def load(
    services: Services,
    driver: Driver,
    *,
    target: int,
    already: int,
    concurrency: int,
    tag: str,
    say: Callable[[str], None],
    record: Callable[[int], None],
) -> dict[str, Any]:
    """Drive journeys with completions until `target` events have been handled in total (`already`
    counts what the deployment held before). `record(total)` is called as the total grows."""
    started = time.perf_counter()
    at_start = await services.handled_total()
    stocked = -(-(target - already) // MIN_EVENTS_PER_JOURNEY)
    await deliver(driver.client, stock_delivery(tag, stocked))
    state = {"handled": 0.0, "stop": False}

    def total() -> float:
        return already + state["handled"]

    async def poll() -> None:
        try:
            while not state["stop"]:
                services.check_alive()
                state["handled"] = await services.handled_total() - at_start
                record(int(total()))
                await asyncio.sleep(1.0)
        except BenchError as error:
            driver.abort(str(error))
            raise

    def keep_going() -> bool:
        # what the journeys in flight will still bring, from what each has been seen to get through
        coming = sum(still_to_handle(j) for j in list(driver.tracker.journeys.values()))
        return total() + coming < target

    last = {"at": started, "handled": 0.0}

    def progress(d: Driver, elapsed: float) -> None:
        now = time.perf_counter()
        rate = (state["handled"] - last["handled"]) / max(1e-9, now - last["at"])
        last.update(at=now, handled=state["handled"])
        overall = state["handled"] / max(1e-9, elapsed)
        failed = sum(1 for j in d.finished if j.failure is not None)
        if keep_going():
            eta = f"ETA {_duration((target - total()) / overall if overall > 0 else float('inf'))}"
        else:
            eta = "no more journeys started, waiting for those in flight"
        say(
            f"  history {total():>9,.0f}/{target:,} events ({total() / target:6.1%}), {rate:6.1f} events/s now, {overall:6.1f} overall; "
            f"journeys {len(d.finished):,} done ({failed} failed), {d.in_flight} in flight; {eta}"
        )

    poller = asyncio.create_task(poll())
    try:
        outcome = await driver.run(concurrency=concurrency, keep_going=keep_going, complete=True, progress=progress, every=5.0)
    finally:
        state["stop"] = True
        [stopped] = await asyncio.gather(poller, return_exceptions=True)
    if isinstance(stopped, BaseException):
        raise stopped
    say("  history journeys finished; waiting for the services to go quiet")
    await services.settle(say=say)
    state["handled"] = await services.handled_total() - at_start
    record(int(total()))
    seconds = time.perf_counter() - started
    return {
        "target_events": target,
        "events_before": already,
        "events_loaded": int(state["handled"]),
        "events_total": int(total()),
        "journeys": len(outcome.journeys),
        "journeys_completed": len(outcome.completed),
        "stock_for_journeys": stock_units(stocked) * STOCK_LASTS,
        "failures": outcome.failures,
        "seconds": round(seconds, 1),
        "events_per_second": round(state["handled"] / seconds, 1) if seconds else None,
    }


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


async def move_clock(services: Services, offset: timedelta, say: Callable[[str], None]) -> None:
    """Restart the services with their clocks `offset` ahead of the machine's (and our events with them)."""
    traffic.CLOCK["offset"] = offset
    services.extra_env["CLINIC_CLOCK_OFFSET_SECONDS"] = str(offset.total_seconds())
    say(f"  clinic clock: {offset.days} days ahead; restarting the services")
    services.stop()
    await asyncio.to_thread(services.start)
