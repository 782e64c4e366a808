"""Locks and group commits by key within one process, for handlers that run several patients at once.

Claims on shared resources (a lot's next ledger entry, a week's next demand slot) are settled by unique
inserts, whoever races: that is what keeps two instances correct. Within one instance, tasks handling
different patients at once would race the same way and mostly lose to each other (a lost claim costs a
failed insert and a read). Holding the resource's lock around "decide from the latest known, insert the
next" (``KeyedLocks``) lets them take turns instead, at the cost of one insert each; a ``GroupCommit``
goes further: the tasks that queued up while one group was written are decided in turn and written as
the next group, in one ordered insert. Everything else they do runs at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Hashable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")


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


class GroupAbandoned(RuntimeError):
    """The group a submission joined was not written to the end (its writer was cancelled: the process is
    stopping); whether its writes were made is unknown, as after a crash. Transient (retry.py): the event is
    handled again, and its claims tell what was made."""


class GroupCommit(Generic[K, T, R]):
    """Group commit by key: submissions made while a key's group is being written wait, and are then
    written together, by one ``write(key, items)`` call, in the order they came. A lock around each
    write would have the same effect with one write per submission; here the convoy behind a busy key
    becomes the next group, so the busier the key, the fewer writes per submission.

    ``write`` runs in a task of its own, so a submitter that is cancelled (a rebalance, a shutdown) does
    not cancel the others' writes; its own is still made when its group was being written, as when a
    process stops after a claim, and left out when its group had not begun (its event is handled again
    and that run makes it).
    Each group's write runs in the context of its first submission (its trace: the store commands of a
    group are children of that event's span). It returns one result per item, in order; an exception it
    raises is every submission's of that group."""

    def __init__(self, write: Callable[[K, list[T]], Coroutine[Any, Any, list[R]]], name: str) -> None:
        self._write = write
        self._name = name
        self._waiting: dict[K, list[tuple[T, asyncio.Future[R], contextvars.Context]]] = {}
        self._writers: dict[K, asyncio.Task[None]] = {}

    async def submit(self, key: K, item: T) -> R:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        writer = self._writers.get(key)
        if writer is not None and writer.get_loop() is not loop:  # left by an event loop that has ended
            self._waiting[key] = [waiting for waiting in self._waiting.get(key, []) if waiting[1].get_loop() is loop]
        self._waiting.setdefault(key, []).append((item, done, contextvars.copy_context()))
        if writer is None or writer.done() or writer.get_loop() is not loop:
            writer = loop.create_task(self._drain(key), name=f"group-commit:{self._name}", context=contextvars.Context())
            self._writers[key] = writer
            writer.add_done_callback(functools.partial(self._ended, key))
        return await done

    async def _drain(self, key: K) -> None:
        while waiting := self._waiting.pop(key, []):
            if not (group := [submission for submission in waiting if not submission[1].done()]):
                continue  # every submitter was cancelled before its group began
            try:
                results: list[R] = await asyncio.create_task(self._write(key, [item for item, _, _ in group]), context=group[0][2])
                if len(results) != len(group):
                    raise RuntimeError(f"{self._name}: {len(results)} results for {len(group)} submissions")
            except Exception as error:  # each submitter of the group gets its failure
                for _, done, _ in group:
                    if not done.done():
                        done.set_exception(error)
                continue
            except BaseException:  # cancelled: the process is stopping
                self._waiting.setdefault(key, [])[:0] = group
                raise
            for (_, done, _), result in zip(group, results, strict=True):
                if not done.done():
                    done.set_result(result)

    def _ended(self, key: K, writer: asyncio.Task[None]) -> None:
        """However the writer ended (also cancelled before its first step), nobody is left waiting for it."""
        if self._writers.get(key) is not writer:
            return
        del self._writers[key]
        for _, done, _ in self._waiting.pop(key, []):
            if not done.done():
                done.set_exception(GroupAbandoned(f"{self._name}: the group was not written to the end"))

    def __len__(self) -> int:
        """Keys being written now (none are kept once written)."""
        return len(self._writers)
