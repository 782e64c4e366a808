"""Periodic jobs (``Handlers.every``) and effects no inbound event caused: applied once per key, the key
playing the event id's part, through the inbox and the outbox like an event's."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from shared.runtime import store
from shared.runtime.context import Context
from shared.runtime.effects import Effects
from shared.runtime.registry import Handlers, Job
from shared.runtime.retry import backoff

D = TypeVar("D")


class Jobs(Generic[D]):
    def __init__(self, context: Context[D], handlers: Handlers[D]) -> None:
        self.context = context
        self.handlers = handlers

    def tasks(self) -> list[asyncio.Task[None]]:
        """One task per job, each running it every its seconds until cancelled."""
        name = self.context.name
        return [asyncio.create_task(self.every(job_name, seconds, job), name=f"{name}-{job_name}") for job_name, (seconds, job) in self.handlers.jobs.items()]

    async def run_all(self) -> int:
        """Run every periodic job once now (tests call this after moving the clock)."""
        count = 0
        for job_name, (_, job) in self.handlers.jobs.items():
            count += await self.run(job_name, job)
        return count

    async def run(self, job_name: str, job: Job[D]) -> int:
        context = self.context
        applied = 0
        for key, effects in await job(context.dependencies, context.clock.now()):
            with context.tracing.tracer.start_as_current_span(f"{context.name} job {job_name}"):  # the trace its events start
                outcome = await self.execute(f"job|{job_name}|{key}", effects)
            if outcome != "duplicate":
                applied += 1
                context.log.info("job", extra={"job": job_name, "key": key, "outcome": outcome})
        return applied

    async def every(self, job_name: str, seconds: float, job: Job[D]) -> None:
        failures = 0
        while True:
            try:
                await self.run(job_name, job)
                failures = 0
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                self.context.log.warning("job failed, retrying", extra={"job": job_name, "error": error.__class__.__name__, "attempt": failures})
                await asyncio.sleep(backoff(failures, self.context.settings.retry_max_seconds))

    async def execute(self, key: str, effects: Effects) -> str:
        """Apply effects that no inbound event caused, once per key (the key plays the event id's part)."""
        context = self.context
        db = context.database
        existing = await db[store.INBOX].find_one({"_id": key}, {"status": 1})
        if existing is not None and existing["status"] == "applied":
            return "duplicate"
        now = context.clock.now()
        rows = store.outgoing(None, effects, context.source, now, context.settings.topic_prefix, seed=key)
        document = await store.record(db, key, None, effects, rows, now, {"origin": "job"})
        if document["status"] != "applied":
            _, stored = await store.apply(db, document, now, publish_inline=False)
            await store.mark_applied(db, [document], now)
            if context.relay is not None:
                context.relay.schedule(stored)
        return str(document["outcome"])
