"""Event contracts: one pydantic model per event, and the registry that maps them to types and topics."""

from shared.contracts import aftercare, consultation, inventory, scheduling
from shared.contracts.base import EventData
from shared.contracts.registry import DLQ_SUFFIX, Registry, UnknownEventType, dlq_topic, examples, topic_of

REGISTRY = Registry([*consultation.EVENTS, *scheduling.EVENTS, *inventory.EVENTS, *aftercare.EVENTS])

__all__ = ["DLQ_SUFFIX", "REGISTRY", "EventData", "Registry", "UnknownEventType", "dlq_topic", "examples", "topic_of"]
