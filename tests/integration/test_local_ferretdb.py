"""The FerretDB we build (infra/ferretdb, infra/local.py), on a second instance from the same build with a
port and folder of its own: what our changes to it must not break, and what they must do.

Logging: our wrapper hands FerretDB a logger that formats a record's attributes only when the record is
written (`lazyHandler` in infra/ferretdb/main.go): FerretDB attaches every SQL statement's arguments to a
debug message that the default level drops, and formatting them anyway cost a tenth of its CPU. The tests
read the instance's log at debug and at the default level.

Updates: the build writes the documents one update statement modifies in one transaction
(FERRETDB_UPDATE_BATCH). SQLite appends every page a transaction changed to its write-ahead log when it
commits, so a statement that wrote its documents one transaction each grows the log by a page or more per
document; the test reads the log's size around an update of many documents. Another checks that
findAndModify and upserts answer as before, and that a statement failing part-way writes none of its documents.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient, ReturnDocument, UpdateOne
from pymongo.errors import OperationFailure, PyMongoError

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


@asynccontextmanager
async def private_ferretdb(tmp_path: Path, level: str) -> AsyncIterator[tuple[AsyncMongoClient[dict], Path]]:
    """A FerretDB of our build on a free port, logging at ``level`` to ``tmp_path``; its client and data folder."""
    binary = local.build_ferretdb(local.Layout.from_env(), say=lambda _: None)  # built by `clinic infra up`; cached
    [port], log, data = free_ports(1), tmp_path / f"ferretdb-{level}.log", tmp_path / level
    with log.open("w") as out:
        server = await asyncio.create_subprocess_exec(
            str(binary), "--listen", f"127.0.0.1:{port}", "--data-dir", str(data), "--log-level", level,
            stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            url = f"mongodb://127.0.0.1:{port}/"
            await eventually(lambda: answers(url), timeout=STARTS_WITHIN, what=f"the FerretDB at {level} level answering")
            client = connect(url, "test-local-ferretdb")
            try:
                yield client, data
            finally:
                await client.close()
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), STARTS_WITHIN)


async def run_and_log(tmp_path: Path, level: str) -> str:
    async with private_ferretdb(tmp_path, level) as (client, _):
        await client["logged"]["docs"].insert_one({"_id": "pseudonym-7f3a", "dose_ml": 2})
    return (tmp_path / f"ferretdb-{level}.log").read_text()


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


def wal_bytes(data: Path, database: str) -> int:
    return (data / f"{database}.sqlite-wal").stat().st_size


async def test_the_documents_an_update_statement_modifies_are_written_in_one_transaction(tmp_path):
    many = local.FERRETDB_UPDATE_CHUNK + 44  # more than one chunk: the last, partial one is written at the end
    ids = [f"src|ev{i:04d}" for i in range(many)]
    async with private_ferretdb(tmp_path, "warn") as (client, data):
        docs = client["batched"]["inbox"]
        await docs.insert_many([{"_id": i, "status": "recorded"} for i in ids])
        before = wal_bytes(data, "batched")
        result = await docs.update_many({"_id": {"$in": ids[:40]}}, {"$set": {"status": "applied"}})
        grown = wal_bytes(data, "batched") - before
        everything = await docs.update_many({}, {"$set": {"seen": True}})
        stored = await docs.find({}).sort("_id", 1).to_list()

    assert (result.matched_count, result.modified_count) == (40, 40)
    # one transaction rewrites the few pages holding the 40 documents and the table's root; one per
    # document would append at least 40 pages (4 KiB each, plus a 24-byte frame header)
    assert grown < 10 * 4096, f"the write-ahead log grew by {grown} bytes for one update of 40 documents"
    assert (everything.matched_count, everything.modified_count) == (many, many)
    assert [d["status"] for d in stored] == ["applied"] * 40 + ["recorded"] * (many - 40)
    assert all(d["seen"] for d in stored) and [d["_id"] for d in stored] == ids


async def test_an_update_statement_still_returns_upserts_and_new_documents_and_fails_whole(tmp_path):
    async with private_ferretdb(tmp_path, "warn") as (client, _):
        docs = client["batched"]["things"]
        await docs.insert_many([{"_id": "a", "n": 1}, {"_id": "b", "n": "one"}, {"_id": "c", "n": 1}])
        after = await docs.find_one_and_update({"_id": "a"}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER)
        upserted = await docs.update_one({"_id": "d"}, {"$set": {"n": 5}}, upsert=True)
        with pytest.raises(OperationFailure):  # $inc meets a string in the second of three documents
            await docs.update_many({}, {"$inc": {"n": 1}})
        stored = {d["_id"]: d["n"] async for d in docs.find({})}

    assert after == {"_id": "a", "n": 2}
    assert upserted.upserted_id == "d" and upserted.modified_count == 0
    assert stored == {"a": 2, "b": "one", "c": 1, "d": 5}  # the failed statement wrote none of its documents


async def test_writers_upserting_one_new_document_at_once_all_succeed(tmp_path):
    """Each of eight writers upserts the same new ``_id`` at once (two scheduling instances noting one calendar
    hour). FerretDB found no document for several of them and their inserts then collided: the command failed
    with a duplicate key and no ``nModified``, a KeyError in PyMongo's bulk API. As on MongoDB, the upsert
    that finds the document inserted meanwhile now updates it (FERRETDB_UPSERT_PATCH)."""
    async with private_ferretdb(tmp_path, "warn") as (client, _):
        hours = client["calendar"]["hours"]

        async def note(hour: str, writer: int) -> tuple[int, int]:
            done = await hours.bulk_write([UpdateOne({"_id": hour}, {"$set": {f"cells.c{writer}": writer}}, upsert=True)], ordered=False)
            return done.upserted_count, done.modified_count

        for n in range(20):
            outcomes = await asyncio.gather(*(note(f"2026-03-02T{n:02d}", w) for w in range(8)), return_exceptions=True)
            assert [o for o in outcomes if not isinstance(o, tuple)] == [], f"hour {n}"
            # one writer inserted the hour, each of the others updated it (FerretDB's updates are read-modify-write,
            # so a concurrent writer's cell may still be lost, as the README says: only the counts are checked)
            assert sorted(outcomes) == [(0, 1)] * 7 + [(1, 0)], f"hour {n}"
        stored = await hours.count_documents({})

    assert stored == 20
