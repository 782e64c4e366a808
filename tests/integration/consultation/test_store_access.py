"""What consultation does in the store per event: reads and writes by ``_id`` only, so the cost of an
event does not grow with the clinic's history, and the patient's open list follows every decision."""

from __future__ import annotations

from clinic.polling import eventually
from services.consultation.app import create_service
from services.consultation.repository import CONSULTATIONS, PATIENTS
from shared.clock import ManualClock
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import ConsultationApproved, ConsultationDeferred, ConsultationRecorded, LabResultsRecorded
from tests.integration.consultation.test_screening import escalation, handled, ids
from tests.support.store_commands import reads, watching
from tests.unit.consultation.factories import GOOD_LABS, NOW, lab, recorded

WITHOUT_FERRITIN = [lab(*row) for row in GOOD_LABS if row[0] != "ferritin"]


async def test_every_handler_reads_and_writes_its_documents_by_id_only(settings, bus, run_id):
    approvable, waiting = ids(run_id, "IDXOK"), ids(run_id, "IDXWAIT")
    with watching(settings.database("consultation"), {CONSULTATIONS, PATIENTS}) as commands:
        async with create_service(settings, ManualClock(NOW)) as service:

            async def step(data, model, count: int = 1) -> list[str]:
                mark = len(commands)
                await bus.publish(data)
                await eventually(lambda: handled(service, model, count), what=f"{model.__name__} handled")
                return reads(commands, mark)

            recorded_reads = await step(recorded(**approvable), ConsultationRecorded)
            deferred_reads = await step(recorded(**waiting, lab_results=WITHOUT_FERRITIN), ConsultationRecorded, 2)
            waiting_list = await _open_list(service, waiting)
            ferritin = LabResultsRecorded(**waiting, recorded_at=NOW, results=[lab("ferritin", 64.0, "ng/mL")])
            lab_reads = await step(ferritin, LabResultsRecorded)
            escalation_reads = await step(escalation(approvable, "IDXOK", "01", 3, ["allergic_reaction"], ["biotin"]), AdverseEventEscalated)
            approved_list = await _open_list(service, waiting)

    assert [c for c in commands if c.scans] == []
    assert recorded_reads == [CONSULTATIONS, PATIENTS]
    assert deferred_reads == [CONSULTATIONS, PATIENTS]
    assert lab_reads == [CONSULTATIONS, PATIENTS], "the consultation the results name is not read twice"
    assert escalation_reads == [PATIENTS], "no open consultation, nothing more to read"
    assert (waiting_list, approved_list) == ([waiting["consultation_id"]], [])


async def test_new_lab_results_rescreen_every_open_consultation_of_the_patient(settings, bus, run_id):
    first = ids(run_id, "TWOA")
    second = {**first, "consultation_id": f"cons_TWOB{run_id}"}
    async with create_service(settings, ManualClock(NOW)) as service:
        await bus.publish(recorded(**first, lab_results=WITHOUT_FERRITIN))
        await bus.publish(recorded(**second, lab_results=WITHOUT_FERRITIN))
        await bus.wait_for(ConsultationDeferred, lambda d: d.patient_id == first["patient_id"], count=2)
        await bus.publish(LabResultsRecorded(**first, recorded_at=NOW, results=[lab("ferritin", 64.0, "ng/mL")]))
        approved = await bus.wait_for(ConsultationApproved, lambda d: d.patient_id == first["patient_id"], count=2)
        await eventually(lambda: handled(service, LabResultsRecorded), what="the lab results handled")
        open_list = await _open_list(service, first)

    assert sorted(e.data.consultation_id for e in approved) == sorted([first["consultation_id"], second["consultation_id"]])
    assert open_list == []


async def _open_list(service, who: dict[str, str]) -> list[str]:
    document = await service.db[PATIENTS].find_one({"_id": who["patient_id"]})
    return document["open_consultations"]
