"""One chair, one practitioner, two patients, two scheduling instances: nobody is ever double-booked."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta

from aiokafka.partitioner import murmur2

from clinic.polling import eventually
from services.scheduling.app import create_service
from services.scheduling.calendar import Verdict, hour_of, hours_of
from services.scheduling.repository import BUILT, BUILT_DAYS, DAYS, SLOTS, Claims, Day, Holding, SlotTaken
from shared.clock import ManualClock
from shared.contracts.consultation import ConsultationApproved
from shared.contracts.scheduling import SessionScheduled
from shared.runtime.store import connect, database
from tests.integration.scheduling.journey import FIRST_DAY, START, Course, booked, tiny_clinic
from tests.support.settle import settle

ONE_SLOT_A_DAY = tiny_clinic(closes=time(9, 45))


def on_partition(run_id: str, partition: int, partitions: int) -> Course:
    """A patient whose key lands on ``partition``, so the test knows which instance it reaches."""
    for number in range(1000):
        course = Course(run_id, tag=f"P{number}")
        if (murmur2(course.patient_id.encode()) & 0x7FFFFFFF) % partitions == partition:
            return course
    raise AssertionError("no patient id found for the partition")


def overlapping(sessions: list[SessionScheduled], resource: str) -> list[tuple[str, str]]:
    ordered = sorted(sessions, key=lambda s: (getattr(s, resource), s.scheduled_for))
    return [
        (a.session_id, b.session_id)
        for a, b in itertools.pairwise(ordered)
        if getattr(a, resource) == getattr(b, resource) and b.scheduled_for < a.scheduled_for + timedelta(minutes=a.duration_minutes)
    ]


async def test_two_patients_booked_at_once_by_two_instances_never_share_the_chair_or_the_practitioner(settings, bus, run_id):
    first, second = on_partition(run_id, 0, settings.topic_partitions), on_partition(run_id, 2, settings.topic_partitions)
    clock = ManualClock(START)
    async with create_service(settings, clock, ONE_SLOT_A_DAY) as one, create_service(settings, clock, ONE_SLOT_A_DAY) as two:
        await eventually(lambda: _both_assigned(one, two), what="both instances own partitions")
        await bus.publish(first.approved())
        await bus.publish(second.approved())
        courses = [await booked(bus, first), await booked(bus, second)]
        await eventually(lambda: _handled(one, two, 2), what="both approvals handled")
        claims = await one.db[SLOTS].count_documents({})
        handled = sorted(s.stats.handled.get(ConsultationApproved.event_type, 0) for s in (one, two))

    everything = [s for sessions in courses for s in sessions]
    assert overlapping(everything, "chair_id") == []
    assert overlapping(everything, "practitioner_id") == []
    for sessions in courses:
        gaps = [(b.scheduled_for.date() - a.scheduled_for.date()).days for a, b in itertools.pairwise(sessions)]
        assert all(7 <= gap <= 28 for gap in gaps), gaps
    assert sorted(s[0].scheduled_for.date() for s in courses) == [FIRST_DAY, FIRST_DAY + timedelta(days=1)]
    assert claims == 2 * 4 * 2 * 3
    assert handled == [1, 1], "each instance booked one patient"


async def test_a_slot_taken_between_reading_the_calendar_and_claiming_it_is_left_alone_and_the_series_placed_again(settings, bus, run_id, monkeypatch):
    course = Course(run_id)
    rival = {"_id": f"chair_01|{FIRST_DAY}T09:00Z", "holder": "ses_RIVAL0001_01", "course_id": "crs_RIVAL0001", "start": datetime.combine(FIRST_DAY, time(9), UTC)}
    async with create_service(settings, ManualClock(START), tiny_clinic()) as service:
        reads = []
        real_days = service.deps.claims.days

        async def stale_once(days):
            reads.append(days)
            return {day: Day() for day in days} if len(reads) == 1 else await real_days(days)

        monkeypatch.setattr(service.deps.claims, "days", stale_once)
        await service.db[SLOTS].insert_one(dict(rival))  # the claim only: the calendar's day documents lag behind it
        await bus.publish(course.approved())
        sessions = await booked(bus, course)
        await settle(service, (ConsultationApproved, 1))
        held = await service.db[SLOTS].find_one({"_id": rival["_id"]})
        ours = await service.db[SLOTS].find({"course_id": course.course_id}).to_list()

    assert sessions[0].scheduled_for == datetime.combine(FIRST_DAY, time(9, 15), UTC)
    assert held["holder"] == "ses_RIVAL0001_01"
    assert len(reads) == 2
    assert len(ours) == 4 * 2 * 3, "the first attempt's claims were given back"
    assert min(c["start"] for c in ours) == sessions[0].scheduled_for


async def _both_assigned(*services) -> bool:
    return all([(await s.readiness())["consumer_assigned"] for s in services])


async def _handled(*services_and_count) -> bool:
    *services, count = services_and_count
    return sum(s.stats.handled.get(ConsultationApproved.event_type, 0) for s in services) >= count


async def test_a_slot_the_calendar_shows_taken_is_placed_around_without_a_lost_claim(settings, bus, run_id, monkeypatch):
    course = Course(run_id)
    rival = {"_id": f"chair_01|{FIRST_DAY}T09:00Z", "holder": "ses_RIVAL0002_01", "course_id": "crs_RIVAL0002", "start": datetime.combine(FIRST_DAY, time(9), UTC)}
    async with create_service(settings, ManualClock(START), tiny_clinic()) as service:
        await service.db[SLOTS].insert_one(dict(rival))
        await service.db[DAYS].update_one({"_id": hour_of(rival["_id"])}, {"$set": {f"cells.{rival['_id']}": Holding("crs_RIVAL0002", "ses_RIVAL0002_01").stored()}}, upsert=True)
        lost = lost_claims(service, monkeypatch)
        await bus.publish(course.approved())
        sessions = await booked(bus, course)
        await settle(service, (ConsultationApproved, 1))
        day = await hint_of(service.db, FIRST_DAY)

    assert sessions[0].scheduled_for == datetime.combine(FIRST_DAY, time(9, 15), UTC)
    assert lost == []
    assert {cell: Holding.of(h).holder for cell, h in day.items() if cell.startswith("chair_01")} == {
        rival["_id"]: "ses_RIVAL0002_01",
        **{f"chair_01|{FIRST_DAY}T{t}Z": course.session_id(1) for t in ("09:15", "09:30", "09:45")},
    }


async def test_claims_left_by_an_attempt_that_died_before_recording_are_given_back(settings, bus, run_id):
    course = Course(run_id)
    first = course.session_id(1)
    left = [f"{resource}|{FIRST_DAY}T{t}Z" for resource in ("chair_01", "clin_0107") for t in ("10:00", "10:15")]
    async with create_service(settings, ManualClock(START), tiny_clinic()) as service:
        for cell in left:  # as an earlier attempt at this approval claimed them, then the process died
            at = datetime.fromisoformat(cell.split("|")[1].replace("Z", "+00:00"))
            await service.db[SLOTS].insert_one({"_id": cell, "holder": first, "course_id": course.course_id, "patient_id": course.patient_id, "start": at})
            await service.db[DAYS].update_one({"_id": hour_of(cell)}, {"$set": {f"cells.{cell}": Holding(course.course_id, first).stored()}}, upsert=True)
        await bus.publish(course.approved())
        sessions = await booked(bus, course)
        await settle(service, (ConsultationApproved, 1))
        held = await service.db[SLOTS].find({"holder": first}).to_list()
        day = await hint_of(service.db, FIRST_DAY)

    assert sessions[0].scheduled_for == datetime.combine(FIRST_DAY, time(9), UTC)
    assert sorted(c["start"].time() for c in held) == sorted([time(9), time(9, 15), time(9, 30)] * 2)
    assert not set(left) & set(day)


async def hint_of(db, day) -> dict[str, str]:
    """The calendar hint's cells of a day, from its hour documents."""
    return {cell: holding async for doc in db[DAYS].find({"_id": {"$in": hours_of(str(day))}}) for cell, holding in doc.get("cells", {}).items()}


