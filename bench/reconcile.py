"""Reconcile journeys against what is on the topics: pure, no I/O (bench/chaos.py reads the topics).

The inputs the clinic's other systems published (ConsultationRecorded, SessionCompleted,
SideEffectReported) say what must have happened; the services' events say what did. Counted:

- lost: an effect an input calls for that is not there (a decision for a consultation, a booking for
  each of the approved plan's session numbers, a reservation for each booked session, a consumption and
  aftercare instructions for each completed session, the course completion once every session is
  completed, an escalation for each serious side-effect report);
- duplicated: one business effect recorded twice under different event ids (two decisions for one
  consultation, two bookings for one course and session number, two reservations of one ingredient for
  one session, two consumptions or instruction sets for one session, two completions of one course, two
  escalations for one report). The same event id published twice is at-least-once delivery, which the
  consumers' inboxes absorb, and is not counted, unless its content differs (``conflicting``);
- stuck: journeys that are not complete (every expected effect there, the consultation approved).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

DECISIONS = ("ConsultationApproved", "ConsultationDeferred", "ConsultationRejected")
ENDINGS = {"SchedulingFailed": "scheduling-failed", "IngredientShortage": "shortage"}
READ = (
    "ConsultationRecorded", "SessionCompleted", "SideEffectReported", *DECISIONS, "SessionScheduled", "IngredientsReserved",
    "StockConsumed", "AftercareInstructionsIssued", "TreatmentCourseCompleted", "AdverseEventEscalated", *ENDINGS,
)
"""The event types reconcile looks at."""


@dataclass(frozen=True)
class Seen:
    """One record read back from a topic: its contract name, CloudEvents id and JSON data."""

    name: str
    id: str
    data: dict[str, Any]


@dataclass
class Report:
    journeys: int = 0
    complete: int = 0
    lost: Counter = field(default_factory=Counter)
    duplicated: Counter = field(default_factory=Counter)
    conflicting: int = 0
    repeats: int = 0
    """Records that repeat an event id with the same content (at-least-once publishing; the inboxes drop them)."""
    stuck: list[str] = field(default_factory=list)
    ended: Counter = field(default_factory=Counter)
    """Journeys a business decision ended (deferred, rejected, scheduling failed, shortage): stuck too."""
    sessions: int = 0
    completed_sessions: int = 0
    side_effects: int = 0
    dead_letters: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.journeys > 0 and not self.stuck and not sum(self.lost.values()) and not sum(self.duplicated.values()) and not self.conflicting

    def rows(self) -> list[tuple[str, str]]:
        def by_kind(counter: Counter) -> str:
            total = sum(counter.values())
            return f"{total}" + (f"  ({', '.join(f'{k} {v}' for k, v in sorted(counter.items()))})" if total else "")

        return [
            ("journeys complete", f"{self.complete}/{self.journeys}"),
            ("sessions booked and reserved", f"{self.sessions}"),
            ("sessions completed / side effects reported", f"{self.completed_sessions} / {self.side_effects}"),
            ("effects lost (expected, absent)", by_kind(self.lost)),
            ("business effects duplicated", by_kind(self.duplicated)),
            ("same event id, different content", f"{self.conflicting}"),
            ("same event id again, same content (not counted)", f"{self.repeats}"),
            ("stuck (journeys not complete)", f"{len(self.stuck)}" + (f"  (ended by {', '.join(f'{k} {v}' for k, v in sorted(self.ended.items()))})" if self.ended else "")),
            ("dead letters", by_kind(self.dead_letters)),
        ]

    def table(self) -> str:
        width = max(len(label) for label, _ in self.rows())
        lines = [f"| {'check':<{width}} | result |", f"|{'-' * (width + 2)}|--------|"]
        lines += [f"| {label:<{width}} | {value} |" for label, value in self.rows()]
        return "\n".join(lines)


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def reconcile(seen: Iterable[Seen], patients: Iterable[str] | None = None, dead_letters: Iterable[str] = ()) -> Report:
    """``seen``: every record of the READ types (repeats included); ``patients``: the journeys' patient
    ids (default: every patient with a ConsultationRecorded); ``dead_letters``: the reason of each."""
    report = Report(dead_letters=Counter(dead_letters))
    by_id: dict[str, Seen] = {}
    for event in seen:
        first = by_id.get(event.id)
        if first is None:
            by_id[event.id] = event
            continue
        if first.name != event.name or _canonical(first.data) != _canonical(event.data):
            report.conflicting += 1
            report.examples.append(f"event {event.id} seen with different content ({first.name} / {event.name})")
        else:
            report.repeats += 1
    # the distinct events (by id) per type and patient
    events: dict[str, dict[str, list[Seen]]] = defaultdict(lambda: defaultdict(list))
    for event in by_id.values():
        events[event.name][event.data.get("patient_id", "")].append(event)
    wanted = sorted(set(patients) if patients is not None else set(events["ConsultationRecorded"]))

    def lose(kind: str, what: str) -> None:
        report.lost[kind] += 1
        report.examples.append(f"lost {kind}: {what}")

    def once(kind: str, key: str, found: list[Seen], patient: str) -> bool:
        """One distinct event expected for ``key``: count it lost or duplicated; whether it is there."""
        if not found:
            lose(kind, f"{key} ({patient})")
            return False
        if len(found) > 1:
            report.duplicated[kind] += len(found) - 1
            report.examples.append(f"duplicated {kind}: {key} ({patient}) x{len(found)}: {', '.join(e.id for e in found)}")
        return True

    def of(name: str, patient: str) -> list[Seen]:
        return events[name].get(patient, [])

    for patient in wanted:
        report.journeys += 1
        complete = True
        consultations = {e.data["consultation_id"] for e in of("ConsultationRecorded", patient)}
        if not consultations:
            lose("input", f"ConsultationRecorded of {patient}")
            report.stuck.append(patient)
            continue
        decisions = [e for name in DECISIONS for e in of(name, patient)]
        approved = []
        for consultation in sorted(consultations):
            mine = [e for e in decisions if e.data.get("consultation_id") == consultation]
            complete &= once("decision", consultation, mine, patient)
            approved += [e for e in mine if e.name == "ConsultationApproved"]
            if any(e.name != "ConsultationApproved" for e in mine):
                report.ended[mine[0].name.removeprefix("Consultation").lower()] += 1
                complete = False
        for name, reason in ENDINGS.items():
            if of(name, patient):
                report.ended[reason] += 1
                complete = False
        booked: dict[str, dict[str, Any]] = {}
        for decision in {e.data["course_id"]: e for e in approved}.values():
            course, count = decision.data["course_id"], int(decision.data["plan"]["sessions"])
            bookings = [e for e in of("SessionScheduled", patient) if e.data.get("course_id") == course]
            for number in range(1, count + 1):
                mine = [e for e in bookings if int(e.data.get("sequence", 0)) == number]
                if once("booking", f"{course} session {number}", mine, patient):
                    booked.setdefault(mine[0].data["session_id"], mine[0].data)
                else:
                    complete = False
        reserved = defaultdict(list)
        for event in of("IngredientsReserved", patient):
            for ingredient in {a["ingredient"] for a in event.data.get("allocations", [])}:
                reserved[(event.data["session_id"], ingredient)].append(event)
        for session in sorted(booked):
            mine = [e for e in of("IngredientsReserved", patient) if e.data.get("session_id") == session]
            if not mine:
                lose("reservation", f"{session} ({patient})")
                complete = False
                continue
            report.sessions += 1
            for (where, ingredient), found in sorted(reserved.items()):
                if where == session and len(found) > 1:
                    report.duplicated["reservation"] += len(found) - 1
                    report.examples.append(f"duplicated reservation: {session} {ingredient} x{len(found)}")
        completed = {e.data["session_id"]: e.data for e in of("SessionCompleted", patient)}
        for session in sorted(completed):
            report.completed_sessions += 1
            for name, kind in (("StockConsumed", "consumption"), ("AftercareInstructionsIssued", "aftercare-instructions")):
                complete &= once(kind, session, [e for e in of(name, patient) if e.data.get("session_id") == session], patient)
        courses = {d["course_id"] for d in completed.values()}
        for course in sorted(courses):
            if booked and {s for s, d in booked.items() if d["course_id"] == course} <= set(completed):
                complete &= once("course-completion", course, [e for e in of("TreatmentCourseCompleted", patient) if e.data.get("course_id") == course], patient)
        for report_event in of("SideEffectReported", patient):
            report.side_effects += 1
            report_id = report_event.data["report_id"]
            complete &= once("escalation", report_id, [e for e in of("AdverseEventEscalated", patient) if e.data.get("report_id") == report_id], patient)
        if complete:
            report.complete += 1
        else:
            report.stuck.append(patient)
    return report
