"""Side-effect reports against the real broker and store: recorded, escalated once, or refused."""

from __future__ import annotations

from datetime import timedelta

from clinic.polling import eventually
from services.aftercare.app import create_service
from services.aftercare.repository import PARKED, SIDE_EFFECTS, parked_reports
from shared.clock import ManualClock
from shared.contracts.aftercare import (
    AdverseEventEscalated,
    AftercareCheckInDue,
    AftercareInstructionsIssued,
    CheckInAnswered,
    SideEffectRecorded,
    SideEffectReported,
)
from shared.contracts.scheduling import SessionCompleted
from shared.envelope import new_event
from tests.integration.aftercare.journey import COMPLETED_AT, Journey
from tests.support.settle import settle

NOW = COMPLETED_AT + timedelta(hours=6)


def header(record, name: str) -> str:
    return dict(record.headers)[name].decode()


async def started(service, bus, journey: Journey) -> None:
    await bus.publish(journey.completed())
    await bus.wait_for(AftercareInstructionsIssued, journey.mine)


async def test_mild_redness_is_recorded_and_not_escalated(settings, bus, run_id):
    journey = Journey(run_id)
    async with create_service(settings, ManualClock(NOW)) as service:
        await started(service, bus, journey)
        await bus.publish(journey.report("redness", 1))
        await settle(service, (SideEffectReported, 1))
        record = await service.db[SIDE_EFFECTS].find_one({"_id": f"sfx_AFT{run_id}_A"})
        escalations = await bus.events(AdverseEventEscalated, journey.mine)

    assert escalations == []
    assert (record["category"], record["symptom"], record["escalation_id"]) == ("expected", "redness", None)
    assert record["session_id"] == journey.session_id


async def test_an_allergic_reaction_is_escalated_once_with_the_sessions_lots_even_when_reported_again(settings, bus, run_id):
    journey = Journey(run_id)
    async with create_service(settings, ManualClock(NOW)) as service:
        await started(service, bus, journey)
        reaction = new_event(journey.report("allergic_reaction", 2), source="/clinic/patient-app")
        await bus.send_event(reaction)
        await bus.send_event(reaction)  # redelivered
        await bus.publish(journey.report("allergic_reaction", 2))  # re-sent under a new event id
        await bus.publish(journey.report("allergic_reaction", 2, letter="B"))  # a second report, same grade
        await settle(service, (SideEffectReported, 4))
        escalations = await bus.events(AdverseEventEscalated, journey.mine)
        second = await service.db[SIDE_EFFECTS].find_one({"_id": f"sfx_AFT{run_id}_B"})

    [escalated] = escalations
    data = escalated.data
    assert (data.escalation_id, data.report_id) == (f"esc_AFT{run_id}_A", f"sfx_AFT{run_id}_A")
    assert (data.course_id, data.session_id, data.grade, data.reasons) == (journey.course_id, journey.session_id, 2, ("allergic_reaction",))
    assert [(lot.ingredient, lot.lot_number) for lot in data.lots] == [
        ("hyaluronic_acid", "HA-2026-0117"),
        ("biotin", "BIO-2026-0311"),
        ("minoxidil", "MNX-2026-0208"),
    ]
    assert data.suspect_ingredients == ("hyaluronic_acid", "biotin", "minoxidil")
    assert escalated.causation_id == reaction.id
    assert (second["category"], second["already_escalated"], second["escalation_id"]) == ("serious", True, None)


