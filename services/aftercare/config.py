"""Aftercare configuration: the clinic's instructions, check-in times and escalation thresholds.

Defaults come from the seed (24 h / 48 h advice, sun protection, expected and serious side effects) and
from clinic-domain.md (CTCAE-style grades, check-ins at 24 h and 72 h). A clinic overrides any of them
with a JSON file named in ``CLINIC_AFTERCARE_CONFIG``.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.contracts.aftercare import AftercareAdvice, Symptom

CONFIG_ENV = "CLINIC_AFTERCARE_CONFIG"


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InstructionRule(_Config):
    """An advice code and how long it holds; the patient app owns the wording (events carry no free text)."""

    advice: AftercareAdvice
    hours: int = Field(ge=1, le=24 * 90, description="How long after the session the advice holds.")

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.hours)


DEFAULT_INSTRUCTIONS = (
    InstructionRule(advice=AftercareAdvice.ICE_PACKS, hours=24),
    InstructionRule(advice=AftercareAdvice.NO_MAKEUP, hours=24),
    InstructionRule(advice=AftercareAdvice.NO_SWIMMING, hours=24),
    InstructionRule(advice=AftercareAdvice.NO_TOUCHING, hours=24),
    InstructionRule(advice=AftercareAdvice.NO_ALCOHOL, hours=48),
    InstructionRule(advice=AftercareAdvice.NO_SMOKING, hours=48),
    InstructionRule(advice=AftercareAdvice.NO_INTENSE_EXERCISE, hours=48),
    InstructionRule(advice=AftercareAdvice.SUN_PROTECTION, hours=14 * 24),
)

EXPECTED_SYMPTOMS = frozenset({Symptom.PAIN, Symptom.REDNESS, Symptom.SWELLING, Symptom.BRUISING, Symptom.ITCHING})


class EscalationRules(_Config):
    expected_symptoms: frozenset[Symptom] = Field(
        EXPECTED_SYMPTOMS, description="Expected after mesotherapy; recorded without escalation while mild and short-lived."
    )
    # Only the symptoms the contract has an escalation reason for can be escalated for what they are.
    serious_symptoms: frozenset[Literal[Symptom.ALLERGIC_REACTION, Symptom.INFECTION]] = Field(
        frozenset({Symptom.ALLERGIC_REACTION, Symptom.INFECTION}), description="Escalated at any grade."
    )
    escalate_from_grade: int = Field(
        3, ge=1, le=5, description="Any symptom at this grade or above is escalated (reason `grade_3_or_above`)."
    )
    persisting_after_days: float = Field(
        7, gt=0, le=90, description="A symptom still present longer than this after its onset is escalated (reason `persisting`)."
    )
    onset_grace_minutes: int = Field(
        0, ge=0, le=240, description="How long before the session's completion an onset is still accepted (during the injections)."
    )

    @property
    def persisting_after(self) -> timedelta:
        return timedelta(days=self.persisting_after_days)

    @property
    def onset_grace(self) -> timedelta:
        return timedelta(minutes=self.onset_grace_minutes)


class AftercareConfig(_Config):
    instructions: tuple[InstructionRule, ...] = Field(DEFAULT_INSTRUCTIONS, min_length=1)
    check_in_hours: tuple[int, ...] = Field((24, 72), description="Check-ins fall due this many hours after each session.")
    escalation: EscalationRules = EscalationRules()
    parked_reports_per_session: int = Field(
        20, ge=1, le=100, description="Side-effect reports that may wait for one session's completion; more are dead-lettered (parked-full)."
    )

    @field_validator("instructions")
    @classmethod
    def _one_rule_per_advice(cls, rules: tuple[InstructionRule, ...]) -> tuple[InstructionRule, ...]:
        advice = [rule.advice for rule in rules]
        if len(set(advice)) != len(advice):
            raise ValueError("each advice may appear once")
        return rules

    @field_validator("check_in_hours")
    @classmethod
    def _distinct_hours_in_range(cls, hours: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= h <= 720 for h in hours):
            raise ValueError("check-ins fall due 1 to 720 hours after the session")
        if len(set(hours)) != len(hours):
            raise ValueError("check-in hours must be distinct")
        return tuple(sorted(hours))


def load_config(path: str | Path | None = None) -> AftercareConfig:
    """The defaults, overridden by the JSON file at ``path`` or ``$CLINIC_AFTERCARE_CONFIG`` when set."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return AftercareConfig()
    return AftercareConfig.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
