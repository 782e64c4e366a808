"""A replayed dead letter that fails again is a new dead letter; the listing says which one it replays."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord

from clinic.operations import DeadLetter

pytestmark = pytest.mark.unit


def record(headers: dict[str, str]) -> ConsumerRecord:
    return ConsumerRecord(
        topic="clinic.side_effect.reported.v1.dlq", partition=0, offset=7, timestamp=0, timestamp_type=0, key=b"pt_1", value=b"{}",
        checksum=None, serialized_key_size=4, serialized_value_size=2, headers=[(k, v.encode()) for k, v in headers.items()],
    )


def test_a_dead_letter_of_a_replay_names_the_letter_it_was_replayed_from() -> None:
    failed = {"dlq_reason": "handler-error", "dlq_topic": "clinic.side_effect.reported.v1", "ce_id": "evt_1"}

    first = DeadLetter.of(record(failed))
    again = DeadLetter.of(record({**failed, "dlq_replayed_from": "clinic.side_effect.reported.v1.dlq:0:3"}))

    assert first.replayed_from is None
    assert again.replayed_from == "clinic.side_effect.reported.v1.dlq:0:3"
    assert (again.reason, again.event_id) == ("handler-error", "evt_1")