async def test_reports_that_cannot_follow_the_session_are_dead_lettered_and_one_for_a_session_not_completed_waits(settings, bus, run_id):
    journey = Journey(run_id)
    unseen = f"ses_AFT{run_id}_99"
    async with create_service(settings, ManualClock(NOW)) as service:
        await started(service, bus, journey)
        await bus.publish(journey.report("infection", 3, letter="U", session_id=unseen))
        await bus.publish(journey.report("allergic_reaction", 2, letter="E", onset_at=COMPLETED_AT - timedelta(minutes=5)))
        dead = await eventually(lambda: _at_least(bus.dead_letters(SideEffectReported), 1), what="a dead letter")
        await settle(service, (SideEffectReported, 2))
        recorded = await service.db[SIDE_EFFECTS].count_documents({})
        waiting = await parked_reports(service.db)
        escalations = await bus.events(AdverseEventEscalated, journey.mine)

    assert [header(r, "dlq_reason") for r in dead] == ["onset-before-session"]
    assert all(journey.patient_id not in header(r, "dlq_error") for r in dead)
    assert [(p.session_id, [r.report_id for r in p.reports]) for p in waiting] == [(unseen, [f"sfx_AFT{run_id}_U"])]
    assert recorded == 0
    assert escalations == []


async def test_a_report_sent_before_its_sessions_completion_waits_and_is_escalated_when_it_completes(settings, bus, run_id):
    journey = Journey(run_id)
    async with create_service(settings, ManualClock(NOW)) as service:
        sent = await bus.publish(journey.report("allergic_reaction", 2))
        await settle(service, (SideEffectReported, 1))
        parked_before = await service.db[PARKED].find_one({"_id": journey.session_id})
        assert await bus.events(SideEffectRecorded, journey.mine) == []
        completion = await bus.publish(journey.completed())
        [answered] = await bus.wait_for(SideEffectRecorded, journey.mine)
        [escalated] = await bus.wait_for(AdverseEventEscalated, journey.mine)
        parked_after = await service.db[PARKED].find_one({"_id": journey.session_id})
        stored = await service.db[SIDE_EFFECTS].find_one({"_id": f"sfx_AFT{run_id}_A"})

    assert parked_before is not None, "parked, not dead-lettered"
    assert (answered.data.category, answered.data.waited_for_session, answered.data.escalation_id) == ("serious", True, f"esc_AFT{run_id}_A")
    assert (escalated.data.course_id, escalated.data.suspect_ingredients) == (journey.course_id, ("hyaluronic_acid", "biotin", "minoxidil"))
    assert (answered.causation_id, escalated.causation_id) == (completion.id, completion.id), "answered when the session completed"
    assert sent.id not in (answered.causation_id, escalated.causation_id)
    assert parked_after is None and stored["category"] == "serious"


async def test_a_check_in_answered_early_with_an_allergic_reaction_escalates_and_replaces_that_check_in(settings, bus, run_id):
    journey = Journey(run_id)
    clock = ManualClock(NOW)
    symptom = {"symptom": "allergic_reaction", "grade": 2, "onset_at": COMPLETED_AT + timedelta(hours=1), "still_present": True}
    async with create_service(settings, clock) as service:
        await started(service, bus, journey)
        await bus.publish(journey.answer(24, symptom))
        [escalated] = await bus.wait_for(AdverseEventEscalated, journey.mine)
        await bus.publish(journey.answer(24, symptom))  # answered twice: nothing more
        await settle(service, (CheckInAnswered, 2))
        clock.advance(timedelta(hours=72))
        service.relay.nudge()
        await bus.wait_for(AftercareCheckInDue, journey.mine)
        await settle(service)
        check_ins = await bus.events(AftercareCheckInDue, journey.mine)
        escalations = await bus.events(AdverseEventEscalated, journey.mine)

    assert escalated.data.report_id == f"sfx_AFT{run_id}_01_24h_1"
    assert len(escalated.data.lots) == 3
    assert len(escalations) == 1
    assert [e.data.hours_after_session for e in check_ins] == [72], "the answered 24 h check-in is not asked again"


async def test_a_session_completed_twice_issues_its_instructions_once(settings, bus, run_id):
    journey = Journey(run_id)
    async with create_service(settings, ManualClock(NOW)) as service:
        await started(service, bus, journey)
        await bus.publish(journey.completed())
        await settle(service, (SessionCompleted, 2))
        instructions = await bus.events(AftercareInstructionsIssued, journey.mine)

    assert len(instructions) == 1


async def _at_least(records, count: int):
    found = await records
    return found if len(found) >= count else None
