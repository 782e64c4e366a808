"""KeyedLocks: tasks wanting one key take turns, others run at once, and no key outlives its users. GroupCommit:
what queued up meanwhile is written together, in order, and a failure or a stop reaches only its own group."""

import asyncio

import pytest

from shared.runtime.locks import GroupAbandoned, GroupCommit, KeyedLocks
from shared.runtime.retry import is_transient


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


async def test_a_group_commit_writes_what_came_meanwhile_as_the_next_group_in_order():
    groups: list[list[int]] = []
    writing = asyncio.Event()
    proceed = asyncio.Event()

    async def write(key: str, items: list[int]) -> list[str]:
        groups.append(items)
        writing.set()
        await proceed.wait()
        return [f"{key}:{item}" for item in items]

    commit = GroupCommit(write, "test")
    first = asyncio.create_task(commit.submit("week", 0))
    await writing.wait()  # the first group is being written: these wait for it, then go together
    rest = [asyncio.create_task(commit.submit("week", n)) for n in range(1, 6)]
    other = asyncio.create_task(commit.submit("other", 9))
    for _ in range(5):
        await asyncio.sleep(0)
    proceed.set()

    assert await first == "week:0"
    assert [await task for task in rest] == [f"week:{n}" for n in range(1, 6)]
    assert await other == "other:9"
    assert sorted(groups) == [[0], [1, 2, 3, 4, 5], [9]]
    assert len(commit) == 0


async def test_a_failed_group_fails_its_own_submitters_only_and_the_next_group_is_written():
    async def write(key: str, items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        if 13 in items:
            raise ValueError("refused")
        return items

    commit = GroupCommit(write, "test")
    unlucky = [asyncio.create_task(commit.submit("k", n)) for n in (12, 13)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first group is in its write
    later = asyncio.create_task(commit.submit("k", 14))
    results = await asyncio.gather(*unlucky, later, return_exceptions=True)

    assert [type(r) for r in results[:2]] == [ValueError, ValueError] and results[2] == 14


class HeldWrite:
    """A group commit's write that records each group and holds it until ``proceed`` is set."""

    def __init__(self) -> None:
        self.writing, self.proceed = asyncio.Event(), asyncio.Event()
        self.written: list[list[str]] = []

    async def __call__(self, key: str, items: list[str]) -> list[str]:
        self.writing.set()
        await self.proceed.wait()
        self.written.append(items)
        return items


async def test_a_cancelled_submitter_does_not_cancel_the_others_write():
    write = HeldWrite()
    commit = GroupCommit(write, "test")
    leaving = asyncio.create_task(commit.submit("k", "a"))
    staying = asyncio.create_task(commit.submit("k", "b"))
    await write.writing.wait()  # their group is being written
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    write.proceed.set()

    assert await staying == "b"
    assert write.written == [["a", "b"]]  # its write may still be made, as when a process stops after a claim


async def test_a_submitter_cancelled_while_it_waits_for_the_next_group_is_left_out_of_it():
    write = HeldWrite()
    commit = GroupCommit(write, "test")
    first = asyncio.create_task(commit.submit("k", "a"))
    await write.writing.wait()  # "a" is being written: the next two wait for the next group
    leaving = asyncio.create_task(commit.submit("k", "b"))
    staying = asyncio.create_task(commit.submit("k", "c"))
    await asyncio.sleep(0)  # both have submitted
    leaving.cancel()  # a rebalance took its event away before its group began: nothing of it is written later
    with pytest.raises(asyncio.CancelledError):
        await leaving
    write.proceed.set()

    assert (await first, await staying) == ("a", "c")
    assert write.written == [["a"], ["c"]]


async def test_a_group_whose_writer_is_stopped_fails_transiently_for_everyone_waiting():
    async def write(key: str, items: list[str]) -> list[str]:
        await asyncio.Event().wait()  # never ends
        return items

    commit = GroupCommit(write, "test")
    waiting = [asyncio.create_task(commit.submit("k", name)) for name in "abc"]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    for task in asyncio.all_tasks():
        if task.get_name() == "group-commit:test":
            task.cancel()  # the process is stopping
    results = await asyncio.gather(*waiting, return_exceptions=True)

    assert all(isinstance(r, GroupAbandoned) and is_transient(r) for r in results)
    assert len(commit) == 0


async def test_a_writer_stopped_before_its_first_step_leaves_no_key_wedged():
    async def write(key: str, items: list[str]) -> list[str]:
        return items

    commit = GroupCommit(write, "test")
    waiting = asyncio.create_task(commit.submit("k", "a"))
    await asyncio.sleep(0)  # the submission is in; its writer has not run a step yet
    for task in asyncio.all_tasks():
        if task.get_name() == "group-commit:test":
            task.cancel()
    with pytest.raises(GroupAbandoned):
        await waiting
    async with asyncio.timeout(1):
        assert await commit.submit("k", "b") == "b"  # a new writer for the key
    await asyncio.sleep(0)  # its end is noted a step after it ends
    assert len(commit) == 0


async def test_each_groups_write_runs_in_the_context_of_its_first_submission():
    import contextvars

    current = contextvars.ContextVar("current", default="none")
    seen: list[tuple[str, list[str]]] = []
    proceed = asyncio.Event()

    async def write(key: str, items: list[str]) -> list[str]:
        seen.append((current.get(), items))
        await proceed.wait()
        return items

    commit = GroupCommit(write, "test")

    async def submit(name: str) -> str:
        current.set(name)
        return await commit.submit("k", name)

    first = asyncio.create_task(submit("a"))
    for _ in range(3):
        await asyncio.sleep(0)
    later = [asyncio.create_task(submit(name)) for name in ("b", "c")]
    for _ in range(3):
        await asyncio.sleep(0)
    proceed.set()
    await asyncio.gather(first, *later)

    assert seen == [("a", ["a"]), ("b", ["b", "c"])]
