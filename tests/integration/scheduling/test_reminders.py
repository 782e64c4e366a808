"""Pre-treatment reminders fall due with the clock: exactly once, also when the service was down then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.scheduling.app import create_service
from shared.clock import ManualClock
from shared.contracts.consultation import ConsultationApproved
from shared.contracts.scheduling import PreTreatmentReminderDue
from tests.integration.scheduling.journey import START, Course, booked, tiny_clinic
from tests.support.settle import settle

FIRST_SESSION = datetime(2026, 3, 16, 9, tzinfo=UTC)
WASHOUT_DUE = FIRST_SESSION - timedelta(days=7)
CREAM_DUE = FIRST_SESSION - timedelta(minutes=45 + 15)


def kinds(events) -> list[tuple[str, str]]:
    return sorted((e.data.session_id, e.data.kind) for e in events)


async def test_a_washout_reminder_is_published_once_when_the_clock_passes_its_due_time(settings, bus, run_id):
    course = Course(run_id)
    clock = ManualClock(START)
    async with create_service(settings, clock, tiny_clinic()) as service:
        await bus.publish(course.approved())
        await booked(bus, course)
        await settle(service, (ConsultationApproved, 1))
        clock.set(WASHOUT_DUE - timedelta(minutes=1))
        service.relay.nudge()
        await settle(service)
        early = await bus.events(PreTreatmentReminderDue, course.mine)

        clock.set(WASHOUT_DUE)
        service.relay.nudge()
        [washout] = await bus.wait_for(PreTreatmentReminderDue, course.mine)
        clock.advance(timedelta(hours=1))
        service.relay.nudge()
        await settle(service)
        after = await bus.events(PreTreatmentReminderDue, course.mine)

    assert early == []
    data = washout.data
    assert (data.session_id, data.kind, data.scheduled_for, data.due_at) == (course.session_id(1), "washout", FIRST_SESSION, WASHOUT_DUE)
    assert [(i.action, i.audience) for i in data.instructions] == [("avoid_aspirin_nsaids", "patient"), ("avoid_alcohol", "patient")]
    assert len(after) == 1


async def test_reminders_that_fall_due_while_the_service_is_down_are_published_once_by_the_next_instance(settings, bus, run_id):
    course = Course(run_id)
    clock = ManualClock(START)
    async with create_service(settings, clock, tiny_clinic()) as service:
        await bus.publish(course.approved())
        await booked(bus, course)
        clock.set(WASHOUT_DUE)
        service.relay.nudge()
        await bus.wait_for(PreTreatmentReminderDue, course.mine)
        await settle(service, (ConsultationApproved, 1))

    clock.set(CREAM_DUE + timedelta(minutes=5))
    async with create_service(settings, clock, tiny_clinic()) as restarted:
        [_, cream] = sorted((e for e in await bus.wait_for(PreTreatmentReminderDue, course.mine, count=2)), key=lambda e: e.data.due_at)
        await settle(restarted)
        clock.advance(timedelta(minutes=30))
        restarted.relay.nudge()
        await settle(restarted)
        published = await bus.events(PreTreatmentReminderDue, course.mine)

    assert kinds(published) == [(course.session_id(1), "numbing_cream"), (course.session_id(1), "washout")]
    assert len({e.id for e in published}) == 2
    assert cream.data.due_at == CREAM_DUE
    assert [(i.action, i.at) for i in cream.data.instructions] == [("apply_numbing_cream", FIRST_SESSION - timedelta(minutes=45))]
