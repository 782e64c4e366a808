"""A password in MONGODB_URL or CLINIC_KAFKA_PASSWORD never reaches stdout, stderr or a log line: not
from the CLI (any command), not from a service that cannot reach its store."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
from pydantic import SecretStr

from tests.support.cli import clinic, security_env
from tests.unit.test_cli import COMMANDS

PASSWORD = "Pw-9f8e7d6c5b4a-never-shown"
STARTS_PROCESSES = {("run",), ("up",), ("down",), ("infra", "up"), ("infra", "down")}
ARGUMENTS = {("publish",): ("stock-received", "-"), ("tail",): ("stock-received",), ("dlq", "replay"): ("stock-received",),
             ("outbox", "list"): ("inventory",), ("outbox", "redrive"): ("inventory",)}
STDIN = b'{"delivery_id": "dlv_1", "ingredient": "biotin"}'
URLS = {
    "unreachable": f"mongodb://clinic-operator:{PASSWORD}@127.0.0.1:1/?authSource=admin",
    "malformed": f"mongodb://clinic-operator:{PASSWORD}@127.0.0.1:notaport/",
    "unknown host": f"mongodb+srv://clinic-operator:{PASSWORD}@no-such-cluster.invalid/",
}


STORE_COMMANDS = [("stock",), ("outbox", "list"), ("outbox", "redrive")]
CASES = [(path, "unreachable") for path in COMMANDS if path not in STARTS_PROCESSES]
CASES += [(path, kind) for path in STORE_COMMANDS for kind in URLS if kind != "unreachable"]


@pytest.mark.parametrize(("path", "kind"), CASES, ids=[f"{' '.join(path)} ({kind})" for path, kind in CASES])
async def test_no_cli_command_prints_the_password_of_the_store_url_or_of_kafka(settings, path, kind):
    url = URLS[kind]
    settings = settings.model_copy(update={
        "mongodb_url": SecretStr(url), "kafka_bootstrap_servers": "127.0.0.1:1",
        "kafka_security_protocol": "SASL_PLAINTEXT", "kafka_username": "clinic-operator", "kafka_password": SecretStr(PASSWORD),
    })
    code, out, err = await clinic(settings, *path, *ARGUMENTS.get(path, ()), stdin=STDIN)
    assert PASSWORD not in out + err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    if path in STORE_COMMANDS[:2]:
        assert code in (1, 2, 3) and "the store at mongodb" in err and "***@" in err, err


async def test_a_service_that_cannot_reach_its_store_logs_where_without_the_password(settings):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "MONGODB_URL": URLS["unreachable"],
           "CLINIC_RETRY_MAX_SECONDS": "1", **security_env(settings)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.inventory", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    expected = "store unreachable at mongodb://***@127.0.0.1:1/?authSource=admin, retrying"
    lines: list[str] = []
    try:  # server selection gives up after 5 s, then it says so and retries: read until it has, or a minute
        async with asyncio.timeout(60):
            assert process.stdout is not None
            while (line := (await process.stdout.readline()).decode()) and expected not in line:
                lines.append(line)
            lines.append(line)
    except TimeoutError:
        pass
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    log = "".join(lines) + output.decode()
    assert expected in log
    assert PASSWORD not in log


async def test_a_service_given_a_malformed_store_url_stops_in_one_line_without_the_password(settings):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "MONGODB_URL": URLS["malformed"]}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.aftercare", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1 and "cannot start" in output.decode()
    assert PASSWORD not in output.decode()
