"""Transient failures (store or broker unreachable) are retried with backoff, never skipped."""

from __future__ import annotations

import random

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError, RequestTimedOutError
from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout, NotPrimaryError, ServerSelectionTimeoutError

TRANSIENT: tuple[type[BaseException], ...] = (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    NotPrimaryError,
    ServerSelectionTimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
    ConnectionError,
    TimeoutError,
)


def is_transient(error: BaseException) -> bool:
    if isinstance(error, TRANSIENT):
        return True
    retriable = getattr(error, "retriable", False)
    return bool(retriable)


def backoff(attempt: int, cap: float, base: float = 0.2) -> float:
    """Full jitter exponential backoff: attempt 1 waits up to 0.2 s, doubling to ``cap``."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))
