"""A clinic with no stock at all: a booked session meets a shortage (its own stack, nothing delivered)."""

from __future__ import annotations

from clinic.journey import Journey
from clinic.polling import eventually
from shared.contracts import REGISTRY

RESCHEDULED = REGISTRY.by_name("SessionRescheduled")


async def test_a_shortage_moves_or_flags_the_session(running, events):
    journey = Journey(events)
    deferred = await journey.record_consultation()
    approved = await journey.record_allergy_test(deferred)
    [first] = await journey.expect("SessionScheduled", lambda d: d.sequence == 1)
    session_id = first.data.session_id

    # the shortage of the session as first booked; once scheduling moves it, the moved session meets its
    # own shortage (nothing is ever delivered here), so a later read can find two for this session
    [shortage] = await journey.expect("IngredientShortage", lambda d: d.session_id == session_id and d.needed_by == first.data.scheduled_for)
    assert shortage.data.missing

    async def moved_or_flagged():
        moved = await events.events(RESCHEDULED, lambda d: d.session_id == session_id and d.reason == "ingredient_shortage")
        course = await running.db("scheduling")["courses"].find_one({"_id": approved.data.course_id})
        flagged = [s for s in course["sessions"] if s["session_id"] == session_id and s.get("at_risk")]
        return moved or flagged

    assert await eventually(moved_or_flagged, what="session 1 moved or flagged at risk")
