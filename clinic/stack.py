"""The four services as separate OS processes: start, wait until ready, stop. Used by `clinic up`,
`clinic run` and the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from clinic.asyncapi import SERVICES

BASE_HTTP_PORT = 8101


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServiceProcess:
    name: str
    pid: int
    http_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def ports(base: int = BASE_HTTP_PORT) -> dict[str, int]:
    return {name: base + i for i, name in enumerate(SERVICES)}


def instance_names(counts: dict[str, int] | None = None) -> tuple[str, ...]:
    """Process names for ``counts`` instances per service: the first keeps the service's name, the next
    ones are ``<service>-2``, ``<service>-3``... (their own log, pid file and HTTP port, the same group)."""
    counts = counts or {}
    return tuple(name if i == 1 else f"{name}-{i}" for name in SERVICES for i in range(1, counts.get(name, 1) + 1))


def service_of(name: str) -> str:
    """The service an instance name runs: ``inventory-2`` -> ``inventory``."""
    base, _, number = name.rpartition("-")
    return base if base and number.isdigit() else name


def start(env: dict[str, str], state: Path, *, http_ports: dict[str, int] | None = None, names: tuple[str, ...] = SERVICES) -> list[ServiceProcess]:
    """Start each service as `python -m services.<name>`, logs in state/logs, pids in state/services.
    ``names`` may hold instance names (``inventory-2``, see ``instance_names``)."""
    http_ports = http_ports or ports()
    (state / "logs").mkdir(parents=True, exist_ok=True)
    (state / "services").mkdir(parents=True, exist_ok=True)
    started = []
    for name in names:
        if (pid := running_pid(state, name)) is not None:
            started.append(ServiceProcess(name, pid, http_ports[name], state / "logs" / f"{name}.log"))
            continue
        log_path = state / "logs" / f"{name}.log"
        process_env = {**os.environ, **env, "CLINIC_HTTP_PORT": str(http_ports[name])}
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", f"services.{service_of(name)}"],
                env=process_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (state / "services" / f"{name}.pid").write_text(f"{process.pid} {http_ports[name]}")
        started.append(ServiceProcess(name, process.pid, http_ports[name], log_path))
    return started


def wait_ready(processes: list[ServiceProcess], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(processes)
    while waiting:
        for service in list(waiting):
            if not _alive(service.pid):
                raise StackError(f"{service.name} exited during start-up; last lines of {service.log}:\n{_tail(service.log)}")
            if readiness(service)[0] == 200:
                waiting.remove(service)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(f"{s.name} ({readiness(s)[1]})" for s in waiting)
            raise StackError(f"not ready after {timeout:.0f}s: {names}; logs in {waiting[0].log.parent}")
        time.sleep(0.25)


def readiness(service: ServiceProcess) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{service.url}/readyz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except (OSError, ValueError):
        return 0, {"error": "not answering"}


def stop(state: Path, names: tuple[str, ...] = SERVICES, grace: float = 20.0) -> list[str]:
    """SIGTERM every running service (each stops its consumer and relay cleanly), SIGKILL after grace."""
    stopped = []
    pids = {name: pid for name in names if (pid := running_pid(state, name)) is not None}
    for pid in pids.values():
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for name, pid in pids.items():
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
        (state / "services" / f"{name}.pid").unlink(missing_ok=True)
        stopped.append(name)
    return stopped


def kill(state: Path, name: str) -> int | None:
    """SIGKILL one running instance (no clean shutdown: a crash); returns its pid, None if it was not running."""
    pid = running_pid(state, name)
    if pid is None:
        return None
    _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (state / "services" / f"{name}.pid").unlink(missing_ok=True)
    return pid


def running_pid(state: Path, name: str) -> int | None:
    try:
        pid = int((state / "services" / f"{name}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return Path(f"/proc/{pid}").exists() and "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()


def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
