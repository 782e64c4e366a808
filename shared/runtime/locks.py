"""Locks by key within one process, for handlers that run several patients at once.

Claims on shared resources (a lot's next ledger entry, a week's next demand slot) are settled by unique
inserts, whoever races: that is what keeps two instances correct. Within one instance, tasks handling
different patients at once would race the same way and mostly lose to each other (a lost claim costs a
failed insert and a read). Holding the resource's lock around "decide from the latest known, insert the
next" lets them take turns instead, at the cost of one insert each; everything else they do runs at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager


class KeyedLocks:
    """One ``asyncio.Lock`` per key while somebody holds or waits for it; forgotten when nobody does, so
    the keys seen over the years do not pile up."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, keys: Iterable[str]) -> AsyncIterator[None]:
        """Hold every key's lock, taken in sorted order (two tasks wanting overlapping keys cannot deadlock)."""
        registered: list[str] = []
        acquired: list[asyncio.Lock] = []
        try:
            for key in sorted(set(keys)):
                lock, users = self._locks.get(key, (asyncio.Lock(), 0))
                self._locks[key] = (lock, users + 1)
                registered.append(key)
                await lock.acquire()
                acquired.append(lock)
            yield
        finally:
            for lock in reversed(acquired):
                lock.release()
            for key in registered:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
