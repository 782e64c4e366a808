"""Events of one patient's session for aftercare integration tests, and a wait for a quiet service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.contracts.aftercare import CheckInAnswered, SideEffectReported
from shared.contracts.scheduling import SessionCompleted

COMPLETED_AT = datetime(2026, 3, 16, 9, 40, tzinfo=UTC)
LOTS_USED = [
    {"ingredient": "hyaluronic_acid", "lot_number": "HA-2026-0117", "amount": 20.0, "unit": "mg"},
    {"ingredient": "biotin", "lot_number": "BIO-2026-0311", "amount": 5.0, "unit": "mg"},
    {"ingredient": "minoxidil", "lot_number": "MNX-2026-0208", "amount": 2.0, "unit": "mg"},
]


class Journey:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.patient_id = f"pt_AFT{run_id}"
        self.course_id = f"crs_AFT{run_id}"
        self.session_id = f"ses_AFT{run_id}_01"

    def completed(self) -> SessionCompleted:
        return SessionCompleted(
            patient_id=self.patient_id,
            course_id=self.course_id,
            session_id=self.session_id,
            completed_at=COMPLETED_AT,
            practitioner_id="clin_0107",
            depth_mm=2.0,
            lots_used=LOTS_USED,
        )

    def report(self, symptom: str, grade: int, letter: str = "A", **changes: Any) -> SideEffectReported:
        data = {
            "report_id": f"sfx_AFT{self.run_id}_{letter}",
            "patient_id": self.patient_id,
            "session_id": self.session_id,
            "symptom": symptom,
            "grade": grade,
            "onset_at": COMPLETED_AT + timedelta(hours=3),
            "reported_at": COMPLETED_AT + timedelta(hours=5),
            "still_present": True,
            "reported_by": "patient_app",
        }
        return SideEffectReported.model_validate({**data, **changes})

    def answer(self, hours: int, *symptoms: dict[str, Any]) -> CheckInAnswered:
        return CheckInAnswered(
            check_in_id=f"chk_AFT{self.run_id}_01_{hours}h",
            patient_id=self.patient_id,
            session_id=self.session_id,
            answered_at=COMPLETED_AT + timedelta(hours=6),
            symptoms=symptoms,
        )

    def mine(self, data: Any) -> bool:
        return data.patient_id == self.patient_id
