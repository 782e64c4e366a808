"""Prometheus metrics of the runtime, labelled by service (one set per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HANDLED = Counter("clinic_events_handled_total", "Events handled, by outcome.", ["service", "type", "outcome"])
FAILED = Counter("clinic_events_failed_total", "Handler attempts that failed, transient or not.", ["service", "type", "kind"])
DEAD_LETTERED = Counter("clinic_events_dead_lettered_total", "Messages sent to a dead-letter topic.", ["service", "topic", "reason"])
_HANDLER_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HANDLER_DURATION = Histogram(
    "clinic_handler_duration_seconds",
    "Time from receiving an event to the end of its handling (effects applied, events published).",
    ["service", "type"],
    buckets=_HANDLER_BUCKETS,
)
HANDLER_SECONDS = Histogram(
    "clinic_handler_seconds",
    "DEPRECATED: use clinic_handler_duration_seconds (same values); this name goes in the next release.",
    ["service", "type"],
    buckets=_HANDLER_BUCKETS,
)
OUTBOX_BACKLOG = Gauge("clinic_outbox_backlog", "Outbox events due and not yet published.", ["service"])
OUTBOX_FAILED = Counter("clinic_outbox_failed_total", "Outbox events given up on after repeated refusals (see the service log).", ["service"])
OUTBOX_SET_ASIDE = Gauge("clinic_outbox_set_aside", "Outbox events refused too often and set aside (`clinic outbox list <service>`).", ["service"])
REPLAYS_FAILED = Counter(
    "clinic_dead_letter_replays_failed_total",
    "Replayed dead letters (`clinic dlq replay`) that failed again and went back to the dead-letter topic; `clinic dlq list` marks them as replays.",
    ["service", "topic", "reason"],
)
OUTBOX_PUBLISHED = Counter("clinic_outbox_published_total", "Outbox events published.", ["service"])
CONSUMER_LAG = Gauge(
    "clinic_consumer_lag",
    "Messages behind the end of each partition assigned to this instance (series of partitions a rebalance took away are removed).",
    ["service", "topic", "partition"],
)
STORE_COMMANDS = Counter(
    "clinic_store_commands_total",
    "Store round trips (commands sent to MongoDB), by command name; with clinic_events_handled_total it gives round trips per event.",
    ["service", "command"],
)
