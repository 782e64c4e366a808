from datetime import timedelta

from services.aftercare.app import create_service
from services.aftercare.repository import outcome_trend
from shared.clock import ManualClock
from shared.contracts.aftercare import OutcomeRecorded
from tests.integration.aftercare.journey import COMPLETED_AT
from tests.support.settle import settle


def outcome(patient: str, course: str, weeks: int, density: float, **changes) -> OutcomeRecorded:
    data = {
        "patient_id": patient,
        "course_id": course,
        "clinician_id": "clin_0042",
        "measured_at": COMPLETED_AT + timedelta(weeks=weeks),
        "density_per_cm2": density,
        "shaft_diameter_um": 55.0 + weeks,
        "satisfaction": 3,
    }
    return OutcomeRecorded.model_validate({**data, **changes})


async def test_a_courses_outcomes_read_back_oldest_first_with_a_correction_replacing_its_measurement(settings, bus, run_id):
    patient, course = f"pt_OUT{run_id}", f"crs_OUT{run_id}"
    async with create_service(settings, ManualClock(COMPLETED_AT)) as service:
        await bus.publish(outcome(patient, course, 8, 150.0, satisfaction=4, clinician_decision="continue"))
        await bus.publish(outcome(patient, course, 0, 120.0))
        await bus.publish(outcome(patient, course, 4, 131.0))
        await bus.publish(outcome(patient, course, 4, 133.5))  # the clinician corrects the week-4 density
        await bus.publish(outcome(patient, f"crs_OTHER{run_id}", 2, 99.0))
        await settle(service, (OutcomeRecorded, 5))
        trend = await outcome_trend(service.db, course)

    assert [(p.measured_at, p.density_per_cm2, p.shaft_diameter_um) for p in trend] == [
        (COMPLETED_AT, 120.0, 55.0),
        (COMPLETED_AT + timedelta(weeks=4), 133.5, 59.0),
        (COMPLETED_AT + timedelta(weeks=8), 150.0, 63.0),
    ]
    assert (trend[-1].satisfaction, trend[-1].clinician_decision) == (4, "continue")
