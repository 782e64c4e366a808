"""Logging: one line per record, key=value or JSON. Event bodies only ever at DEBUG."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class _Fields(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}
        base = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
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


def _quote(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or " " in text or "=" in text) else text


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Fields(fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The runtime logs what an operator acts on (one line per retry, per event); the libraries' own
    # connection errors would repeat it, so they speak only at DEBUG.
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.CRITICAL
    for noisy in ("aiokafka", "faststream", "pymongo", "uvicorn"):
        logging.getLogger(noisy).setLevel(quiet)
