"""KeyedLocks: tasks wanting one key take turns, others run at once, and no key outlives its users."""

import asyncio

import pytest

from shared.runtime.locks import KeyedLocks


async def test_tasks_wanting_the_same_key_take_turns_and_others_do_not_wait():
    locks = KeyedLocks()
    inside: list[str] = []
    most = 0

    async def work(name: str, keys: list[str]) -> None:
        nonlocal most
        async with locks.hold(keys):
            inside.append(name)
            most = max(most, sum(1 for n in inside if n.startswith("a")))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            inside.remove(name)

    await asyncio.gather(*(work(f"a{n}", ["lot-A", "week-1"]) for n in range(5)), work("b", ["lot-B"]))

    assert most == 1 and len(locks) == 0


async def test_overlapping_keys_in_any_order_do_not_deadlock():
    locks = KeyedLocks()
    done = []

    async def work(keys: list[str]) -> None:
        async with locks.hold(keys):
            await asyncio.sleep(0)
            done.append(keys)

    async with asyncio.timeout(5):
        await asyncio.gather(*(work(["x", "y"] if n % 2 else ["y", "x"]) for n in range(20)))
    assert len(done) == 20 and len(locks) == 0


async def test_a_task_cancelled_while_waiting_leaves_the_holders_lock_alone():
    locks = KeyedLocks()
    holding, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with locks.hold(["k"]):
            holding.set()
            await release.wait()

    first = asyncio.create_task(holder())
    await holding.wait()
    waiter = asyncio.create_task(locks.hold(["k"]).__aenter__())
    for _ in range(10):
        await asyncio.sleep(0)
    waiter.cancel()  # cancelled while it waits for the holder
    with pytest.raises(asyncio.CancelledError):
        await waiter
    async with asyncio.timeout(1):  # the holder still holds "k": a third task must wait for it
        third = asyncio.create_task(locks.hold(["k"]).__aenter__())
        for _ in range(10):  # let it run as far as it can
            await asyncio.sleep(0)
        assert not third.done()
        release.set()
        await first
        await third