async def test_a_store_with_one_calendar_document_per_day_is_rebuilt_into_hours_at_start(settings, bus, run_id, monkeypatch):
    """A store written before the hint kept hours: the claims are the truth, the day documents go."""
    course = Course(run_id)
    rival = [f"{resource}|{FIRST_DAY}T{t}Z" for resource in ("chair_01", "clin_0107") for t in ("09:00", "09:15", "09:30")]
    client = connect(settings.mongodb_url.get_secret_value(), "test-calendar-upgrade")
    try:
        db = database(client, settings.database("scheduling"))
        for cell in rival:  # another course's session at 09:00, claimed and in the old day document
            at = datetime.fromisoformat(cell.split("|")[1].replace("Z", "+00:00"))
            await db[SLOTS].insert_one({"_id": cell, "holder": "ses_RIVAL0003_01", "course_id": "crs_RIVAL0003", "patient_id": "pt_RIVAL0003", "start": at})
        await db[DAYS].insert_many([{"_id": str(FIRST_DAY), "cells": {cell: Holding("crs_RIVAL0003", "ses_RIVAL0003_01").stored() for cell in rival}}, {"_id": BUILT_DAYS}])
    finally:
        await client.close()

    async with create_service(settings, ManualClock(START), tiny_clinic()) as service:
        lost = lost_claims(service, monkeypatch)
        await bus.publish(course.approved())
        sessions = await booked(bus, course)
        await settle(service, (ConsultationApproved, 1))
        left = await service.db[DAYS].find({"_id": {"$in": [str(FIRST_DAY), BUILT_DAYS, BUILT]}}).to_list()
        day = await hint_of(service.db, FIRST_DAY)

    assert sessions[0].scheduled_for == datetime.combine(FIRST_DAY, time(9, 45), UTC), "after the rival's session"
    assert lost == [], "the rebuilt hours showed the rival's cells"
    assert [doc["_id"] for doc in left] == [BUILT], "the day documents and their marker are gone"
    assert {cell for cell, h in day.items() if Holding.of(h).course_id == "crs_RIVAL0003"} == set(rival)


