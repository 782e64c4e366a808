"""Whole-system journey benchmark: the four services as processes, driven and measured from outside.

    make bench                                         # 200 journeys, 20 in flight
    make bench BENCH_ARGS="--journeys 20 --concurrency 5"
    python -m bench.journeys --journeys 200 --concurrency 20
    python -m bench.journeys --journeys 300 --rate 10      # open loop: a journey every 0.1 s

What it does, on fresh topic and database prefixes against the local Kafka and FerretDB (endpoints from
KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL, which `make bench` sources from .local/endpoints.env):
1. starts consultation, scheduling, inventory and aftercare as processes (one instance each);
2. (with --history N) loads history through the services until N events have been handled (see
   bench/history.py);
3. delivers stock for every journey (StockReceived) and plays --warmup journeys that are not measured;
4. runs --journeys journeys with --concurrency in flight, or with --rate as an open loop (latency counted from
   when each journey was due; bench/README.md says which question each answers) (bench/traffic.py: ConsultationRecorded for a
   patient approved at once, until ConsultationApproved, every session's SessionScheduled and every
   session's IngredientsReserved are on their topics);
5. stops the services and runs the bare aiokafka + PyMongo loop (bench/baseline.py) on as many events,
   with as many store round trips and published events per event as the services needed.

It prints journeys/s, journey latency p50/p95/p99 (publish to the last IngredientsReserved), per service
the events handled (clinic_events_handled_total), store round trips per handled event
(clinic_store_commands_total / handled), CPU seconds per 1,000 handled events (/proc/<pid>/stat), the CPU
seconds FerretDB and Kafka used (.local/ferretdb.pid, .local/kafka.pid) and the ratio of the system's
handled events/s to the bare loop's. JSON goes to bench/results/journeys-<time>-<prefix>.json, service
logs to bench/results/<prefix>/logs/. Nothing is asserted: it is measured. Everything started is
stopped at the end, also on Ctrl-C or a failure; the prefix's topics and databases are dropped unless
--keep (or --reuse) is given.

The 200,000-event comparison of issue 11 (history makes the calendar fill up, so both runs use a
calendar with room for it, --chairs; everything else is the services' defaults):

    python -m bench.journeys --chairs 40 --journeys 200 --concurrency 20                 # empty store
    python -m bench.journeys --chairs 40 --history 200000 --keep --journeys 200 --concurrency 20
    python -m bench.journeys --reuse <prefix printed above> --journeys 200 --concurrency 20   # again, later

then compare journeys/s (history / empty >= 0.8) and p99 (history / empty <= 1.25). The history run
prints the prefix it kept; `--reuse` measures against it again without loading (or loads only what is
missing when --history is larger than what it holds). Drop a kept deployment with `--drop PREFIX`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import secrets
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import baseline, history, traffic
from bench.system import (
    RESULTS,
    BenchError,
    Services,
    Snapshot,
    check_infra,
    cpu_delta,
    databases_with_prefix,
    deployment,
    drop,
    ensure_topics,
    normalise_prefix,
    snapshot,
)
from bench.traffic import INPUTS, WATCHED, Driver, Outcome, Tracker, deliver, stock_delivery, topics
from clinic.asyncapi import SERVICES
from clinic.client import EventClient
from shared.runtime.kafka_client import Kafka
from shared.settings import Settings, redact

IDLE_SAMPLE_SECONDS = 3.0
"""Quiet time sampled before measuring: the store round trips the services make with nothing to do."""
CLOSED_LOOP = 20
"""Journeys in flight in the closed loop when --concurrency is not given."""


def say(message: str) -> None:
    print(message, flush=True)


# --- arguments -----------------------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments explain themselves in one line (the usage is one --help away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _count(least: int):
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    return parse


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of journeys per second, got {text!r}") from None
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1000 journeys per second, got {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m bench.journeys",
        description="Whole-system journey benchmark (issue 11): four services as processes, journeys driven and measured from outside.",
        epilog="The module docstring (bench/journeys.py) explains the figures and the 200,000-event history comparison.",
    )
    p.add_argument("--journeys", type=_count(1), default=200, help="journeys measured (default 200)")
    p.add_argument(
        "--concurrency", type=_count(1), default=None,
        help="closed loop: journeys in flight at a time, each started when one finishes (default 20); with --rate, only a cap (default: none)",
    )
    p.add_argument(
        "--rate", type=_rate, default=None, metavar="PER_SECOND",
        help="open loop: start a journey every 1/PER_SECOND s whether or not the earlier ones have finished; latency counts from when each "
        "was due (default: the closed loop)",
    )
    p.add_argument("--warmup", type=_count(0), default=1, help="journeys played before measuring, not counted (default 1)")
    p.add_argument("--timeout", type=_seconds, default=600.0, help="seconds one journey may take before it counts as failed (default 600)")
    p.add_argument("--history", type=_count(0), default=0, metavar="EVENTS", help="events of history the system handles before the measured run (default 0)")
    p.add_argument("--history-concurrency", type=_count(1), default=50, help="journeys in flight while loading history (default 50)")
    p.add_argument(
        "--history-weeks", type=_count(0), default=0, metavar="WEEKS",
        help="spread the history over this many weeks of clinic time, in phases, the services' clocks moving forward between them, so that "
        "past courses lie in the past as in a real clinic; the measured run then happens at the end (default 0: all at once, now)",
    )
    p.add_argument("--chairs", type=_count(1), default=None, help="treatment chairs (and practitioners) in the clinic calendar (default: the services' own, 2)")
    p.add_argument("--keep", action="store_true", help="keep the topics and databases afterwards and print their prefix")
    p.add_argument("--reuse", metavar="PREFIX", help="run against the topics and databases a --keep run left (implies --keep)")
    p.add_argument("--drop", metavar="PREFIX", help="only drop the topics and databases of a kept prefix, then exit")
    p.add_argument("--baseline-events", type=_count(0), default=2000, help="at most this many events for the bare loop (default 2000; 0 skips it)")
    p.add_argument("--service-env", action="append", default=[], metavar="NAME=VALUE", help="extra environment for the services, e.g. CLINIC_LOG_LEVEL=WARNING (repeatable)")
    return p


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    for text in args.service_env:
        if "=" not in text or not text.split("=", 1)[0]:
            p.error(f"--service-env {text!r}: expected NAME=VALUE")
    try:
        if args.reuse:
            args.reuse = normalise_prefix(args.reuse)
        if args.drop:
            args.drop = normalise_prefix(args.drop)
    except BenchError as error:
        p.error(str(error))
    if args.drop and (args.reuse or args.keep):
        p.error("--drop only drops; it does not go with --reuse or --keep")
    return args


# --- figures -------------------------------------------------------------------------------------


def loop_of(args: argparse.Namespace) -> str:
    """How the measured journeys are started, in words."""
    if args.rate is None:
        return f"{args.concurrency or CLOSED_LOOP} in flight"
    return f"open loop at {args.rate:g}/s" + (f" (at most {args.concurrency} in flight)" if args.concurrency else "")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def calendar(done: list) -> dict[str, Any]:
    """How far ahead the journeys' sessions were booked and on how many chairs (a calendar filled by
    history pushes new bookings out, which can cost the scheduler more)."""
    today = datetime.now(UTC)
    starts = [datetime.fromisoformat(d["scheduled_for"].replace("Z", "+00:00")) for j in done for d in j.scheduled.values()]
    first = [min(datetime.fromisoformat(d["scheduled_for"].replace("Z", "+00:00")) for d in j.scheduled.values()) for j in done if j.scheduled]
    return {
        "chairs_used": len({d["chair_id"] for j in done for d in j.scheduled.values()}),
        "first_session_days_ahead": {
            "min": _r(min((f - today).total_seconds() / 86400 for f in first), 1) if first else None,
            "max": _r(max((f - today).total_seconds() / 86400 for f in first), 1) if first else None,
        },
        "last_session_days_ahead": _r(max((t - today).total_seconds() / 86400 for t in starts), 1) if starts else None,
    }


def figures(outcome: Outcome, before: Snapshot, after: Snapshot, concurrency: int | None, idle: dict[str, float], end: float) -> dict[str, Any]:
    """Counts and CPU are deltas between the snapshots (`after` is read once the counts stopped moving);
    rates are over the window from `before` to `end`, when the last event was counted. `idle` is each
    service's store round trips per second while nothing happens (pollers, timers)."""
    done = outcome.completed
    seconds = max(1e-9, outcome.ended - outcome.started)
    window = max(1e-9, end - before.at)
    span = max(1e-9, after.at - before.at)  # what the CPU deltas cover
    latencies = [j.latency for j in done if j.latency is not None]
    stage = {
        "approved": [j.approved_at - j.sent for j in done if j.approved_at and j.sent],
        "all_scheduled": [j.all_scheduled_at - j.sent for j in done if j.all_scheduled_at and j.sent],
    }
    result: dict[str, Any] = {
        "journeys": {
            "requested": len(outcome.journeys),
            "completed": len(done),
            "failed": outcome.failures,
            "concurrency": concurrency,
            "seconds": round(seconds, 2),
            "per_second": round(len(done) / seconds, 3),
            "sessions": sum(j.sessions or 0 for j in done),
            "latency_seconds": {
                "p50": _r(percentile(latencies, 50)),
                "p95": _r(percentile(latencies, 95)),
                "p99": _r(percentile(latencies, 99)),
                "max": _r(max(latencies, default=None)),
                "mean": _r(sum(latencies) / len(latencies)) if latencies else None,
            },
            "stage_p50_seconds": {name: _r(percentile(values, 50)) for name, values in stage.items()},
            "calendar": calendar(done),
        },
        "window_seconds": round(window, 2),
        "cpu_span_seconds": round(span, 2),
        "services": {},
    }
    totals = {"handled": 0.0, "round_trips": 0.0, "net": 0.0, "published": 0.0, "cpu": 0.0}
    published_known = any(after.metrics[name].published is not None for name in SERVICES)
    for name in SERVICES:
        a, b = before.metrics[name], after.metrics[name]
        handled = b.handled - a.handled
        trips = b.round_trips - a.round_trips
        commands = {k: round(v - a.commands.get(k, 0.0)) for k, v in b.commands.items() if v - a.commands.get(k, 0.0) > 0}
        published = (b.published or 0.0) - (a.published or 0.0)  # a service that never published has no sample yet
        net = max(0.0, trips - idle.get(name, 0.0) * window)
        cpu = cpu_delta(before, after, name)
        by_type = {k: round(v - a.handled_by_type.get(k, 0.0)) for k, v in b.handled_by_type.items() if v - a.handled_by_type.get(k, 0.0) > 0}
        result["services"][name] = {
            "handled": round(handled),
            "handled_per_second": round(handled / window, 2),
            "handled_by_type_and_outcome": by_type,
            "round_trips": round(trips),
            "round_trips_per_event": _r(trips / handled, 2) if handled else None,
            "round_trips_by_command": commands,
            "idle_round_trips_per_second": _r(idle.get(name), 2),
            "round_trips_per_event_net_of_idle": _r(net / handled, 2) if handled else None,
            "published": round(published),
            "cpu_seconds": cpu,
            "cpu_seconds_per_1000_events": _r(cpu / handled * 1000, 2) if cpu is not None and handled else None,
            "share_of_one_core": _r(cpu / span, 3) if cpu is not None else None,
        }
        totals["handled"] += handled
        totals["round_trips"] += trips
        totals["net"] += net
        totals["cpu"] += cpu or 0.0
        totals["published"] += published
    handled = totals["handled"]
    result["system"] = {
        "handled": round(handled),
        "handled_per_second": round(handled / window, 2),
        "round_trips_per_event": _r(totals["round_trips"] / handled, 2) if handled else None,
        "round_trips_per_event_net_of_idle": _r(totals["net"] / handled, 2) if handled else None,
        "published_per_event": _r(totals["published"] / handled, 3) if handled and published_known else None,
        "services_cpu_seconds": round(totals["cpu"], 3),
        "services_cpu_seconds_per_1000_events": _r(totals["cpu"] / handled * 1000, 2) if handled else None,
    }
    infra = {}
    for name in ("ferretdb", "kafka", "bench"):
        cpu = cpu_delta(before, after, name)
        infra[name] = {
            "cpu_seconds": cpu,
            "share_of_one_core": _r(cpu / span, 3) if cpu is not None else None,
            "cpu_seconds_per_journey": _r(cpu / len(done), 3) if cpu is not None and done else None,
            "cpu_seconds_per_1000_events": _r(cpu / handled * 1000, 2) if cpu is not None and handled else None,
        }
    machine = cpu_delta(before, after, "machine")
    ours = totals["cpu"] + sum(v["cpu_seconds"] or 0.0 for v in infra.values())
    infra["machine"] = {
        "busy_cpu_seconds": machine,
        "not_ours_cpu_seconds": _r(machine - ours, 2) if machine is not None else None,
        "note": "busy CPU of the whole machine; not_ours is what other processes (other people's tests) used meanwhile",
    }
    result["infra"] = infra
    return result


