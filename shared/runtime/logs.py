"""Logging: one line per record, key=value or JSON, UTC times with milliseconds, and the trace and span
ids of the span current when the line is logged. Event bodies only ever at DEBUG.

Patient ids are pseudonymous but linkable across systems; with a key configured
(``CLINIC_LOG_PATIENT_KEY``) every ``patient`` field is written as a keyed hash instead: the same patient
gives the same hash in every line and service (so a support engineer can still follow one patient), and
without the key nobody can tell which patient it is or compute the hash of a known id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from shared.runtime.tracing import ids as tracing_ids

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
PATIENT_FIELDS = frozenset({"patient", "patient_id"})


def patient_hash(key: SecretStr, patient: str) -> str:
    """``h:`` and the first 16 hex digits of HMAC-SHA256(key, patient id)."""
    return "h:" + hmac.new(key.get_secret_value().encode(), patient.encode(), hashlib.sha256).hexdigest()[:16]


class _Fields(logging.Formatter):
    def __init__(self, as_json: bool, patient_key: SecretStr | None = None) -> None:
        super().__init__()
        self.as_json = as_json
        self.patient_key = patient_key

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}
        if self.patient_key is not None:
            for name in PATIENT_FIELDS & fields.keys():
                if fields[name] is not None:
                    fields[name] = patient_hash(self.patient_key, str(fields[name]))
        base = {
            "time": utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            base["error"] = self.formatException(record.exc_info)
        if self.as_json:
            return json.dumps({**base, **fields}, default=str)
        extra = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        line = f"{base['time']} {base['level']:<7} {base['logger']} {base['msg']}" + (f" {extra}" if extra else "")
        return line + (f"\n{base['error']}" if "error" in base else "")


def utc_time(created: float) -> str:
    """RFC 3339 in UTC with milliseconds: 2025-01-31T09:05:12.345Z."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TraceIds(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` of the current span to every record logged while one is current
    (an event being handled), unless the record carries its own (the event line, written after the
    commit, carries its span's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            for name, value in tracing_ids().items():
                setattr(record, name, value)
        return True


def _quote(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or " " in text or "=" in text) else text


def configure(level: str = "INFO", fmt: str = "text", patient_key: SecretStr | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Fields(fmt == "json", patient_key))
    handler.addFilter(TraceIds())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The runtime logs what an operator acts on (one line per retry, per event); the libraries' own
    # connection errors would repeat it, so they speak only at DEBUG.
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.CRITICAL
    for noisy in ("aiokafka", "faststream", "pymongo", "uvicorn"):
        logging.getLogger(noisy).setLevel(quiet)