def lost_claims(service, monkeypatch) -> list[frozenset[str]]:
    """The cells of every claim the service loses to another booking from now on (``SlotTaken``)."""
    lost: list[frozenset[str]] = []
    real_claim = service.deps.claims.claim

    async def claim(*args):
        try:
            return await real_claim(*args)
        except SlotTaken as taken:
            lost.append(taken.cells)
            raise

    monkeypatch.setattr(service.deps.claims, "claim", claim)
    return lost


async def test_what_was_found_about_a_day_outlives_cells_taken_there_but_not_a_cell_given_back(settings):
    """``Claims._note`` keeps the process's copy of a day in line with what it wrote: a new copy each time,
    which keeps the searches' verdicts when cells were only taken (there is less room, never more) and
    drops them when one was given back."""
    client = connect(settings.mongodb_url.get_secret_value(), "test-calendar-verdicts")
    try:
        claims = Claims(database(client, settings.database("scheduling")), timedelta(minutes=15), attempts=3)
        day = str(FIRST_DAY)
        read = (await claims.days([day]))[day]
        verdict = Verdict(datetime.combine(FIRST_DAY, time(0), UTC), datetime.combine(FIRST_DAY, time(10), UTC))
        read.verdicts[(FIRST_DAY, 45, True)] = verdict
        taken = f"chair_01|{day}T09:00Z"

        await claims._note({day: read}, {taken: Holding("crs_OTHER0001", "ses_OTHER0001_01")})
        after_taking = (await claims.days([day]))[day]
        await claims._note({day: after_taking}, {taken: None})
        after_giving_back = (await claims.days([day]))[day]
        stored = await hint_of(claims.db, FIRST_DAY)
    finally:
        await client.close()

    assert after_taking is not read and taken in after_taking and taken not in read, "a new copy, the old one as it was"
    assert after_taking.verdicts == {(FIRST_DAY, 45, True): verdict}
    assert taken not in after_giving_back and after_giving_back.verdicts == {}
    assert stored == {}, "the hint was written and given back as well"
