"""Completion -> instructions now, check-ins exactly when due, once, across restarts."""

from __future__ import annotations

from datetime import timedelta

from services.aftercare.app import create_service
from shared.clock import ManualClock
from shared.contracts.aftercare import AftercareAdvice, AftercareCheckInDue, AftercareInstructionsIssued
from shared.contracts.scheduling import SessionCompleted
from shared.runtime.store import OUTBOX
from tests.integration.aftercare.journey import COMPLETED_AT, Journey
from tests.support.settle import settle

ISSUED_AT = COMPLETED_AT + timedelta(minutes=2)


async def test_a_completed_session_gets_its_instructions_and_each_check_in_only_when_due(settings, bus, run_id):
    journey = Journey(run_id)
    clock = ManualClock(ISSUED_AT)
    async with create_service(settings, clock) as service:
        await bus.publish(journey.completed())
        [issued] = await bus.wait_for(AftercareInstructionsIssued, journey.mine)
        await settle(service, (SessionCompleted, 1))
        early = await bus.events(AftercareCheckInDue, journey.mine)

        clock.advance(timedelta(hours=24) - timedelta(minutes=2))
        service.relay.nudge()
        [first] = await bus.wait_for(AftercareCheckInDue, journey.mine)
        await settle(service)
        after_first = await bus.events(AftercareCheckInDue, journey.mine)

        clock.advance(timedelta(hours=48))
        service.relay.nudge()
        await bus.wait_for(AftercareCheckInDue, journey.mine, count=2)
        await settle(service)
        both = await bus.events(AftercareCheckInDue, journey.mine)

    data = issued.data
    assert data.session_completed_at == COMPLETED_AT and data.issued_at == ISSUED_AT
    until = {i.advice: i.until for i in data.instructions}
    assert until[AftercareAdvice.NO_TOUCHING] == COMPLETED_AT + timedelta(hours=24)
    assert until[AftercareAdvice.NO_SMOKING] == COMPLETED_AT + timedelta(hours=48)
    assert until[AftercareAdvice.SUN_PROTECTION] == COMPLETED_AT + timedelta(days=14)
    assert len(data.instructions) == len(AftercareAdvice)
    assert data.check_ins_due_at == (COMPLETED_AT + timedelta(hours=24), COMPLETED_AT + timedelta(hours=72))
    assert early == [], "no check-in before it is due"
    assert (first.data.hours_after_session, first.data.due_at) == (24, COMPLETED_AT + timedelta(hours=24))
    assert first.data.check_in_id == f"chk_AFT{run_id}_01_24h"
    assert first.causation_id is not None and first.correlation_id == issued.correlation_id
    assert [e.data.hours_after_session for e in after_first] == [24], "the 72 h check-in waits"
    assert sorted(e.data.hours_after_session for e in both) == [24, 72]


async def test_a_check_in_that_falls_due_while_the_service_is_down_is_published_once_by_the_next_instance(settings, bus, run_id):
    journey = Journey(run_id)
    clock = ManualClock(ISSUED_AT)
    async with create_service(settings, clock) as service:
        await bus.publish(journey.completed())
        await bus.wait_for(AftercareInstructionsIssued, journey.mine)
        await settle(service, (SessionCompleted, 1))
        waiting = await service.db[OUTBOX].count_documents({"type": AftercareCheckInDue.event_type, "status": "pending"})

    clock.advance(timedelta(hours=80))
    async with create_service(settings, clock) as restarted:
        await bus.wait_for(AftercareCheckInDue, journey.mine, count=2)
        await bus.publish(journey.completed())  # the treatment room sends it again, with a new event id
        await settle(restarted, (SessionCompleted, 1))
        check_ins = await bus.events(AftercareCheckInDue, journey.mine)
        instructions = await bus.events(AftercareInstructionsIssued, journey.mine)

    assert waiting == 2
    assert sorted(e.data.hours_after_session for e in check_ins) == [24, 72]
    assert len({e.id for e in check_ins}) == 2
    assert len(instructions) == 1
