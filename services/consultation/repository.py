"""Consultation and patient files: documents in, models out; models in, writes (``Effects``) out."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.consultation.state import FINAL, ConsultationFile, PatientFile
from shared.runtime import Effects

CONSULTATIONS = "consultations"
PATIENTS = "patients"


class Repository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def ensure_indexes(self) -> None:
        await self.db[CONSULTATIONS].create_index([("patient_id", ASCENDING), ("status", ASCENDING)], name="patient_status")

    async def consultation(self, consultation_id: str, patient_id: str) -> ConsultationFile:
        """The consultation's file, or a new empty one (results may arrive before the assessment)."""
        document = await self.db[CONSULTATIONS].find_one({"_id": consultation_id})
        if document is None:
            return ConsultationFile(consultation_id=consultation_id, patient_id=patient_id)
        return ConsultationFile.model_validate(_without_id(document))

    async def open_consultations(self, patient_id: str) -> list[ConsultationFile]:
        cursor = self.db[CONSULTATIONS].find({"patient_id": patient_id, "status": {"$nin": list(FINAL)}}).sort("_id", ASCENDING)
        return [ConsultationFile.model_validate(_without_id(d)) async for d in cursor]

    async def patient(self, patient_id: str) -> PatientFile:
        document = await self.db[PATIENTS].find_one({"_id": patient_id})
        return PatientFile(patient_id=patient_id) if document is None else PatientFile.model_validate(_without_id(document))

    def save_consultation(self, file: ConsultationFile) -> Effects:
        return Effects().put(CONSULTATIONS, file.consultation_id, file.model_dump(mode="json"))

    def save_patient(self, file: PatientFile) -> Effects:
        return Effects().put(PATIENTS, file.patient_id, file.model_dump(mode="json"))


def _without_id(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "_id"}
