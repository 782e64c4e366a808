"""Chaos run (issue 12, item 3): journeys through the four services while instances are killed, the broker
and the store restarted; then every journey is reconciled against the topics.

    make chaos                                     # 200 journeys, a SIGKILL every 15 s
    make chaos CHAOS_ARGS="--journeys 40 --kill-every 10"
    python -m bench.chaos --help

It starts a Kafka broker and a FerretDB of its own (infra/local.py, state under
bench/results/chaos-<prefix>/infra, free ports), so other infrastructure on the machine is not touched,
then the services as processes with two instances each of inventory and scheduling (one consumer group,
own HTTP ports: `inventory`, `inventory-2`, ...). It delivers stock and drives --journeys journeys
(bench/traffic.py: ConsultationRecorded for a patient approved at once -> approval -> every session
booked -> every session's ingredients reserved); every --complete-every-th journey then completes every
session (consumption, aftercare instructions, course completion), and every second of those reports a
grade-3 allergic reaction (an escalation; at most 19, see MAX_REPORTS). Meanwhile, every --kill-every seconds one instance chosen at random is killed with
SIGKILL and started again; once a third of the journeys are published the broker is stopped for
--outage-seconds and started again on its data, once two thirds are, the store.

Then it waits until the system is quiet (every consumer group's lag 0, no outbox backlog, the handled
counts unchanged for a while; at most --settle-timeout), reads every topic from the beginning and
reconciles each journey against its inputs (bench/reconcile.py): journeys complete, effects lost,
business effects duplicated, the same event id with different content, journeys stuck, dead letters by
reason. Exit status 0 when nothing is lost, duplicated or stuck, 1 otherwise, 2 for bad arguments.
The figures go to bench/results/chaos-<time>-<prefix>.json, the service logs to
bench/results/chaos-<prefix>/logs/. Everything it started is stopped at the end (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError

from bench import traffic
from bench.journeys import OneLineParser, _count, _seconds
from bench.reconcile import READ, Report, Seen, reconcile
from bench.system import RESULTS, BenchError, Services, deployment, ensure_topics
from bench.traffic import (
    INPUTS,
    WATCHED,
    Driver,
    Journey,
    Tracker,
    deliver,
    stock_delivery,
    topics,
)
from clinic import operations
from clinic.client import EventClient
from clinic.journey import model
from infra import local as infra
from services.inventory.config import InventoryConfig
from shared.contracts import REGISTRY, topic_of
from shared.envelope import CloudEvent, InvalidEvent, decode, new_event
from shared.runtime.kafka_client import Kafka
from shared.settings import Settings
from tests.support.ports import free_ports

INSTANCES = {"inventory": 2, "scheduling": 2}
QUARANTINE_AFTER = 20
"""Escalations naming one lot before inventory quarantines it, in this run (the most its settings allow)."""
MAX_REPORTS = QUARANTINE_AFTER - 1
"""Every journey draws on the same lots, so the run reports fewer side effects than would quarantine them
(a shortage would end the journeys still in flight: a clinic's rule at work, not what this run examines)."""
QUIET_SECONDS = 10.0
"""The handled counts must stay unchanged this long (with lag 0 and no outbox backlog) to call it quiet."""


def say(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", flush=True)


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m bench.chaos",
        description="Chaos run (issue 12): journeys while service instances are killed and the broker and store restarted; every journey reconciled at the end.",
        epilog="The module docstring (bench/chaos.py) and bench/README.md explain it.",
    )
    p.add_argument("--journeys", type=_count(1), default=200, help="journeys to drive (default 200)")
    p.add_argument("--concurrency", type=_count(1), default=20, help="journeys in flight at a time (default 20)")
    p.add_argument("--kill-every", type=_seconds, default=15.0, metavar="SECONDS", help="SIGKILL one random instance this often (default 15)")
    p.add_argument("--outage-seconds", type=_seconds, default=10.0, help="how long the broker and the store are each down (default 10)")
    p.add_argument("--complete-every", type=_count(0), default=10, metavar="N", help="every N-th journey completes its sessions, every 2N-th also reports a side effect (default 10; 0: none)")
    p.add_argument("--timeout", type=_seconds, default=600.0, help="seconds the driver waits for one journey (default 600; the reconciliation decides)")
    p.add_argument("--settle-timeout", type=_seconds, default=600.0, help="seconds to wait for the system to go quiet at the end (default 600)")
    p.add_argument("--seed", type=int, default=None, help="random seed for the choice of instances to kill (default: random, printed)")
    p.add_argument("--keep", action="store_true", help="leave the run's infrastructure data in place (it is stopped either way)")
    return p


# --- driving journeys through outages -------------------------------------------------------------


class ChaosDriver(Driver):
    """The bench driver, but an input is sent until the broker takes it (the broker may be down): the
    same CloudEvent each time, so a repeat has the same id and the services' inboxes drop it."""

    def __init__(self, *args: Any, complete_every: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.complete_every = complete_every
        self.send_retries = 0
        self.reports = 0

    def next_journey(self, complete: bool) -> Journey:
        journey = super().next_journey(complete)
        journey.complete = bool(self.complete_every) and self.number % self.complete_every == 0
        return journey

    async def send(self, event: CloudEvent) -> None:
        while True:
            try:
                await asyncio.wait_for(self.client.send_event(event), 30)
                return
            except (KafkaError, TimeoutError, OSError):
                self.send_retries += 1
                await asyncio.sleep(1.0)

    async def _one(self, journey: Journey) -> None:
        deadline = time.perf_counter() + self.timeout
        try:
            journey.sent = time.perf_counter()
            await self.send(new_event(traffic.approvable_consultation(journey.patient, journey.consultation), source="/clinic/ehr"))
            if not await self._wait(journey.booked, deadline, journey, "waiting for the booking"):
                return
            if journey.complete:
                ordered = sorted(journey.scheduled, key=lambda s: journey.scheduled[s]["sequence"])
                for session_id in ordered:
                    await self.send(new_event(traffic.completion(journey, session_id), source="/clinic/treatment-room"))
                reports = int(journey.patient[-7:]) % (2 * self.complete_every) == 0
                # counted where it is sent: journeys in flight wait for their completions side by side
                if await self._wait(journey.done, deadline, journey, "waiting for the completions") and reports and self.reports < MAX_REPORTS:
                    self.reports += 1
                    await self.send(new_event(side_effect(journey, ordered[-1]), source="/clinic/patient-app"))
        except Exception as error:
            journey.fail(f"error: {type(error).__name__}: {error}"[:200])
        finally:
            self.tracker.forget(journey)
            self.finished.append(journey)
            self.in_flight -= 1


def side_effect(journey: Journey, session_id: str):
    """A grade-3 allergic reaction after the last session: aftercare escalates it."""
    return model(
        "SideEffectReported",
        report_id=f"sfx_{journey.patient.removeprefix('pt_')}",
        patient_id=journey.patient,
        session_id=session_id,
        symptom="allergic_reaction",
        grade=3,
        onset_at=traffic.now().isoformat(),
        reported_at=traffic.now().isoformat(),
        still_present=True,
        reported_by="patient_app",
        check_in_id=None,
    )


# --- the chaos -------------------------------------------------------------------------------------


class Chaos:
    """Kills an instance every ``every`` seconds; stops and restarts the broker, then the store, once the
    driver has published a third and two thirds of the journeys."""

    def __init__(self, services: Services, layout: infra.Layout, driver: ChaosDriver, args: argparse.Namespace, rng: random.Random) -> None:
        self.services, self.layout, self.driver, self.args, self.rng = services, layout, driver, args, rng
        self.kills: Counter = Counter()
        self.outages: list[str] = []
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        outages = [("kafka", "broker", self.args.journeys / 3), ("ferretdb", "store", 2 * self.args.journeys / 3)]
        next_kill = time.monotonic() + self.args.kill_every
        while not self.stopping.is_set():
            if outages and self.driver.number >= outages[0][2]:
                component, label, _ = outages.pop(0)
                await self.outage(component, label)
            if time.monotonic() >= next_kill:
                name = self.rng.choice(self.services.names)
                old, new = await asyncio.to_thread(self.services.restart, name)
                self.kills[name] += 1
                say(f"chaos: SIGKILL {name} (pid {old}), restarted as pid {new}  [kill {sum(self.kills.values())}]")
                next_kill = time.monotonic() + self.args.kill_every
            await asyncio.sleep(0.5)

    async def outage(self, component: str, label: str) -> None:
        started = time.monotonic()
        say(f"chaos: stopping the {label} ({component}) for {self.args.outage_seconds:.0f} s")
        await asyncio.to_thread(infra.stop_component, self.layout, component, lambda m: None)
        await asyncio.sleep(self.args.outage_seconds)
        await asyncio.to_thread(infra.start_component, self.layout, component, lambda m: None)
        self.outages.append(component)
        say(f"chaos: the {label} is back ({time.monotonic() - started:.0f} s after it was stopped)")


# --- quiescence and reconciliation -----------------------------------------------------------------


async def settle(settings: Settings, services: Services, limit: float) -> bool:
    """Every consumer group at lag 0, no outbox backlog, the handled counts unchanged for QUIET_SECONDS."""
    kafka = Kafka.of(settings)
    deadline = time.monotonic() + limit
    last, quiet_since, told = None, time.monotonic(), 0.0
    while time.monotonic() < deadline:
        try:
            lag = sum(max(0, row.lag) for row in await operations.consumer_lag(kafka, settings.topic_prefix))
            metrics = await services.metrics()
        except (KafkaError, OSError, TimeoutError, BenchError) as error:
            lag, metrics = None, {}
            say(f"  not quiet yet: {type(error).__name__}: {error}")
        handled = sum(m.handled for m in metrics.values())
        backlog = sum(m.outbox_backlog or 0.0 for m in metrics.values())
        state = (lag, handled, backlog, tuple(p.pid for p in services.processes))
        if state != last or lag != 0 or backlog:
            last, quiet_since = state, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            say(f"quiet: consumer lag 0, outbox backlog 0, {handled:,.0f} events handled since the last restarts")
            return True
        if time.monotonic() - told >= 10:
            say(f"  waiting for quiet: consumer lag {lag}, outbox backlog {backlog:.0f}, {handled:,.0f} handled")
            told = time.monotonic()
        await asyncio.sleep(2.0)
    say(f"the system did not go quiet within {limit:.0f} s")
    return False


async def read_back(settings: Settings) -> tuple[list[Seen], list[str], int]:
    """Every record of the reconciled types from the beginning, and each dead letter's reason."""
    kafka = Kafka.of(settings)
    by_topic = {topic_of(REGISTRY.by_name(name), settings.topic_prefix): name for name in READ}
    async with operations.reader(kafka) as consumer:
        ends = await operations.end_offsets(consumer, by_topic)
        records = await operations.read_to_end(consumer, {tp: 0 for tp in ends})
    seen, undecodable = [], 0
    for record in records:
        try:
            event = decode(record.value, record.headers)
        except InvalidEvent:
            undecodable += 1
            continue
        seen.append(Seen(by_topic[record.topic], event.id, event.data.model_dump(mode="json")))
    letters = await operations.dead_letters(kafka, settings.topic_prefix)
    return seen, [f"{letter.reason} ({letter.service}, {letter.original_topic.removeprefix(settings.topic_prefix)})" for letter in letters], undecodable


# --- the run ---------------------------------------------------------------------------------------


async def drive(args: argparse.Namespace, settings: Settings, services: Services, layout: infra.Layout, rng: random.Random, tag: str) -> dict[str, Any]:
    await ensure_topics(settings, topics(settings.topic_prefix, (*INPUTS, "SideEffectReported", *READ, *WATCHED)))
    async with EventClient(Kafka.of(settings), settings.topic_prefix) as client:
        tracker = Tracker(settings)
        await tracker.start()
        driver = ChaosDriver(client, tracker, tag, timeout=args.timeout, complete_every=args.complete_every)
        chaos = Chaos(services, layout, driver, args, rng)
        try:
            await deliver(client, stock_delivery(tag, args.journeys))
            say(f"delivered stock for {args.journeys} journeys; waiting for inventory to take it in")
            if not await settle(settings, services, 120.0):
                raise BenchError("the services did not take the stock in within 120 s")
            say(f"driving {args.journeys} journeys, {args.concurrency} in flight, a SIGKILL every {args.kill_every:.0f} s")
            started = time.monotonic()

            def progress(d: Driver, elapsed: float) -> None:
                done = sum(1 for j in d.finished if j.failure is None)
                say(
                    f"  {elapsed:5.0f}s  journeys published {d.number}/{args.journeys}, seen complete {done}, not seen {len(d.finished) - done}, "
                    f"{d.in_flight} in flight; kills {sum(chaos.kills.values())}, send retries {driver.send_retries}"
                )

            task = asyncio.create_task(chaos.run(), name="chaos")
            try:
                outcome = await driver.run(concurrency=args.concurrency, total=args.journeys, progress=progress, every=10.0)
            finally:
                chaos.stopping.set()  # an outage under way finishes: the broker and the store end up running
                await asyncio.gather(task, return_exceptions=True)
            if task.exception():
                raise BenchError(f"the chaos task failed: {task.exception()!r}")
            drove = time.monotonic() - started
        finally:
            await tracker.stop()
    for component in ("kafka", "ferretdb"):  # a run shorter than the outage schedule still has both
        if component not in chaos.outages:
            await chaos.outage(component, {"kafka": "broker", "ferretdb": "store"}[component])
    say(f"journeys driven in {drove:.0f} s ({outcome.failures or 'all seen complete by the driver'}); waiting for the system to go quiet")
    await asyncio.to_thread(services.wait_ready)  # an instance restarted just before has joined its group again
    quiet = await settle(settings, services, args.settle_timeout)
    seen, letters, undecodable = await read_back(settings)
    report = reconcile(seen, [j.patient for j in outcome.journeys], letters)
    return {
        "report": report,
        "quiet": quiet,
        "drive_seconds": round(drove, 1),
        "kills": dict(chaos.kills),
        "outages": chaos.outages,
        "send_retries": driver.send_retries,
        "side_effects_reported": driver.reports,
        "records_read": len(seen),
        "undecodable": undecodable,
        "driver_failures": outcome.failures,
    }


def summary(result: dict[str, Any], report: Report, args: argparse.Namespace) -> str:
    kills = ", ".join(f"{name} {count}" for name, count in sorted(result["kills"].items()))
    lines = [
        "",
        f"Chaos run {result['at']}  prefix {result['prefix']}  seed {result['seed']}",
        f"{args.journeys} journeys, {args.concurrency} in flight, two instances of inventory and scheduling; driven in {result['drive_seconds']:.0f} s, {result['wall_seconds']:.0f} s in all",
        f"SIGKILLs: {sum(result['kills'].values())} ({kills}); broker and store each stopped once for {args.outage_seconds:.0f} s; inputs re-sent after a broker error: {result['send_retries']}",
        f"quiet at the end: {'yes' if result['quiet'] else 'NO'}; {result['records_read']:,} records reconciled",
        "",
        report.table(),
    ]
    if report.examples:
        lines += ["", "first findings:", *(f"  {line}" for line in report.examples[:15])]
    lines += ["", "target met: 0 lost, 0 duplicated, 0 stuck" if report.ok and result["quiet"] else "TARGET MISSED"]
    return "\n".join(lines)


def inventory_config(state: Path) -> Path:
    """The default inventory configuration, but a lot is quarantined only after QUARANTINE_AFTER escalations
    (see MAX_REPORTS)."""
    config = InventoryConfig().model_dump(mode="json")
    for ingredient in config["ingredients"]:
        ingredient["quarantine_after_escalations"] = QUARANTINE_AFTER
    path = state / "inventory.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # reconnects during the outages are expected
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    rng = random.Random(seed)
    prefix = f"chaos{secrets.token_hex(3)}"
    tag = f"C{prefix[-6:].upper()}"
    state = RESULTS / prefix
    kafka_port, controller_port, mongo_port = free_ports(3)
    os.environ.update(
        CLINIC_STATE_DIR=str(state / "infra"), CLINIC_KAFKA_PORT=str(kafka_port), CLINIC_CONTROLLER_PORT=str(controller_port), CLINIC_MONGO_PORT=str(mongo_port)
    )
    layout = infra.Layout.from_env()
    settings = deployment(Settings(kafka_bootstrap_servers=layout.bootstrap, mongodb_url=layout.mongodb_url), prefix)
    state.mkdir(parents=True, exist_ok=True)
    env = {"CLINIC_INVENTORY_CONFIG": str(inventory_config(state))}
    services = Services(settings, state, env=env, instances=INSTANCES)
    started = time.perf_counter()
    result: dict[str, Any] | None = None
    code = 1
    try:
        say(f"chaos run {prefix} (seed {seed}): own Kafka on {layout.bootstrap} and FerretDB on port {mongo_port}, state in {layout.state}")
        infra.up(layout, say=lambda m: say(f"  {m}"))
        say(f"starting {len(services.names)} service instances: {', '.join(services.names)} (logs in {state / 'logs'})")
        services.start()
        result = asyncio.run(drive(args, settings, services, layout, rng, tag))
    except KeyboardInterrupt:
        print("chaos: interrupted; stopping everything", file=sys.stderr)
        code = 130
    except (BenchError, infra.InfraError) as error:
        print(f"chaos: {error}", file=sys.stderr)
    finally:
        services.stop()
        infra.down(layout, say=lambda m: None, wipe=not args.keep)
    if result is not None:
        report: Report = result.pop("report")
        result = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "prefix": prefix, "seed": seed, "args": vars(args), **result}
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        result["reconciliation"] = {label: value for label, value in report.rows()} | {"stuck_patients": report.stuck[:50], "findings": report.examples[:200]}
        path = RESULTS / f"chaos-{result['at'][:19].replace(':', '')}-{prefix}.json"
        path.write_text(json.dumps(result, indent=2, default=str))
        print(summary(result, report, args), flush=True)
        print(f"\nJSON: {path}", flush=True)
        code = 0 if report.ok and result["quiet"] else 1
    return code


if __name__ == "__main__":
    sys.exit(main())
