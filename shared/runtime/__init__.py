"""Service runtime: handlers, effects, inbox/outbox, dead letters, retries."""

from shared.runtime.effects import Effects, Emit, ignored
from shared.runtime.registry import Handlers, Rejected, Runtime
from shared.runtime.service import Service

__all__ = ["Effects", "Emit", "Handlers", "Rejected", "Runtime", "Service", "ignored"]
