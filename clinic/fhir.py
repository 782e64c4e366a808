"""A patient's treatment course as a FHIR R4 Bundle (type ``collection``), for the clinic's EHR.

Built only from the patient's published events (the events are the contract; no service's store is read),
read from the topics and picked by their Kafka key, the pseudonymous patient id. So an export covers what
the topics still retain: events past the topics' retention are not in it (an export right after the course,
or the EHR's own copy, keeps the whole record). It is an operator's and integrator's tool (`clinic export
fhir PATIENT_ID`), reading every partition of a few topics from their beginning: not for a hot path.

What each resource says and where it comes from:

- ``Patient``: the pseudonymous id only, as an identifier (the events carry no name or contact detail).
- ``CarePlan``: one per approved treatment plan (ConsultationApproved): the course, the sessions and their
  interval, and one activity per cocktail ingredient with its per-session amount. Its ``status`` follows the
  course: ``active``; ``on-hold`` while paused after an escalation (TreatmentPaused, until TreatmentResumed);
  ``completed`` (TreatmentCourseCompleted) or ``revoked`` (closed early on review, TreatmentCourseClosed), with
  ``period.end`` set to that day.
- ``Appointment``: one per session. Every state the session went through (SessionScheduled, SessionRescheduled,
  SessionCancelled, SessionNoShow, SessionCompleted) is a version of it (``meta.versionId`` 1, 2, ...; same
  ``fullUrl``, as FHIR allows in a collection), in the order they happened; the last version is the current one.
- ``MedicationAdministration``: one per ingredient lot injected in a completed session (SessionCompleted
  ``lots_used``; StockConsumed ``consumed`` when the completion itself is no longer retained). The lot number is
  on a contained ``Medication``'s ``batch.lotNumber``, R4's place for it.
- ``AdverseEvent``: one per side-effect report (SideEffectReported), marked serious with the escalation's
  reasons, suspect lots and ingredients once aftercare escalated it (AdverseEventEscalated).

Resource ids are the clinic's ids made FHIR-safe (``_`` becomes ``-``); the clinic's own ids are kept as
identifiers (systems ``urn:clinic:...``), and ``fullUrl`` is a stable ``urn:uuid`` derived from them, so two
exports of the same events are the same document apart from ``Bundle.timestamp``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import TopicAuthorizationFailedError

from clinic.operations import read_more, reader
from shared.contracts import EventData, topic_of
from shared.contracts.aftercare import AdverseEventEscalated, SideEffectReported
from shared.contracts.consultation import ConsultationApproved
from shared.contracts.inventory import StockConsumed
from shared.contracts.plan import Unit
from shared.contracts.scheduling import (
    SessionCancelled,
    SessionCompleted,
    SessionNoShow,
    SessionRescheduled,
    SessionScheduled,
    TreatmentCourseClosed,
    TreatmentCourseCompleted,
    TreatmentPaused,
    TreatmentResumed,
)
from shared.envelope import CloudEvent, InvalidEvent, decode
from shared.runtime.kafka_client import Kafka

SOURCES: tuple[type[EventData], ...] = (
    ConsultationApproved,
    SessionScheduled,
    SessionRescheduled,
    SessionCancelled,
    SessionNoShow,
    SessionCompleted,
    StockConsumed,
    SideEffectReported,
    AdverseEventEscalated,
    TreatmentPaused,
    TreatmentResumed,
    TreatmentCourseCompleted,
    TreatmentCourseClosed,
)
"""The events an export is built from (every one keyed by the patient id)."""

SYSTEM = "urn:clinic"
PATIENT, COURSE, CONSULTATION, SESSION, CLINICIAN, CHAIR = (f"{SYSTEM}:{name}" for name in ("patient", "course", "consultation", "session", "clinician", "chair"))
INGREDIENT, SYMPTOM, REPORT, RULE_SET = (f"{SYSTEM}:{name}" for name in ("ingredient", "symptom", "side-effect-report", "rule-set"))
ADMINISTRATION = f"{SYSTEM}:medication-administration"
CTCAE_GRADE = f"{SYSTEM}:fhir:StructureDefinition/ctcae-grade"
"""Extension on AdverseEvent: the CTCAE-style grade 1-5 (``severity`` says mild, moderate or severe)."""
SESSION_EXTENSION = f"{SYSTEM}:fhir:StructureDefinition/session"
"""Extension on AdverseEvent: the session (Appointment) the side effect follows."""
UCUM = "http://unitsofmeasure.org"
SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
_NAMESPACE = uuid.UUID("0f5b0c2e-6a52-4c1e-9a3e-5c1f6a7d2b90")
_UCUM = {Unit.MG: "mg", Unit.MCG: "ug", Unit.G: "g", Unit.ML: "mL", Unit.IU: "[IU]"}


class UnknownPatient(LookupError):
    """No event of the patient is on the topics: an unknown id, or every event is past retention."""


@dataclass(frozen=True)
class Export:
    bundle: dict[str, Any]
    events: int
    """Distinct events the bundle was built from."""
    undecodable: int = 0
    """Records of the patient on those topics that are not valid events (skipped)."""

    def counts(self) -> dict[str, int]:
        """Resources per type (an Appointment's versions count once)."""
        seen: dict[str, set[str]] = defaultdict(set)
        for entry in self.bundle["entry"]:
            seen[entry["resource"]["resourceType"]].add(entry["fullUrl"])
        return {kind: len(urls) for kind, urls in seen.items()}


async def export(kafka: Kafka, prefix: str, patient_id: str, *, now: datetime | None = None) -> Export:
    """The patient's course as a FHIR R4 Bundle, from every event of theirs the topics still retain.

    Raises UnknownPatient when there is none."""
    events, undecodable = await patient_events(kafka, prefix, patient_id)
    if not events:
        raise UnknownPatient(f"no events of patient {patient_id} on the {prefix}clinic.* topics (unknown patient, or all past retention)")
    return Export(bundle(patient_id, events, now=now), len(events), undecodable)


async def patient_events(kafka: Kafka, prefix: str, patient_id: str) -> tuple[list[CloudEvent[Any]], int]:
    """The patient's events on the export's topics, each once (at-least-once publishing may repeat one), and
    how many of the patient's records were not valid events. A topic that does not exist is empty."""
    key = patient_id.encode()
    found: dict[str, CloudEvent[Any]] = {}
    undecodable = 0
    async with reader(kafka) as consumer:
        topics = [topic_of(model, prefix) for model in SOURCES]
        for topic in topics:  # metadata of topics nobody subscribed to; the broker creates none on demand
            consumer._client.add_topic(topic)
        await consumer._client.force_metadata_update()
        denied = [t for t in topics if t in consumer._client.cluster.unauthorized_topics]
        if denied:
            raise TopicAuthorizationFailedError(", ".join(denied))
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            return [], 0
        consumer.assign(partitions)
        for record in await read_more(consumer, {}):
            if record.key != key:
                continue
            try:
                event = decode(record.value, record.headers)
            except InvalidEvent:
                undecodable += 1
                continue
            found.setdefault(event.id, event)
    return list(found.values()), undecodable


def bundle(patient_id: str, events: Iterable[CloudEvent[Any]], *, now: datetime | None = None) -> dict[str, Any]:
    """The Bundle from the patient's events (any order; other patients' events and other types are ignored)."""
    course = _Course(patient_id)
    distinct = {event.id: event for event in events}.values()  # at-least-once publishing: one event may come twice
    for event in sorted(distinct, key=lambda e: (e.time, _RANK.get(type(e.data), 0), e.id)):
        if getattr(event.data, "patient_id", None) == patient_id:
            course.add(event)
    return {
        "resourceType": "Bundle",
        "id": str(_uuid("Bundle", patient_id)),
        "type": "collection",
        "timestamp": _instant(now or datetime.now(UTC)),
        "entry": course.entries(),
    }


_RANK: dict[type[EventData], int] = {
    ConsultationApproved: 0, SessionScheduled: 1, SessionRescheduled: 2, SessionCancelled: 3, SessionNoShow: 3,
    SessionCompleted: 4, StockConsumed: 5, SideEffectReported: 6, AdverseEventEscalated: 7,
    TreatmentPaused: 8, TreatmentResumed: 9, TreatmentCourseCompleted: 10, TreatmentCourseClosed: 10,
}

CourseChange = TreatmentPaused | TreatmentResumed | TreatmentCourseCompleted | TreatmentCourseClosed


def _plan_status(data: CourseChange) -> tuple[str, datetime | None]:
    """(CarePlan.status, the day its period ended or None) after one event of the course's lifecycle."""
    if isinstance(data, TreatmentPaused):
        return "on-hold", None
    if isinstance(data, TreatmentResumed):
        return "active", None
    if isinstance(data, TreatmentCourseCompleted):
        return "completed", data.completed_at
    return "revoked", data.closed_at


@dataclass
class _Session:
    session_id: str
    course_id: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    start: datetime | None = None
    minutes: int | None = None
    practitioner: str | None = None
    chair: str | None = None
    sequence: int | None = None
    of_total: int | None = None


@dataclass
class _Course:
    patient_id: str
    plans: list[dict[str, Any]] = field(default_factory=list)
    course_states: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    sessions: dict[str, _Session] = field(default_factory=dict)
    completed: dict[str, SessionCompleted] = field(default_factory=dict)
    consumed: dict[str, StockConsumed] = field(default_factory=dict)
    reports: dict[str, SideEffectReported] = field(default_factory=dict)
    escalations: dict[str, AdverseEventEscalated] = field(default_factory=dict)

    def add(self, event: CloudEvent[Any]) -> None:
        data = event.data
        if isinstance(data, ConsultationApproved):
            self.plans.append(self._care_plan(data))
        elif isinstance(data, SessionScheduled | SessionRescheduled | SessionCancelled | SessionNoShow | SessionCompleted):
            self._appointment_state(data, event.time)
            if isinstance(data, SessionCompleted):
                self.completed[data.session_id] = data
        elif isinstance(data, StockConsumed):
            self.consumed[data.session_id] = data
        elif isinstance(data, SideEffectReported):
            self.reports[data.report_id] = data
        elif isinstance(data, AdverseEventEscalated):
            self.escalations[data.report_id] = data
        elif isinstance(data, CourseChange):
            self.course_states[data.course_id] = _plan_status(data)

    def entries(self) -> list[dict[str, Any]]:
        resources = [self._patient(), *(self._with_state(plan) for plan in self.plans)]
        for session in self.sessions.values():
            resources.extend(session.versions)
        administrations = self._administrations()
        resources.extend(resource for group in administrations.values() for resource in group)
        resources.extend(self._adverse_events(administrations))
        return [{"fullUrl": _url(r["resourceType"], r["id"]), "resource": r} for r in resources]

    # --- resources ---------------------------------------------------------------------------------------

    def _patient(self) -> dict[str, Any]:
        return {"resourceType": "Patient", "id": _id(self.patient_id), "identifier": [_identifier(PATIENT, self.patient_id)]}

    def _subject(self) -> dict[str, Any]:
        return {"reference": _url("Patient", _id(self.patient_id)), "type": "Patient"}

    def _care_plan(self, data: ConsultationApproved) -> dict[str, Any]:
        plan = data.plan
        timing = {"repeat": {"count": plan.sessions, "period": plan.interval_days, "periodUnit": "d"}}
        activities = [
            {"detail": {
                "kind": "MedicationRequest",
                "status": "scheduled",
                "productCodeableConcept": _concept(INGREDIENT, line.ingredient),
                "quantity": _quantity(line.amount, line.unit),
                "scheduledTiming": timing,
                "description": f"{line.amount:g} {line.unit} of {line.ingredient} per session, intradermal ({plan.technique}, {plan.pattern}, {plan.depth_mm:g} mm)",
            }}
            for line in plan.cocktail
        ]
        return {
            "resourceType": "CarePlan",
            "id": _id(data.course_id),
            "identifier": [_identifier(COURSE, data.course_id), _identifier(CONSULTATION, data.consultation_id), _identifier(RULE_SET, data.rule_set_version)],
            "status": "active",
            "intent": "plan",
            "title": "Hair-loss mesotherapy course",
            "description": (
                f"{plan.sessions} sessions every {plan.interval_days} days from {plan.earliest_start.isoformat()}, depth {plan.depth_mm:g} mm, "
                f"{plan.technique}, {plan.pattern}; maintenance every {plan.maintenance_interval_weeks} weeks"
                + (f"; excluded: {', '.join(sorted(e.ingredient for e in data.excluded_ingredients))}" if data.excluded_ingredients else "")
            ),
            "subject": self._subject(),
            "period": {"start": plan.earliest_start.isoformat()},
            "created": _instant(data.approved_at),
            "activity": activities,
        }

    def _with_state(self, plan: dict[str, Any]) -> dict[str, Any]:
        course_id = next(i["value"] for i in plan["identifier"] if i["system"] == COURSE)
        status, ended = self.course_states.get(course_id, ("active", None))
        plan = {**plan, "status": status}
        if ended is not None:
            plan["period"] = {**plan["period"], "end": ended.date().isoformat()}
        return plan

    def _appointment_state(self, data: EventData, at: datetime) -> None:
        session_id, course_id = data.session_id, data.course_id  # type: ignore[attr-defined]
        session = self.sessions.setdefault(session_id, _Session(session_id, course_id))
        if isinstance(data, SessionScheduled | SessionRescheduled):
            session.start, session.minutes = data.scheduled_for, data.duration_minutes
            session.practitioner, session.chair, session.sequence = data.practitioner_id, data.chair_id, data.sequence
            if isinstance(data, SessionScheduled):
                session.of_total = data.of_total
        elif isinstance(data, SessionCompleted):
            session.practitioner = data.practitioner_id
        elif isinstance(data, SessionCancelled | SessionNoShow) and session.start is None:
            session.start = data.scheduled_for
        status, comment, changed = _state(data, at)
        appointment: dict[str, Any] = {
            "resourceType": "Appointment",
            "id": _id(session_id),
            "meta": {"versionId": str(len(session.versions) + 1), "lastUpdated": _instant(changed)},
            "identifier": [_identifier(SESSION, session_id), _identifier(COURSE, course_id)],
            "status": status,
            "serviceType": [{"text": "Hair-loss mesotherapy session"}],
        }
        if session.sequence is not None:
            appointment["description"] = f"Session {session.sequence}" + (f" of {session.of_total}" if session.of_total else "")
        if isinstance(data, SessionCancelled):
            appointment["cancelationReason"] = {"text": f"{data.reason} (cancelled by the {data.cancelled_by})"}
        start, end = self._times(session, data)
        if start is not None and end is not None:
            appointment["start"], appointment["end"] = _instant(start), _instant(end)
            appointment["minutesDuration"] = max(1, round((end - start).total_seconds() / 60))
        if comment:
            appointment["comment"] = comment
        appointment["supportingInformation"] = [{"reference": _url("CarePlan", _id(course_id)), "type": "CarePlan"}]
        participants = [{"actor": self._subject(), "required": "required", "status": "accepted"}]
        if session.practitioner:
            participants.append({"actor": _logical("Practitioner", CLINICIAN, session.practitioner), "required": "required", "status": "accepted"})
        if session.chair:
            participants.append({"actor": _logical("Location", CHAIR, session.chair), "required": "required", "status": "accepted"})
        appointment["participant"] = participants
        session.versions.append(appointment)

    @staticmethod
    def _times(session: _Session, data: EventData) -> tuple[datetime | None, datetime | None]:
        if isinstance(data, SessionCompleted):  # a completion without its booking: the time it was finished
            start = session.start or data.completed_at
            return start, (start + timedelta(minutes=session.minutes)) if session.minutes and session.start else data.completed_at
        if session.start is None or session.minutes is None:
            return None, None  # only proposed or cancelled appointments may lack them; a lone cancellation has no duration
        return session.start, session.start + timedelta(minutes=session.minutes)

    def _administrations(self) -> dict[str, list[dict[str, Any]]]:
        """Per session: one MedicationAdministration per lot line the patient received."""
        found: dict[str, list[dict[str, Any]]] = {}
        for session_id in [*self.completed, *(s for s in self.consumed if s not in self.completed)]:
            completed = self.completed.get(session_id)
            if completed is not None:
                lines = [(line.ingredient, line.lot_number, line.amount, line.unit) for line in completed.lots_used]
                course_id, at, practitioner = completed.course_id, completed.completed_at, completed.practitioner_id
            else:
                consumed = self.consumed[session_id]
                lines = [(line.ingredient, line.lot_number, line.amount, line.unit) for line in consumed.consumed]
                course_id, at, practitioner = consumed.course_id, consumed.consumed_at, None
            group = []
            for ingredient, lot, amount, unit in lines:
                key = f"{session_id}/{ingredient}/{lot}"
                administration: dict[str, Any] = {
                    "resourceType": "MedicationAdministration",
                    "id": str(_uuid("MedicationAdministration", key)),
                    "identifier": [_identifier(ADMINISTRATION, key)],
                    "contained": [_medication("med", ingredient, lot)],
                    "status": "completed",
                    "medicationReference": {"reference": "#med", "display": f"{ingredient} lot {lot}"},
                    "subject": self._subject(),
                    "supportingInformation": [
                        {"reference": _url("Appointment", _id(session_id)), "type": "Appointment"},
                        {"reference": _url("CarePlan", _id(course_id)), "type": "CarePlan"},
                    ],
                    "effectiveDateTime": _instant(at),
                    "dosage": {"site": {"text": "scalp"}, "route": {"text": "intradermal"}, "dose": _quantity(amount, unit)},
                }
                if practitioner:
                    administration["performer"] = [{"actor": _logical("Practitioner", CLINICIAN, practitioner)}]
                group.append(administration)
            found[session_id] = group
        return found

    def _adverse_events(self, administrations: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        found = []
        for report_id in [*self.reports, *(r for r in self.escalations if r not in self.reports)]:
            report, escalation = self.reports.get(report_id), self.escalations.get(report_id)
            base = report or escalation
            assert base is not None
            grade = max(base.grade, escalation.grade if escalation else 0)
            adverse: dict[str, Any] = {
                "resourceType": "AdverseEvent",
                "id": _id(report_id),
                "extension": [
                    {"url": CTCAE_GRADE, "valueInteger": grade},
                    {"url": SESSION_EXTENSION, "valueReference": {"reference": _url("Appointment", _id(base.session_id)), "type": "Appointment"}},
                ],
                "identifier": _identifier(REPORT, report_id),
                "actuality": "actual",
                "event": _concept(SYMPTOM, base.symptom),
                "subject": self._subject(),
                "date": _instant(base.onset_at),
                "severity": _coded(SEVERITY, _severity(grade)),
            }
            if report is not None:
                adverse["detected"] = _instant(report.onset_at)
                adverse["recordedDate"] = _instant(report.reported_at)
                adverse["outcome"] = _coded(OUTCOME, "ongoing" if report.still_present else "resolved")
            if escalation is not None:
                reasons = ", ".join(escalation.reasons)
                adverse["seriousness"] = {**_coded(SERIOUSNESS, "serious"), "text": f"escalated as {escalation.escalation_id}: {reasons}"}
                adverse["suspectEntity"], contained = self._suspects(escalation, administrations.get(escalation.session_id, []))
                if contained:
                    adverse["contained"] = contained
            found.append(adverse)
        return found

    @staticmethod
    def _suspects(escalation: AdverseEventEscalated, given: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The escalation's suspect lots (and ingredients): the administrations that gave them when they are in
        the bundle, else a contained Medication with the lot."""
        suspects: list[dict[str, Any]] = []
        contained: list[dict[str, Any]] = []
        named = {(lot.ingredient, lot.lot_number) for lot in escalation.lots}
        covered = set()
        for administration in given:
            medication = administration["contained"][0]
            pair = (medication["code"]["coding"][0]["code"], medication["batch"]["lotNumber"])
            if pair in named or pair[0] in escalation.suspect_ingredients:
                suspects.append({"instance": {"reference": _url("MedicationAdministration", administration["id"]), "type": "MedicationAdministration"}})
                covered.add(pair)
        missing = sorted(named - covered) + [(i, None) for i in escalation.suspect_ingredients if i not in {p[0] for p in named | covered}]
        for index, (ingredient, lot) in enumerate(missing, start=1):
            contained.append(_medication(f"suspect{index}", ingredient, lot))
            suspects.append({"instance": {"reference": f"#suspect{index}", "type": "Medication"}})
        return suspects, contained


def _state(data: EventData, at: datetime) -> tuple[str, str | None, datetime]:
    """(Appointment.status, comment, when it changed) for one session event."""
    if isinstance(data, SessionScheduled):
        return "booked", None, at
    if isinstance(data, SessionRescheduled):
        caused = f" (after {data.caused_by_session_id} moved)" if data.caused_by_session_id else ""
        return "booked", f"moved from {_instant(data.previous_start)}: {data.reason}{caused}", at
    if isinstance(data, SessionCancelled):
        return "cancelled", None if data.rebook else "not to be rebooked", data.cancelled_at
    if isinstance(data, SessionNoShow):
        return "noshow", None, data.recorded_at
    assert isinstance(data, SessionCompleted)
    return "fulfilled", f"depth {data.depth_mm:g} mm", data.completed_at


def _severity(grade: int) -> str:
    return "mild" if grade <= 1 else "moderate" if grade == 2 else "severe"


def _medication(local_id: str, ingredient: str, lot: str | None) -> dict[str, Any]:
    medication: dict[str, Any] = {"resourceType": "Medication", "id": local_id, "code": _concept(INGREDIENT, ingredient)}
    if lot is not None:
        medication["batch"] = {"lotNumber": lot}
    return medication


def _id(clinic_id: str) -> str:
    """A clinic id as a FHIR id ([A-Za-z0-9-.]{1,64}): the clinic's ids differ from it only by ``_``."""
    return clinic_id.replace("_", "-")[:64]


def _uuid(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{kind}/{key}")


def _url(kind: str, fhir_id: str) -> str:
    return f"urn:uuid:{_uuid(kind, fhir_id)}"


def _identifier(system: str, value: str) -> dict[str, str]:
    return {"system": system, "value": value}


def _logical(kind: str, system: str, value: str) -> dict[str, Any]:
    """A reference by identifier to something the bundle does not hold (a practitioner, a chair)."""
    return {"type": kind, "identifier": _identifier(system, value), "display": value}


def _concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": str(code)}], "text": str(code).replace("_", " ")}


def _coded(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _quantity(amount: float, unit: Unit) -> dict[str, Any]:
    return {"value": amount, "unit": str(unit), "system": UCUM, "code": _UCUM[unit]}


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
