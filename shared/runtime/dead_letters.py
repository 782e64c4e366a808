"""Dead letters: a record a service cannot accept goes to ``<topic>.dlq`` with why, where from and when,
in ``dlq_*`` headers (``clinic dlq list`` and ``replay`` read them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord

from shared.contracts import dlq_topic
from shared.runtime import metrics
from shared.runtime.context import Context
from shared.runtime.retry import backoff, is_transient

REPLAYED_FROM = "dlq_replayed_from"
"""The header ``clinic dlq replay`` puts on a record it re-publishes: where the dead letter was."""


class DeadLetters:
    def __init__(self, context: Context[Any]) -> None:
        self.context = context
        self.replays_failed = 0
        """Replayed dead letters that failed again since this instance started (also a metric, and in /readyz)."""

    async def send(self, record: ConsumerRecord, reason: str, detail: str) -> None:
        context = self.context
        headers = {name: (value or b"").decode("utf-8", "replace") for name, value in record.headers or ()}
        if REPLAYED_FROM in headers:  # an operator's replay failed again: counted, so it is not silently given up
            self.replays_failed += 1
            metrics.REPLAYS_FAILED.labels(context.name, record.topic, reason).inc()
            context.log.warning("a replayed dead letter failed again", extra={"reason": reason, "replayed_from": headers[REPLAYED_FROM], **where(record)})
        headers.update(
            {
                "dlq_reason": reason,
                "dlq_error": detail[:1000],
                "dlq_topic": record.topic,
                "dlq_partition": str(record.partition),
                "dlq_offset": str(record.offset),
                "dlq_group": context.group_id,
                "dlq_service": context.name,
                "dlq_failed_at": datetime.now(UTC).isoformat(),
            }
        )
        attempt = 0
        value = record.value or b""
        while True:
            try:
                await context.kafka.publish(value, topic=dlq_topic(record.topic), key=record.key, headers=headers)
                return
            except Exception as error:
                if not is_transient(error):
                    if value:  # e.g. too large once the dlq headers are added: keep the facts, drop the body
                        context.log.error("dead letter refused, sending it without its value", extra={"error": error.__class__.__name__, **where(record)})
                        value = b""
                        headers = {k: v for k, v in headers.items() if k.startswith(("dlq_", "ce_id", "ce_type", "ce_source"))}
                        headers["dlq_value_dropped"] = error.__class__.__name__
                        continue
                    # the record itself stays in its topic at this offset; say where, then move on
                    context.log.error("dead letter could not be written", extra={"error": error.__class__.__name__, **where(record)})
                    return
                attempt += 1
                context.log.warning("dead-letter publish failed, retrying", extra={"error": error.__class__.__name__, "attempt": attempt})
                await context.pause(backoff(attempt, context.settings.retry_max_seconds))


def where(record: ConsumerRecord) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}
