"""One handler per consumed event: read the files, call the domain, return Effects.

Consultation writes nothing itself: a consultation's and a patient's files belong to that one patient, so
every write is an Effect. The decisions it publishes are built by the domain (``rescreen``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.consultation.config import ConsultationConfig
from services.consultation.domain import Rescreen, rescreen, review_applied, today, washout_ended
from services.consultation.repository import Repository
from services.consultation.rules import assessment_problem
from services.consultation.state import ConsultationFile, PatientFile, Review
from shared.clock import Clock
from shared.contracts.aftercare import AdverseEventEscalated
from shared.contracts.consultation import (
    AllergyTestRecorded,
    ConsultationRecorded,
    ConsultationReviewed,
    ConsultationWashoutEnded,
    LabResultsRecorded,
    MedicationStopped,
)
from shared.envelope import CloudEvent
from shared.runtime import Effects, Handlers, Rejected, ignored
from shared.runtime.store import derived_id

WASHOUT_CHECK_SECONDS = 600.0
"""How often the washout check looks at the day's list (a day's list is answered once)."""
WASHOUT_LOOKBACK_DAYS = 31
"""Days back the washout check still answers, for a service that was stopped over midnight."""


@dataclass(frozen=True)
class Deps:
    repo: Repository
    config: ConsultationConfig
    clock: Clock


handlers = Handlers[Deps]("consultation", concurrency=8)  # a patient's documents only: nothing shared to race for


@handlers.on(ConsultationRecorded)
async def on_consultation_recorded(event: CloudEvent[ConsultationRecorded], deps: Deps) -> Effects:
    facts = event.data
    if problem := assessment_problem(facts):
        raise Rejected(problem, facts.consultation_id)
    file, patient = await _consultation(deps, facts.consultation_id, facts.patient_id)
    if not file.is_open:
        return ignored("already-decided")
    return _decisions(deps, patient, [rescreen(file.model_copy(update={"facts": facts}), patient, deps.config, deps.clock.now())])


@handlers.on(ConsultationReviewed)
async def on_consultation_reviewed(event: CloudEvent[ConsultationReviewed], deps: Deps) -> Effects:
    review = event.data
    if unknown := [r for r in review.rule_ids if r not in deps.config.rule_set.rules]:
        raise Rejected("unknown-rule", f"{review.consultation_id} {','.join(unknown)}")
    file, patient = await _consultation(deps, review.consultation_id, review.patient_id)
    reviewed = file.model_copy(update={"reviews": (*file.reviews, Review.of(review))})
    now = deps.clock.now()
    if not file.is_open:  # recorded for the audit trail; a final decision stays final
        applied = review_applied(review, Rescreen(reviewed, None), deps.config.rule_set, now)
        return deps.repo.save_consultation(reviewed).emit(applied) + ignored("already-decided")
    screen = rescreen(reviewed, patient, deps.config, now)
    # Every review is answered, also one that changes no decision; the new decision (if any) comes first.
    return _decisions(deps, patient, [screen]).emit(review_applied(review, screen, deps.config.rule_set, now))


@handlers.on(LabResultsRecorded)
async def on_lab_results_recorded(event: CloudEvent[LabResultsRecorded], deps: Deps) -> Effects:
    labs = event.data
    file, patient = await _consultation(deps, labs.consultation_id, labs.patient_id)  # refuses results filed under another patient
    return await _patient_changed(deps, patient.with_labs(labs.results), file)


@handlers.on(AllergyTestRecorded)
async def on_allergy_test_recorded(event: CloudEvent[AllergyTestRecorded], deps: Deps) -> Effects:
    test = event.data
    if unknown := sorted({r.ingredient for r in test.results if deps.config.formulary.ingredient(r.ingredient) is None}):
        raise Rejected("unknown-ingredient", f"{test.consultation_id} {','.join(unknown)}")
    file, patient = await _consultation(deps, test.consultation_id, test.patient_id)
    return await _patient_changed(deps, patient.with_allergy_tests(test), file)


@handlers.on(AdverseEventEscalated)
async def on_adverse_event_escalated(event: CloudEvent[AdverseEventEscalated], deps: Deps) -> Effects:
    escalation = event.data
    if not escalation.suspect_ingredients:
        return ignored("no-suspect-ingredient")
    # Unknown codes are kept too: a sensitivity is safety information, never bad input to drop.
    patient = (await deps.repo.patient(escalation.patient_id)).with_sensitivities(escalation)
    return await _patient_changed(deps, patient)


@handlers.on(MedicationStopped)
async def on_medication_stopped(event: CloudEvent[MedicationStopped], deps: Deps) -> Effects:
    """Kept on the patient's file: every open consultation recorded before the stop is screened with it."""
    patient = await deps.repo.patient(event.data.patient_id)
    return await _patient_changed(deps, patient.with_stop(event.data))


