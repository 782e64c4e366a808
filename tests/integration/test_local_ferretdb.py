"""The FerretDB we build (infra/ferretdb, infra/local.py) still logs what it is asked to, at the level asked.

Our wrapper hands FerretDB a logger that formats a record's attributes only when the record is written
(`lazyHandler` in infra/ferretdb/main.go): FerretDB attaches every SQL statement's arguments to a debug
message that the default level drops, and formatting them anyway cost a tenth of its CPU. This starts a
second FerretDB from the same build on a port and folder of its own, at debug level, and reads its log.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from pymongo.errors import PyMongoError

from clinic.polling import eventually
from infra import local
from shared.runtime.store import connect
from tests.support.ports import free_ports

STARTS_WITHIN = 30.0


async def answers(url: str) -> bool:
    client = connect(url, "test-local-ferretdb")
    try:
        await client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        await client.close()


async def run_and_log(tmp_path: Path, level: str) -> str:
    binary = local.build_ferretdb(local.Layout.from_env(), say=lambda _: None)  # built by `clinic infra up`; cached
    [port], log = free_ports(1), tmp_path / f"ferretdb-{level}.log"
    with log.open("w") as out:
        server = await asyncio.create_subprocess_exec(
            str(binary), "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / level), "--log-level", level,
            stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            url = f"mongodb://127.0.0.1:{port}/"
            await eventually(lambda: answers(url), timeout=STARTS_WITHIN, what=f"the FerretDB at {level} level answering")
            client = connect(url, "test-local-ferretdb")
            try:
                await client["logged"]["docs"].insert_one({"_id": "pseudonym-7f3a", "dose_ml": 2})
            finally:
                await client.close()
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), STARTS_WITHIN)
    return log.read_text()


async def test_a_statement_is_logged_at_debug_with_the_attributes_it_was_given_in_order(tmp_path):
    logged = await run_and_log(tmp_path, "debug")
    inserts = [line for line in logged.splitlines() if '<<< INSERT INTO' in line and "pseudonym-7f3a" in line]
    assert len(inserts) == 1, logged[-2000:]
    # fsql's logger is named "sqlite", then the database; With adds the statement's arguments, then its result
    names, arguments, rows = inserts[0].index(" name=sqlite name=logged "), inserts[0].index(" args="), inserts[0].index(" rows=1 ")
    assert names < arguments < rows, inserts[0]
    assert '\\"_id\\":\\"pseudonym-7f3a\\",\\"dose_ml\\":2' in inserts[0]


async def test_at_the_default_level_no_statement_is_logged(tmp_path):
    logged = await run_and_log(tmp_path, "warn")
    assert "INSERT INTO" not in logged and "pseudonym-7f3a" not in logged, logged[-2000:]
