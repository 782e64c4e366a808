"""Aftercare's handlers in-process (tests/support/unit_of_work.py): the same rules as the integration tier,
checked in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

from services.aftercare.app import create_service
from shared.clock import ManualClock
from shared.contracts import examples
from shared.contracts.aftercare import AftercareCheckInDue, AftercareInstructionsIssued, SideEffectReported
from shared.contracts.scheduling import SessionCompleted
from shared.settings import Settings
from tests.support.unit_of_work import UnitOfWork

NOW = datetime(2026, 3, 16, 10, 0, tzinfo=UTC)


async def work() -> UnitOfWork:
    return await UnitOfWork.of(create_service(Settings(), ManualClock(NOW)))


async def test_a_completed_session_gets_instructions_and_its_check_ins_once():
    uow = await work()
    completed = SessionCompleted.model_validate(examples(SessionCompleted)[0])

    first = await uow.handle(completed)
    again = await uow.handle(completed)

    assert [i.session_id for i in first.emitted(AftercareInstructionsIssued)] == [completed.session_id]
    assert len(first.emitted(AftercareCheckInDue)) >= 1 and all(due is not None and due > NOW for due in first.due(AftercareCheckInDue))
    assert first.claims == [], "aftercare claims nothing shared: every write is an Effect"
    assert again.outcome == "already-issued" and again.events == []


async def test_a_report_for_a_session_aftercare_never_saw_is_rejected_with_nothing_written():
    uow = await work()
    report = SideEffectReported.model_validate(examples(SideEffectReported)[0])

    handled = await uow.handle(report)

    assert handled.rejected is not None and handled.rejected.reason == "unknown-session"
    assert uow.db.writes == []
