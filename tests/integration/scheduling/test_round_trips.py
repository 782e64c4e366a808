"""Store round trips of booking a course, counted with a command listener (a behaviour, not a timing)."""

from __future__ import annotations

from collections import Counter

from services.scheduling.app import create_service
from services.scheduling.repository import COURSES, DAYS, SLOTS
from shared.clock import ManualClock
from shared.contracts.consultation import ConsultationApproved
from shared.runtime.store import INBOX, OUTBOX
from tests.integration.scheduling.journey import START, Course, booked, tiny_clinic
from tests.support.settle import settle
from tests.support.store_commands import watching


async def test_booking_a_six_session_course_on_a_free_calendar_takes_nine_round_trips(settings, bus, run_id):
    course = Course(run_id, tag="RT", sessions=6, interval_days=14)
    with watching(settings.database("scheduling"), {COURSES, SLOTS, DAYS, INBOX, OUTBOX}) as commands:
        async with create_service(settings, ManualClock(START), tiny_clinic()) as service:
            started = len(commands)
            await bus.publish(course.approved())
            await booked(bus, course)
            await settle(service, (ConsultationApproved, 1))
            handling = Counter((c.name, c.collection) for c in commands[started:] if c.name != "aggregate")  # settle's own count

    assert handling == {
        ("find", INBOX): 1,  # the inbox: handled before?
        ("find", COURSES): 1,  # booked before under another event id?
        ("find", DAYS): 1,  # the calendar days of the six sessions, in one query
        ("insert", SLOTS): 1,  # every cell claimed in one insert
        ("update", DAYS): 1,  # the hint's hours, one bulk write
        ("insert", INBOX): 1,  # the write-ahead record
        ("update", COURSES): 1,  # the course
        ("insert", OUTBOX): 1,  # the reminders not due yet, in one insert
        ("update", INBOX): 1,  # applied (one per consumed batch)
    }
    assert sum(handling.values()) == 9


async def test_a_second_booking_on_the_same_days_reads_no_calendar_day_this_process_read_just_before(settings, bus, run_id):
    first, second = Course(run_id, tag="RA", sessions=6, interval_days=14), Course(run_id, tag="RB", sessions=6, interval_days=14)
    with watching(settings.database("scheduling"), {DAYS}) as commands:
        async with create_service(settings, ManualClock(START), tiny_clinic()) as service:
            await bus.publish(first.approved())
            await booked(bus, first)
            await settle(service, (ConsultationApproved, 1))
            started = len(commands)
            await bus.publish(second.approved())
            await booked(bus, second)
            await settle(service, (ConsultationApproved, 2))
            second_reads = Counter(c.name for c in commands[started:] if c.name != "aggregate")

    assert second_reads == {"update": 1}  # its holdings noted in the days; none read: this process knows them
