"""What every event contract has in common.

An event's *data* is one pydantic model. The model names its CloudEvents type, who produces it and
which field is the Kafka key; the envelope (``shared.envelope``) carries the rest.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone offset, e.g. 2026-03-02T09:00:00Z")
    return value


PatientId = Annotated[
    str,
    Field(
        pattern=r"^pt_[A-Za-z0-9]{8,40}$",
        description="Pseudonymous patient id issued by the clinic's EHR (never a name or contact detail).",
        examples=["pt_7Q2M9K4X"],
    ),
]
ConsultationId = Annotated[
    str,
    Field(pattern=r"^cons_[A-Za-z0-9]{6,40}$", description="Consultation id from the EHR.", examples=["cons_A81F22C9"]),
]
CourseId = Annotated[
    str,
    Field(pattern=r"^crs_[A-Za-z0-9]{6,40}$", description="Treatment course id (one per approved plan).", examples=["crs_5D0B7E11"]),
]
SessionId = Annotated[
    str,
    Field(pattern=r"^ses_[A-Za-z0-9_]{6,60}$", description="Treatment session (FHIR Appointment) id.", examples=["ses_5D0B7E11_01"]),
]
ClinicianId = Annotated[
    str,
    Field(pattern=r"^clin_[A-Za-z0-9]{3,40}$", description="Pseudonymous clinician id.", examples=["clin_0042"]),
]
IngredientCode = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{1,40}$",
        description="Formulary code of a cocktail ingredient.",
        examples=["hyaluronic_acid", "minoxidil", "biotin"],
    ),
]
LotNumber = Annotated[
    str,
    Field(pattern=r"^[A-Z0-9][A-Z0-9-]{2,39}$", description="Supplier's lot (batch) number.", examples=["HA-2026-0117"]),
]
Timestamp = Annotated[
    datetime,
    AfterValidator(_aware),
    Field(description="ISO 8601 timestamp with a timezone offset.", examples=["2026-03-02T09:00:00Z"]),
]
Day = Annotated[date, Field(description="Calendar date (ISO 8601).", examples=["2026-09-30"])]

# The most items any list of a contract may hold (JSON Schema maxItems). Generous for a real clinic
# record, small enough that an oversized or hostile event is refused on arrival (dead-lettered as
# schema-invalid) instead of being stored and fanned out. Every string is bounded too: by a pattern,
# an enum, a format or max_length (free text is short and coded; see Detail in plan.py).
FEW = 10
"""Reasons, goals, photo views, check-ins of one session."""
INGREDIENTS = 30
"""Lines of one cocktail or of what is missing for it, tested, excluded or suspected ingredients."""
LINES = 100
"""Medications, allergies, lab results, rules fired, instructions, lots and amounts of one session."""
SESSIONS = 1000
"""Sessions one lot touches (a recall or quarantine)."""
MAX_EVENT_BYTES = 256 * 1024
"""Default cap on one record (value plus headers) a service accepts: larger ones are dead-lettered as
``oversized`` before they are parsed (``CLINIC_MAX_EVENT_BYTES`` changes it). The largest valid event is far
smaller; Kafka's own default limit (about 1 MB) is too generous to be the clinic's."""

_WORD = re.compile(r"(?<!^)(?=[A-Z])")


class EventData(BaseModel):
    """Base of every event's data: immutable, and strict about its shape.

    Unknown fields are refused (``extra="forbid"``, ``additionalProperties: false`` in the schemas): a
    misspelt or padded field is dead-lettered as ``schema-invalid`` instead of silently dropped. A new
    optional field is therefore a change consumers must be deployed for before producers send it."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    event_type: ClassVar[str]
    """CloudEvents ``type`` and Kafka topic, e.g. ``clinic.session.completed.v1``."""
    producer: ClassVar[str]
    """Who publishes it: a service of ours (``consultation`` ...) or ``external`` (another clinic system)."""
    key_field: ClassVar[str] = "patient_id"
    """Field whose value is the Kafka key (the pseudonymous patient id where there is one)."""
    subject_field: ClassVar[str | None] = None
    """Field whose value is the CloudEvents ``subject`` (the consultation, session, lot ... it is about)."""

    @classmethod
    def event_name(cls) -> str:
        """Kebab-case name used on the command line, e.g. ``session-completed``."""
        return _WORD.sub("-", cls.__name__).lower()

    def key(self) -> str:
        return str(getattr(self, self.key_field))

    def subject(self) -> str | None:
        return None if self.subject_field is None else str(getattr(self, self.subject_field))


# Added with the event modules: an escalation is referred to by scheduling, inventory and aftercare.
EscalationId = Annotated[
    str,
    Field(
        pattern=r"^esc_[A-Za-z0-9_]{6,60}$",
        description="Adverse-event escalation id, assigned by aftercare.",
        examples=["esc_4F9A0C3E"],
    ),
]
