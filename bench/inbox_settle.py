"""What settling a consumed batch's inbox records costs the store (measured, not asserted).

    python -m bench.inbox_settle                 # against the running store (MONGODB_URL), --rounds 300
    python -m bench.inbox_settle --sizes 1,8,32

After a batch is handled, its inbox records become ``applied`` in one round trip (``store.mark_applied``).
This writes records shaped like the runtime's (a packed effects value of 800 bytes) into a fresh database
and settles them batch by batch in two ways, in turns: one update statement per record (what the runtime
sent before 1cbb7a4) and ``store.mark_applied`` itself (one ``_id`` ``$in`` statement for the batch). It
prints, per batch size, the CPU the local FerretDB spent per batch (from /proc; `clinic infra up` writes its pid to
.local/ferretdb.pid) and the client's wall time per batch. Our FerretDB build writes the documents one
statement modifies in one transaction (infra/local.py, FERRETDB_UPDATE_BATCH), so the second way costs one
commit per batch where the first costs one per record.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bson.binary import Binary
from pymongo import UpdateOne

from bench.journeys import OneLineParser, _count
from bench.system import BenchError, check_store, infra_pid, tree_cpu
from shared.runtime.store import DROPPED_WHEN_APPLIED, EFFECTS, INBOX, Database, connect, database, mark_applied
from shared.settings import Settings


def one_per_record(db: Database, ids: list[str], now: datetime) -> Awaitable[Any]:
    """How ``store.mark_applied`` settled a batch before 1cbb7a4: one update statement per record."""
    return db[INBOX].bulk_write([UpdateOne({"_id": i}, {"$set": {"status": "applied", "applied_at": now, "event_ids": []}, "$unset": DROPPED_WHEN_APPLIED}) for i in ids], ordered=False)


def one_for_the_batch(db: Database, ids: list[str], now: datetime) -> Awaitable[Any]:
    """``store.mark_applied`` itself (one statement for the batch)."""
    return mark_applied(db, [{"_id": i, "event_ids": []} for i in ids], now)


WAYS: dict[str, Callable[[Database, list[str], datetime], Awaitable[Any]]] = {"one statement per record": one_per_record, "one statement for the batch": one_for_the_batch}


def _sizes(text: str) -> list[int]:
    parse = _count(1)
    return [parse(part) for part in text.split(",")]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m bench.inbox_settle", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--rounds", type=_count(1), default=300, help="batches settled per size and way (default 300)")
    p.add_argument("--sizes", type=_sizes, default=[1, 2, 8, 32], help="records per batch, comma-separated (default 1,2,8,32)")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        await check_store(settings)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    pid = infra_pid("ferretdb")
    if tree_cpu(pid) is None:
        print("bench: no local FerretDB to measure (.local/ferretdb.pid); start it with `clinic infra up`", file=sys.stderr)
        return 1
    client = connect(settings.mongodb_url.get_secret_value(), "bench-inbox-settle")
    name = f"{settings.database_prefix}settle{secrets.token_hex(3)}"
    db, now = database(client, name), datetime.now(UTC)
    try:
        print(f"FerretDB CPU and client wall time per settled batch, {args.rounds} batches per size and way, database {name}")
        for size in args.sizes:
            spent: dict[str, list[float]] = {way: [0.0, 0.0] for way in WAYS}
            for start in range(0, args.rounds, 50):  # the two ways in turns, 50 batches at a time
                for n, (way, settle) in enumerate(WAYS.items()):
                    rounds = min(50, args.rounds - start)
                    batches = [[f"src|{n}-{size}-{start + r}-{k}" for k in range(size)] for r in range(rounds)]
                    await db[INBOX].insert_many(
                        [{"_id": i, "status": "recorded", "type": "bench", "outcome": "done", "received_at": now, "event_ids": [], EFFECTS: Binary(os.urandom(800))}
                         for ids in batches for i in ids]
                    )
                    cpu, wall = tree_cpu(pid) or 0.0, time.perf_counter()
                    for ids in batches:
                        await settle(db, ids, now)
                    spent[way][0] += (tree_cpu(pid) or 0.0) - cpu
                    spent[way][1] += time.perf_counter() - wall
            for way, (cpu, wall) in spent.items():
                print(f"  {size:3} records  {way:28}  FerretDB {1000 * cpu / args.rounds:6.2f} CPU ms   wall {1000 * wall / args.rounds:6.2f} ms")
        left = await db[INBOX].count_documents({"status": {"$ne": "applied"}})
        if left:
            print(f"bench: {left} records were not settled", file=sys.stderr)
            return 1
    finally:
        await client.drop_database(name)
        await client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