@handlers.on(ConsultationWashoutEnded)
async def on_washout_ended(event: CloudEvent[ConsultationWashoutEnded], deps: Deps) -> Effects:
    """The washout check's answer, handled in the patient's order like any other fact."""
    ended = event.data
    file, patient = await _consultation(deps, ended.consultation_id, ended.patient_id)
    if not file.is_open:
        return ignored("already-decided")
    return _decisions(deps, patient, [rescreen(file, patient, deps.config, deps.clock.now())], changed_only=True)


@handlers.every(WASHOUT_CHECK_SECONDS)
async def check_washouts(deps: Deps, now: datetime) -> list[tuple[str, Effects]]:
    """Publishes ConsultationWashoutEnded for each consultation listed under a day that has come (read by
    ``_id``, one document a day), then deletes the day's list. Keys are the day and the consultation, so a
    check that runs twice, or on two instances, publishes once."""
    day = today(deps.config, now)
    pairs: list[tuple[str, Effects]] = []
    for listed_on, listed in await deps.repo.washouts(day - timedelta(days=n) for n in range(WASHOUT_LOOKBACK_DAYS, -1, -1)):
        for file in await deps.repo.consultations(listed):
            ended = washout_ended(file, listed_on)
            if ended is not None:
                key = f"washout|{listed_on.isoformat()}|{file.consultation_id}"
                pairs.append((key, Effects(outcome="washout-ended").emit(ended, id=derived_id("washout", listed_on.isoformat(), file.consultation_id))))
        pairs.append((f"washout-day|{listed_on.isoformat()}", deps.repo.washout_day_answered(listed_on)))
    return pairs


async def _consultation(deps: Deps, consultation_id: str, patient_id: str) -> tuple[ConsultationFile, PatientFile]:
    """The consultation and its patient's file, read together (the patient's is nearly always needed)."""
    file, patient = await deps.repo.consultation_and_patient(consultation_id, patient_id)
    if file.patient_id != patient_id:
        raise Rejected("patient-mismatch", f"{consultation_id} belongs to another patient")
    return file, patient


async def _patient_changed(deps: Deps, patient: PatientFile, named: ConsultationFile | None = None) -> Effects:
    """New patient facts apply to every open consultation of the patient, without the EHR resending."""
    now = deps.clock.now()
    files = await deps.repo.open_consultations(patient, held=[named] if named else [])
    screens = [rescreen(file, patient, deps.config, now) for file in files]
    return _decisions(deps, patient, screens, changed_only=True, patient_changed=True)


def _decisions(deps: Deps, patient: PatientFile, screens: list[Rescreen], *, changed_only: bool = False, patient_changed: bool = False) -> Effects:
    """Saves the screened files and publishes new decisions; the patient's open list follows the files."""
    saved = [s.file for s in screens if s.changed or not changed_only]
    indexed = patient.with_saved(saved)
    if patient_changed:
        effects = deps.repo.save_patient(indexed)
    elif indexed.open_consultations != patient.open_consultations:
        effects = deps.repo.save_open_consultations(indexed)
    else:
        effects = Effects()
    for screen in screens:
        if not screen.changed and changed_only:
            continue
        effects += deps.repo.save_consultation(screen.file)
        if screen.washout_listed is not None:
            effects += deps.repo.list_washout(screen.file, screen.washout_listed)
        if screen.event is not None:
            effects.emit(screen.event)
    decided = [s.file.status for s in screens if s.event is not None]
    effects.outcome = ",".join(decided) if decided else "unchanged"
    return effects