# --- the run -------------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, settings: Settings, services: Services, prefix: str, manifest: dict[str, Any] | None) -> dict[str, Any]:
    run = secrets.token_hex(3).upper()
    result: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.journeys", *sys.argv[1:]]),
        "prefix": prefix,
        "kafka": settings.kafka_bootstrap_servers,
        "mongodb": redact(settings.mongodb_url),
        "chairs": args.chairs,
        "service_env": args.service_env,
    }
    await ensure_topics(settings, topics(settings.topic_prefix, (*INPUTS, *WATCHED)))
    async with EventClient(Kafka.of(settings), settings.topic_prefix) as client:
        tracker = Tracker(settings)
        await tracker.start()
        try:
            already = int((manifest or {}).get("history_events", 0))
            loaded = None
            shelf = history.stock_left(manifest) if args.keep else None  # journeys a kept deployment's stock still covers
            if args.history > already:
                say(f"loading history: {args.history - already:,} events through the services ({args.history_concurrency} journeys in flight, with completions)")

                def remember(total: int) -> None:
                    if args.keep:
                        history.write_manifest(prefix, history_events=total, chairs=args.chairs, clock_offset_seconds=traffic.CLOCK["offset"].total_seconds())

                phases = max(1, args.history_weeks // history.WEEKS_PER_PHASE) if args.history_weeks else 1
                target = args.history
                for phase in range(phases):
                    if args.history_weeks and phase:
                        await history.move_clock(services, traffic.CLOCK["offset"] + timedelta(weeks=history.WEEKS_PER_PHASE), say)
                    goal = already + -(-(target - already) // (phases - phase))
                    driver = Driver(client, tracker, f"H{run}{phase}", timeout=args.timeout)
                    loaded = await history.load(
                        services, driver, target=goal, already=already, concurrency=args.history_concurrency, tag=f"H{run}{phase}", say=say, record=remember
                    )
                    already = loaded["events_total"]
                    if shelf is not None:
                        shelf += loaded["stock_for_journeys"] - loaded["journeys"]
                if args.history_weeks:
                    await history.move_clock(services, traffic.CLOCK["offset"] + timedelta(weeks=history.WEEKS_PER_PHASE), say)
                    remember(already)
                say(f"history loaded: {already:,} events in total ({loaded['events_loaded']:,} in the last phase, {loaded['journeys_completed']:,} journeys, failures {loaded['failures'] or 'none'})")
            result["history"] = {"events_before_run": already, "loaded_now": loaded, "manifest": manifest}

            driver = Driver(client, tracker, f"M{run}", timeout=args.timeout)
            short, shelf = history.reorder(shelf, args.journeys + args.warmup, kept=args.keep)
            result["stock"] = {"delivered_for_journeys": short, "kept_stock_covers_journeys_after": shelf}
            if short:
                await deliver(client, stock_delivery(f"M{run}", short))
                say(f"delivered stock for {short:,} journeys; waiting for the services to take it in")
            else:  # a kept deployment measured again: the shelf is restocked only when low
                say("the kept deployment's stock covers this run: nothing delivered")
            if shelf is not None:
                history.write_manifest(prefix, stock_journeys_left=shelf)
            await services.settle(say=say)
            if args.warmup:
                say(f"warm-up: {args.warmup} journey(s), not measured")
                warm = await driver.run(concurrency=min(args.concurrency or CLOSED_LOOP, args.warmup), total=args.warmup)
                if not warm.completed:
                    raise BenchError(f"the warm-up journey did not complete ({warm.failures}); see the logs in {services.state / 'logs'}")
                await services.settle(say=say)

            quiet = await snapshot(services)
            await asyncio.sleep(IDLE_SAMPLE_SECONDS)
            before = await snapshot(services)
            span = before.at - quiet.at
            idle = {n: (before.metrics[n].round_trips - quiet.metrics[n].round_trips) / span for n in SERVICES}
            say(f"measuring: {args.journeys} journeys, {loop_of(args)} (idle store round trips/s while quiet: {sum(idle.values()):.1f})")
            driver.finished.clear()
            last = {"at": 0.0, "done": 0}

            def progress(d: Driver, elapsed: float) -> None:
                done = sum(1 for j in d.finished if j.failure is None)
                failed = len(d.finished) - done
                rate_now = (done - last["done"]) / max(1e-9, elapsed - last["at"])
                last.update(at=elapsed, done=done)
                say(f"  {elapsed:6.0f}s  journeys {done}/{args.journeys} done, {failed} failed, {d.in_flight} in flight; {done / elapsed:.2f}/s overall, {rate_now:.2f}/s now")
                try:
                    services.check_alive()
                except BenchError as error:
                    say(f"  {error}")
                    d.abort(str(error))

            outcome = await driver.run(concurrency=args.concurrency or (CLOSED_LOOP if args.rate is None else args.journeys), total=args.journeys, progress=progress, rate=args.rate)
            if driver.aborted:
                raise BenchError(f"run aborted: {driver.aborted}")
            # A service counts an event once its batch is committed, which may be after the journey saw
            # the event published: wait until the counts stop moving, then read them.
            say("journeys finished; waiting for the services' counts to settle")
            last_change = await services.settle(say=say)
            after = await snapshot(services)
            end = max(outcome.ended, last_change or after.at)
        finally:
            await tracker.stop()
    result.update(figures(outcome, before, after, args.concurrency or (CLOSED_LOOP if args.rate is None else None), idle, end))
    result["journeys"].update(rate=args.rate, most_in_flight=driver.most_in_flight)

    say("stopping the services")
    await asyncio.to_thread(services.stop)
    system = result["system"]
    if args.baseline_events and system["handled"]:
        count = min(args.baseline_events, system["handled"])
        trips, published = system["round_trips_per_event"] or 0.0, system["published_per_event"]
        say(f"baseline: bare aiokafka + PyMongo loop, {count:,} events, {trips} round trips and {published if published is not None else 1.0} published per event")
        measured = await baseline.run(settings, count, trips, 1.0 if published is None else published, say=say)
        result["baseline"] = measured.as_dict()
        result["ratio_to_baseline"] = round(system["handled_per_second"] / measured.events_per_second, 3)
    return result


def table(result: dict[str, Any]) -> str:
    j, s, infra = result["journeys"], result["system"], result["infra"]
    lat, cal = j["latency_seconds"], j["calendar"]

    def sec(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    def num(value: float | None, fmt: str = ",.2f") -> str:
        return "-" if value is None else format(value, fmt)

    failed = ", ".join(f"{k} {v}" for k, v in j["failed"].items()) or "none"
    started = f"{j['concurrency']} in flight"
    if j.get("rate") is not None:
        cap = f", cap {j['concurrency']}" if j["concurrency"] else ""
        started = f"open loop at {j['rate']:g}/s{cap} (at most {j['most_in_flight']} in flight)"
    history_events = result["history"]["events_before_run"]
    lines = [
        "",
        f"Journey benchmark  {result['at']}  prefix {result['prefix']}  history {history_events:,} events  chairs {result['chairs'] or 'default'}",
        f"journeys     {j['completed']}/{j['requested']} completed (failed: {failed}), {started}, {j['sessions']} sessions reserved, {j['seconds']:.1f} s",
        f"throughput   {j['per_second']:.3f} journeys/s",
        f"latency      p50 {sec(lat['p50'])}   p95 {sec(lat['p95'])}   p99 {sec(lat['p99'])}   max {sec(lat['max'])}   (publish -> last IngredientsReserved)",
        f"stages p50   approved {sec(j['stage_p50_seconds']['approved'])}   all scheduled {sec(j['stage_p50_seconds']['all_scheduled'])}"
        f"   (first sessions {num(cal['first_session_days_ahead']['min'], '.1f')}-{num(cal['first_session_days_ahead']['max'], '.1f')} days ahead, {cal['chairs_used']} chairs)",
        "",
        f"{'service':<14}{'handled':>9}{'events/s':>10}{'round trips/event':>19}{'net of idle':>13}{'CPU s':>9}{'CPU s/1000 events':>19}{'% core':>8}",
    ]
    for name, v in result["services"].items():
        share = v["share_of_one_core"]
        lines.append(
            f"{name:<14}{v['handled']:>9,}{v['handled_per_second']:>10.2f}{num(v['round_trips_per_event']):>19}"
            f"{num(v['round_trips_per_event_net_of_idle']):>13}{num(v['cpu_seconds']):>9}"
            f"{num(v['cpu_seconds_per_1000_events']):>19}{'-' if share is None else f'{share:.0%}':>8}"
        )
    lines.append(
        f"{'all four':<14}{s['handled']:>9,}{s['handled_per_second']:>10.2f}{num(s['round_trips_per_event']):>19}"
            f"{num(s['round_trips_per_event_net_of_idle']):>13}{num(s['services_cpu_seconds']):>9}"
        f"{num(s['services_cpu_seconds_per_1000_events']):>19}"
    )
    lines.append("  (round trips: clinic_store_commands_total / clinic_events_handled_total; 'net of idle' leaves out what the services")
    lines.append("   do with nothing to handle, e.g. outbox polls, sampled for 3 s before the run)")
    lines.append("")
    for name, label in (("ferretdb", "FerretDB"), ("kafka", "Kafka"), ("bench", "this bench")):
        v = infra[name]
        lines.append(
            f"{label:<14}CPU {num(v['cpu_seconds'])} s ({'-' if v['share_of_one_core'] is None else format(v['share_of_one_core'], '.0%')} of one core), "
            f"{num(v['cpu_seconds_per_journey'], ',.3f')} s per journey, {num(v['cpu_seconds_per_1000_events'])} s per 1,000 events"
        )
    m = infra["machine"]
    lines.append(f"{'machine':<14}busy CPU {num(m['busy_cpu_seconds'])} s in {result['cpu_span_seconds']:.1f} s, of which {num(m['not_ours_cpu_seconds'])} s by other processes")
    if "baseline" in result:
        b = result["baseline"]
        lines += [
            "",
            f"baseline      bare aiokafka + PyMongo loop: {b['events']:,} events, {b['round_trips_per_event']} round trips and {b['published_per_event']} published per event",
            f"              {b['events_per_second']:.1f} events/s; CPU per 1,000 events: loop {num(b['cpu_seconds_per_1000_events']['loop'])} s, FerretDB {num(b['cpu_seconds_per_1000_events']['ferretdb'])} s",
            f"ratio         system {s['handled_per_second']:.2f} events/s / baseline {b['events_per_second']:.1f} events/s = {result['ratio_to_baseline']:.3f}",
        ]
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # aiokafka logs retries on just-created topics (leaders settling) on stderr; failures show in the figures
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    base = Settings()
    # SIGTERM ends the run like Ctrl-C does: through the finally blocks that stop the services.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background with SIGINT ignored
    try:
        asyncio.run(check_infra(base))
        if args.drop:
            settings = deployment(base, args.drop)
            asyncio.run(drop(settings))
            history.manifest_path(args.drop).unlink(missing_ok=True)
            say(f"dropped the topics {settings.topic_prefix}* and databases {settings.database_prefix}*")
            return 0
        manifest = None
        if args.reuse:
            prefix, args.keep = args.reuse, True
            settings = deployment(base, prefix)
            if not asyncio.run(databases_with_prefix(settings)):
                raise BenchError(f"--reuse {prefix}: no databases named {settings.database_prefix}* at {redact(settings.mongodb_url)}; a --keep run prints the prefix it kept")
            manifest = history.read_manifest(prefix)
            kept_chairs = (manifest or {}).get("chairs")
            if args.chairs is None:
                args.chairs = kept_chairs
            elif manifest is not None and kept_chairs != args.chairs:
                raise BenchError(f"--reuse {prefix} was loaded with --chairs {kept_chairs}; run it with the same calendar")
        else:
            prefix = f"bench{secrets.token_hex(3)}"
            settings = deployment(base, prefix)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2

    env = dict(text.split("=", 1) for text in args.service_env)
    if offset := (manifest or {}).get("clock_offset_seconds"):  # a kept history spread over weeks: carry on from its end
        traffic.CLOCK["offset"] = timedelta(seconds=offset)
        env["CLINIC_CLOCK_OFFSET_SECONDS"] = str(offset)
    services = Services(settings, RESULTS / prefix, chairs=args.chairs, env=env)
    started = time.perf_counter()
    result = None
    code = 0
    try:
        say(f"starting the four services on prefix {prefix} (logs in {services.state / 'logs'})")
        services.start()
        if args.keep:
            history.write_manifest(
                prefix, chairs=args.chairs, history_events=int((manifest or {}).get("history_events", 0)), clock_offset_seconds=traffic.CLOCK["offset"].total_seconds()
            )
        result = asyncio.run(measure(args, settings, services, prefix, manifest))
    except KeyboardInterrupt:
        print("bench: interrupted; stopping the services", file=sys.stderr)
        code = 130
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        code = 1
    finally:
        services.stop()
        if args.keep:
            say(f"kept topics {settings.topic_prefix}* and databases {settings.database_prefix}*; measure again with --reuse {prefix}, drop with --drop {prefix}")
        else:
            try:
                asyncio.run(drop(settings))
            except Exception as error:
                print(f"bench: could not drop {prefix}: {error}", file=sys.stderr)
    if result is not None:
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"journeys-{result['at'][:19].replace(':', '')}-{prefix}.json"
        path.write_text(json.dumps(result, indent=2))
        say(table(result))
        say(f"\nJSON: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
