"""The system under test, seen from outside: the four services as processes on one deployment prefix,
their /metrics, and the CPU time of every process involved (read from /proc).

Only public surfaces are used: `clinic.stack` to start and stop the processes, the services' HTTP
/readyz and /metrics endpoints, the settings' environment variables, Kafka topics named by the
contracts and the databases named by the deployment prefix (dropped as a whole, never read).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from clinic import stack
from shared.runtime.kafka import ensure_topics as create_topics
from shared.runtime.kafka_client import Kafka
from shared.settings import Settings, redact
from tests.support.cleanup import drop_deployment
from tests.support.ports import free_ports

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
LOCAL = ROOT / ".local"
PREFIX = re.compile(r"^[a-z][a-z0-9]{2,30}$")
TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """Something the person running the benchmark has to fix; printed as one line."""


# --- deployment prefixes -------------------------------------------------------------------------


def normalise_prefix(text: str) -> str:
    name = text.strip().rstrip("._")
    if not PREFIX.match(name):
        raise BenchError(f"--reuse {text!r}: a prefix is 3-31 lower-case letters and digits starting with a letter, e.g. bench3fa2c1")
    return name


def deployment(base: Settings, prefix: str) -> Settings:
    """The settings of one deployment: topics `<prefix>.<type>`, databases `<prefix>_<service>`."""
    return base.model_copy(update={"topic_prefix": f"{prefix}.", "database_prefix": f"{prefix}_"})


async def check_infra(settings: Settings) -> None:
    """One line that says which endpoint does not answer (and how to start it) instead of a traceback."""
    await check_store(settings)
    admin = Kafka.of(settings).admin(request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), 10)
        await admin.list_topics()
    except (KafkaError, OSError, TimeoutError) as error:
        raise BenchError(f"Kafka at {settings.kafka_bootstrap_servers} does not answer ({type(error).__name__}); start it with `.venv/bin/clinic infra up > .local/endpoints.env`") from None
    finally:
        await admin.close()


async def check_store(settings: Settings) -> None:
    """``check_infra`` for the store alone."""
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value(), serverSelectionTimeoutMS=4000)
    try:
        await client.admin.command("ping")
    except PyMongoError as error:
        raise BenchError(f"the store at {redact(settings.mongodb_url)} does not answer ({type(error).__name__}); start it with `.venv/bin/clinic infra up > .local/endpoints.env`") from None
    finally:
        await client.close()


async def databases_with_prefix(settings: Settings) -> list[str]:
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value(), serverSelectionTimeoutMS=4000)
    try:
        return [name for name in await client.list_database_names() if name.startswith(settings.database_prefix)]
    finally:
        await client.close()


async def ensure_topics(settings: Settings, topics: list[str]) -> None:
    """Create the topics the benchmark reads or writes (the services create theirs the same way)."""
    kafka = Kafka.of(settings)
    await create_topics(kafka.bootstrap, topics, settings.topic_partitions, settings.topic_replication, options=kafka.options)


async def drop(settings: Settings) -> None:
    """Drop every database and topic of the deployment (by its prefixes)."""
    if not settings.topic_prefix or not settings.database_prefix or settings.database_prefix == "clinic_":
        raise BenchError("refusing to drop a deployment without a benchmark prefix")
    await drop_deployment(settings)


# --- the services as processes -------------------------------------------------------------------


def scheduling_config(chairs: int) -> dict:
    """A clinic calendar with `chairs` chairs and as many practitioners (everything else the defaults)."""
    return {
        "calendar": {
            "chairs": [f"chair_{i:02d}" for i in range(1, chairs + 1)],
            "practitioners": [f"clin_{7000 + i}" for i in range(1, chairs + 1)],
        }
    }


@dataclass
class ServiceMetrics:
    handled: float = 0.0
    commands: dict[str, float] = field(default_factory=dict)
    published: float | None = None
    outbox_backlog: float | None = None
    handled_by_type: dict[str, float] = field(default_factory=dict)

    @property
    def round_trips(self) -> float:
        return sum(self.commands.values())


def parse_metrics(text: str) -> ServiceMetrics:
    found = ServiceMetrics()
    commands: dict[str, float] = defaultdict(float)
    by_type: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "clinic_events_handled_total":
                found.handled += sample.value
                by_type[f"{sample.labels.get('type', '?')} {sample.labels.get('outcome', '?')}"] += sample.value
            elif sample.name == "clinic_store_commands_total":
                commands[sample.labels.get("command", "?")] += sample.value
            elif sample.name == "clinic_outbox_published_total":
                found.published = (found.published or 0.0) + sample.value
            elif sample.name == "clinic_outbox_backlog":
                found.outbox_backlog = (found.outbox_backlog or 0.0) + sample.value
    found.commands = dict(commands)
    found.handled_by_type = dict(by_type)
    return found


class Services:
    """The four services started by `clinic.stack` on one deployment; stopped by `stop()` (idempotent)."""

    def __init__(
        self, settings: Settings, state: Path, *, chairs: int | None = None, env: dict[str, str] | None = None, instances: dict[str, int] | None = None
    ) -> None:
        """``instances``: how many processes per service (default one each; see ``stack.instance_names``)."""
        self.settings = settings
        self.state = state
        self.chairs = chairs
        self.extra_env = env or {}
        self.names = stack.instance_names(instances)
        self.processes: list[stack.ServiceProcess] = []
        self.env: dict[str, str] = {}
        self.ports: dict[str, int] = {}

    def start(self, timeout: float = 180.0) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers,
            "MONGODB_URL": self.settings.mongodb_url.get_secret_value(),
            "CLINIC_TOPIC_PREFIX": self.settings.topic_prefix,
            "CLINIC_DATABASE_PREFIX": self.settings.database_prefix,
            **self.extra_env,
        }
        if self.chairs is not None:
            path = self.state / "scheduling.json"
            path.write_text(json.dumps(scheduling_config(self.chairs), indent=2))
            env["CLINIC_SCHEDULING_CONFIG"] = str(path)
        self.env, self.ports = env, dict(zip(self.names, free_ports(len(self.names)), strict=True))
        self.processes = stack.start(env, self.state, http_ports=self.ports, names=self.names)
        try:
            stack.wait_ready(self.processes, timeout)
        except stack.StackError as error:
            lines = [line for line in str(error).splitlines() if line.strip()]
            first = lines[0].split("; last lines of")[0]
            last = f": {lines[-1].strip()}" if len(lines) > 1 else ""
            raise BenchError(f"{first}{last} (logs in {self.state / 'logs'})") from None

    def stop(self) -> None:
        stack.stop(self.state, names=self.names)

    def wait_ready(self, timeout: float = 180.0) -> None:
        try:
            stack.wait_ready(self.processes, timeout)
        except stack.StackError as error:
            raise BenchError(f"{str(error).splitlines()[0]} (logs in {self.state / 'logs'})") from None

    def restart(self, name: str) -> tuple[int | None, int]:
        """SIGKILL one instance and start it again on the same port (not waiting until it is ready);
        returns the old and the new pid."""
        old = stack.kill(self.state, name)
        [process] = stack.start(self.env, self.state, http_ports=self.ports, names=(name,))
        self.processes = [process if p.name == name else p for p in self.processes]
        return old, process.pid

    def check_alive(self) -> None:
        for process in self.processes:
            if stack.running_pid(self.state, process.name) is None:
                raise BenchError(f"{process.name} exited during the run; see {process.log}")

    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in self.processes}

    def _scrape(self, process: stack.ServiceProcess) -> ServiceMetrics:
        try:
            with urllib.request.urlopen(f"{process.url}/metrics", timeout=5) as response:
                return parse_metrics(response.read().decode())
        except (OSError, urllib.error.URLError) as error:
            raise BenchError(f"{process.name}'s /metrics does not answer at {process.url} ({error})") from None

    async def metrics(self) -> dict[str, ServiceMetrics]:
        results = await asyncio.gather(*(asyncio.to_thread(self._scrape, p) for p in self.processes))
        return {p.name: m for p, m in zip(self.processes, results, strict=True)}

    async def handled_total(self) -> float:
        return sum(m.handled for m in (await self.metrics()).values())

    async def settle(self, quiet_seconds: float = 3.0, limit: float = 300.0, say=print) -> float | None:
        """Wait until no service handles anything for `quiet_seconds` (and outboxes are empty when the
        services report a backlog). Returns when the handled count last moved (time.perf_counter), or
        None if the services did not go quiet within `limit` seconds."""
        deadline = time.monotonic() + limit
        last, changed_at, told = None, time.perf_counter(), time.monotonic()
        while time.monotonic() < deadline:
            self.check_alive()
            metrics = await self.metrics()
            handled = sum(m.handled for m in metrics.values())
            backlog = sum(m.outbox_backlog or 0.0 for m in metrics.values())
            if handled != last or backlog > 0:
                if handled != last and last is not None:
                    changed_at = time.perf_counter()
                last = handled
                quiet_since = time.perf_counter()
            elif time.perf_counter() - quiet_since >= quiet_seconds:
                return changed_at
            if time.monotonic() - told > 10:
                say(f"  waiting for the services to go quiet: {handled:,.0f} events handled so far, outbox backlog {backlog:,.0f}")
                told = time.monotonic()
            await asyncio.sleep(0.25)
        say(f"  the services did not go quiet within {limit:.0f} s; going on")
        return None


# --- CPU time from /proc -------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process including reaped children) or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return int(rest[1]), (utime + stime + cutime + cstime) / TICKS


def tree_cpu(pid: int | None) -> float | None:
    """CPU seconds of a process and all its descendants (a wrapper script's java counts with it)."""
    if pid is None or _stat(pid) is None:
        return None
    children: dict[int, list[int]] = defaultdict(list)
    seconds: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children[stat[0]].append(int(entry.name))
                seconds[int(entry.name)] = stat[1]
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += seconds.get(current, 0.0)
        todo.extend(children.get(current, ()))
    return total


def infra_pid(name: str) -> int | None:
    try:
        return int((LOCAL / f"{name}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine_busy_seconds() -> float:
    """CPU seconds every core spent not idle since boot (all processes on the machine)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Snapshot:
    at: float
    metrics: dict[str, ServiceMetrics]
    cpu: dict[str, float | None]


async def snapshot(services: Services) -> Snapshot:
    metrics = await services.metrics()
    cpu: dict[str, float | None] = {name: tree_cpu(pid) for name, pid in services.pids().items()}
    cpu["ferretdb"] = tree_cpu(infra_pid("ferretdb"))
    cpu["kafka"] = tree_cpu(infra_pid("kafka"))
    cpu["bench"] = own_cpu_seconds()
    cpu["machine"] = machine_busy_seconds()
    return Snapshot(time.perf_counter(), metrics, cpu)


def cpu_delta(before: Snapshot, after: Snapshot, name: str) -> float | None:
    a, b = before.cpu.get(name), after.cpu.get(name)
    return None if a is None or b is None else round(b - a, 3)
