"""Transient failures (store or broker unreachable) are retried with backoff, never skipped."""

from __future__ import annotations

import random

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError, RequestTimedOutError
from pymongo.errors import AutoReconnect, BulkWriteError, ConnectionFailure, NetworkTimeout, NotPrimaryError, OperationFailure, ServerSelectionTimeoutError

from shared.runtime.locks import GroupAbandoned

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
    GroupAbandoned,
)

STEPPED_DOWN_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
"""Server error codes MongoDB's retryable-writes specification retries: the primary stepped down or is
shutting down (189, 91, 11600, 11602), a node that is not primary (10107, 13435, 13436), the network or a
time limit (6, 7, 89, 262, 9001). PyMongo retries single-document writes refused that way itself, but never
a multi-document update (a batch's inbox settle is one), so a refusal that carries only these codes,
alone or as a bulk write's write or write-concern errors, is retried like an unreachable store."""


def _codes(error: BaseException) -> list[object]:
    if isinstance(error, BulkWriteError):
        details = error.details or {}
        return [e.get("code") for e in (*details.get("writeErrors", ()), *details.get("writeConcernErrors", ()))]
    if isinstance(error, OperationFailure):
        return [error.code]
    return []


def is_transient(error: BaseException) -> bool:
    if isinstance(error, TRANSIENT):
        return True
    codes = _codes(error)
    if codes and all(code in STEPPED_DOWN_CODES for code in codes):
        return True
    retriable = getattr(error, "retriable", False)
    return bool(retriable)


def backoff(attempt: int, cap: float, base: float = 0.2) -> float:
    """Full jitter exponential backoff: attempt 1 waits up to 0.2 s, doubling to ``cap``."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))
