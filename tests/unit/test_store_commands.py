"""What the store-access tests count as a lookup by `_id` (tests/support/store_commands.py)."""

from __future__ import annotations

import pytest
from bson import ObjectId

from tests.support.store_commands import Command

BY_ID = [
    {"_id": "crs_ABC"},
    {"_id": ObjectId()},
    {"_id": {"$in": ["2026-03-16T09", "2026-03-16T10"]}},
    {"_id": "lot|7", "v": 3},  # a version compared beside the _id
]
SCANS = [
    {},
    {"status": "pending"},
    {"_id": {"$gte": "2026-03-16"}},
    {"_id": {"$in": []}},
    {"_id": {"$in": ["a", {"nested": 1}]}},
    {"_id": {"$in": ["a"], "$nin": ["b"]}},
    {"_id": ["a", "b"]},
]


@pytest.mark.parametrize("where", BY_ID, ids=str)
def test_an_id_lookup_does_not_scan(where):
    assert not Command("find", "docs", (where,)).scans


@pytest.mark.parametrize("where", SCANS, ids=str)
def test_any_other_filter_scans(where):
    assert Command("update", "docs", ({"_id": "ok"}, where)).scans


def test_a_query_command_always_scans():
    assert Command("aggregate", "docs", ()).scans
