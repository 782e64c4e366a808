"""Domain objects for aftercare unit tests, with distinctive values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.aftercare.domain import TreatedSession
from services.aftercare.side_effects import Report
from shared.contracts.aftercare import IngredientLot, Symptom
from shared.contracts.scheduling import SessionCompleted

COMPLETED_AT = datetime(2026, 3, 16, 9, 40, tzinfo=UTC)
LOTS = (
    IngredientLot(ingredient="hyaluronic_acid", lot_number="HA-2026-0117"),
    IngredientLot(ingredient="biotin", lot_number="BIO-2026-0311"),
)


def completed(**changes: Any) -> SessionCompleted:
    data = {
        "patient_id": "pt_UNIT7Q2M9K",
        "course_id": "crs_UNIT5D0B",
        "session_id": "ses_UNIT5D0B_01",
        "completed_at": COMPLETED_AT,
        "practitioner_id": "clin_0107",
        "depth_mm": 2.0,
        "lots_used": [
            {"ingredient": "hyaluronic_acid", "lot_number": "HA-2026-0117", "amount": 20.0, "unit": "mg"},
            {"ingredient": "biotin", "lot_number": "BIO-2026-0311", "amount": 5.0, "unit": "mg"},
        ],
    }
    return SessionCompleted.model_validate({**data, **changes})


def session(**changes: Any) -> TreatedSession:
    base = TreatedSession("ses_UNIT5D0B_01", "pt_UNIT7Q2M9K", "crs_UNIT5D0B", COMPLETED_AT, LOTS)
    return replace(base, **changes)


def report(symptom: Symptom = Symptom.REDNESS, grade: int = 1, *, after: timedelta = timedelta(hours=2), lasted: timedelta = timedelta(hours=20), **changes: Any) -> Report:
    """A report whose onset is ``after`` the session and which is observed ``lasted`` after its onset."""
    onset = COMPLETED_AT + after
    base = Report(
        report_id="sfx_UNIT5D0B_01A",
        patient_id="pt_UNIT7Q2M9K",
        session_id="ses_UNIT5D0B_01",
        symptom=symptom,
        grade=grade,
        onset_at=onset,
        observed_at=onset + lasted,
        still_present=True,
        reported_by="patient_app",
    )
    return replace(base, **changes)
