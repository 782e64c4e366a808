"""Event type <-> model <-> topic, in one place."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from shared.contracts.base import EventData

DLQ_SUFFIX = ".dlq"


class UnknownEventType(LookupError):
    pass


class Registry:
    def __init__(self, models: Iterable[type[EventData]]) -> None:
        self._by_type: dict[str, type[EventData]] = {}
        self._by_name: dict[str, type[EventData]] = {}
        for model in models:
            if model.event_type in self._by_type:
                raise ValueError(f"event type {model.event_type} is registered twice")
            self._by_type[model.event_type] = model
            self._by_name[model.event_name()] = model

    def __iter__(self) -> Iterator[type[EventData]]:
        return iter(self._by_type.values())

    def __len__(self) -> int:
        return len(self._by_type)

    def by_type(self, event_type: str) -> type[EventData]:
        try:
            return self._by_type[event_type]
        except KeyError:
            raise UnknownEventType(f"unknown event type {event_type!r}") from None

    def by_name(self, name: str) -> type[EventData]:
        """Accepts the CLI name (``session-completed``), the class name or the CloudEvents type."""
        model = self._by_name.get(name) or self._by_type.get(name)
        if model is None:
            model = next((m for m in self if m.__name__ == name), None)
        if model is None:
            raise UnknownEventType(f"unknown event {name!r}; `clinic events` lists them")
        return model

    def by_topic(self, topic: str, prefix: str = "") -> type[EventData]:
        if prefix and topic.startswith(prefix):
            topic = topic[len(prefix):]
        return self.by_type(topic)

    def produced_by(self, producer: str) -> list[type[EventData]]:
        return [m for m in self if m.producer == producer]


def topic_of(model: type[EventData] | str, prefix: str = "") -> str:
    """One topic per event type: the topic is the type, behind an optional deployment prefix."""
    event_type = model if isinstance(model, str) else model.event_type
    return f"{prefix}{event_type}"


def dlq_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


def examples(model: type[EventData]) -> list[dict[str, Any]]:
    extra = model.model_config.get("json_schema_extra") or {}
    found = extra.get("examples", []) if isinstance(extra, dict) else []
    return [example for example in found if isinstance(example, dict)] if isinstance(found, list) else []
