"""Service runtime: handlers, effects, inbox/outbox, dead letters, retries."""

from shared.runtime.effects import Effects, Emit, ignored
from shared.runtime.service import Handlers, Rejected, Runtime, Service

__all__ = ["Effects", "Emit", "Handlers", "Rejected", "Runtime", "Service", "ignored"]
