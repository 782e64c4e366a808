"""The chaos run's driver (bench/chaos.py) without a broker: what it sends for journeys in flight together."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.chaos import MAX_REPORTS, ChaosDriver
from bench.traffic import Journey

pytestmark = pytest.mark.unit


class Client:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_event(self, event: Any) -> None:
        self.sent.append(event.type)


class Tracker:
    def forget(self, journey: Journey) -> None:
        pass


def booked(number: int) -> Journey:
    patient = f"pt_TEST{number:07d}"
    journey = Journey(patient, f"cons_TEST{number:07d}", complete=True)
    session = {"sequence": 1, "course_id": f"crs_TEST{number:07d}", "practitioner_id": "clin_TEST1"}
    journey.scheduled[f"ses_TEST{number:07d}_01"] = session
    journey.reserved[f"ses_TEST{number:07d}_01"] = {"allocations": [{"ingredient": "biotin", "lot_number": "BIO-1", "amount": 5.0, "unit": "mg"}]}
    journey.booked.set_result(True)
    return journey


async def test_journeys_whose_completions_come_together_report_no_more_side_effects_than_the_cap() -> None:
    """Every journey here is one that reports (its number a multiple of twice --complete-every), and all of
    them wait for their completions at once: the cap must hold however many were waiting (twenty
    escalations would quarantine the lots every journey draws on, ending the run's journeys short)."""
    client = Client()
    driver = ChaosDriver(client, Tracker(), "TEST", timeout=10, complete_every=10)  # type: ignore[arg-type]
    journeys = [booked(20 * n) for n in range(1, MAX_REPORTS + 6)]
    running = [asyncio.create_task(driver._one(j)) for j in journeys]
    for _ in range(100):  # until each has sent its completion and waits for it to be handled
        if client.sent.count("clinic.session.completed.v1") == len(journeys) or any(j.failure for j in journeys):
            break
        await asyncio.sleep(0)
    assert [j.failure for j in journeys if j.failure] == []
    for journey in journeys:
        journey.done.set_result(True)
    await asyncio.gather(*running)

    assert client.sent.count("clinic.side_effect.reported.v1") == driver.reports == MAX_REPORTS
