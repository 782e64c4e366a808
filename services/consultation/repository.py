"""Consultation and patient files: documents in, models out; models in, writes (``Effects``) out.

Every read is by ``_id``: the local store scans a collection for any other filter. The patient's file
lists the ids of the patient's open consultations, so re-screening them needs no query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import date
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.consultation.state import ConsultationFile, PatientFile
from shared.runtime import Effects
from shared.runtime.store import by_ids

CONSULTATIONS = "consultations"
PATIENTS = "patients"
WASHOUTS = "washouts"
"""One document per day (``_id`` the ISO day): the consultations whose deferral lapses that day,
``{consultation_id: patient_id}``. Small (a day's deferrals at most) and read by ``_id`` only; the washout
check deletes a day once it has answered it."""


class Repository:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db

    async def consultation(self, consultation_id: str, patient_id: str) -> ConsultationFile:
        """The consultation's file, or a new empty one (results may arrive before the assessment)."""
        document = await self.db[CONSULTATIONS].find_one({"_id": consultation_id})
        if document is None:
            return ConsultationFile(consultation_id=consultation_id, patient_id=patient_id)
        return ConsultationFile.model_validate(_without_id(document))

    async def patient(self, patient_id: str) -> PatientFile:
        document = await self.db[PATIENTS].find_one({"_id": patient_id})
        return PatientFile(patient_id=patient_id) if document is None else PatientFile.model_validate(_without_id(document))

    async def consultation_and_patient(self, consultation_id: str, patient_id: str) -> tuple[ConsultationFile, PatientFile]:
        """Both reads at once: a handler that names a consultation screens it against the patient's file."""
        return await asyncio.gather(self.consultation(consultation_id, patient_id), self.patient(patient_id))

    async def open_consultations(self, patient: PatientFile, held: Iterable[ConsultationFile] = ()) -> list[ConsultationFile]:
        """The patient's open consultations in id order, read by ``_id`` from the patient's list; files the
        handler already ``held`` are not read again."""
        files = {f.consultation_id: f for f in held if f.patient_id == patient.patient_id}
        missing = [i for i in patient.open_consultations if i not in files]
        for consultation_id, file in zip(missing, await asyncio.gather(*(self.consultation(i, patient.patient_id) for i in missing)), strict=True):
            files[consultation_id] = file
        return [files[i] for i in sorted(files) if files[i].is_open]

    async def washouts(self, days: Iterable[date]) -> list[tuple[date, dict[str, str]]]:
        """The listed consultations of each day that has any, by ``_id`` (the days in one read)."""
        chosen = list(days)
        stored = await by_ids(self.db[WASHOUTS], (day.isoformat() for day in chosen))
        return [(day, {k: str(v) for k, v in document.items() if k != "_id"}) for day in chosen if (document := stored.get(day.isoformat())) is not None]

    async def consultations(self, listed: dict[str, str]) -> list[ConsultationFile]:
        return list(await asyncio.gather(*(self.consultation(c, p) for c, p in sorted(listed.items()))))

    def list_washout(self, file: ConsultationFile, day: date) -> Effects:
        return Effects().merge(WASHOUTS, day.isoformat(), **{file.consultation_id: file.patient_id})

    def washout_day_answered(self, day: date) -> Effects:
        return Effects().delete(WASHOUTS, day.isoformat())

    def save_consultation(self, file: ConsultationFile) -> Effects:
        return Effects().put(CONSULTATIONS, file.consultation_id, file.model_dump(mode="json"))

    def save_patient(self, file: PatientFile) -> Effects:
        return Effects().put(PATIENTS, file.patient_id, file.model_dump(mode="json"))

    def save_open_consultations(self, file: PatientFile) -> Effects:
        """Only the open list: the patient's facts are left as they are."""
        return Effects().merge(PATIENTS, file.patient_id, patient_id=file.patient_id, open_consultations=list(file.open_consultations))


def _without_id(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "_id"}
