"""The consultation service's configuration: the screening rule set and the formulary, as data.

The defaults (the clinic's starting values) live in ``defaults.py``; ``CLINIC_CONSULTATION_CONFIG``
names a JSON file that replaces any top-level section. Loading validates everything: a rule set that
lacks a rule the screening fires, or a formulary that cannot dose a treatable type, fails at start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator, model_validator

from services.consultation import defaults
from shared.contracts.base import IngredientCode
from shared.contracts.consultation import LAB_UNITS, SEVERITY_RANGES, HairLossType, LabTest, RuleSetVersion
from shared.contracts.plan import Detail, InjectionPattern, RuleId, Technique, Unit

Band = Literal["mild", "moderate", "severe"]
Scale = Literal["norwood", "ludwig", "salt"]
Outcome = Literal["reject", "defer", "review", "exclude_ingredient", "note"]
Referral = Literal["dermatologist", "trichologist", "general_practitioner", "endocrinologist"]
UNSUITABLE = (HairLossType.SCARRING_ALOPECIA,)


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RuleSpec(Model):
    outcome: Outcome
    detail: Detail = Field(description="Fixed short reason published with the decision.")
    referral: Referral | None = None
    clearable: bool = Field(True, description="A clinician's review may clear it (never for a reject).")


# Rules whose outcome the code depends on: the rest may be set to reject, defer, review or note.
FIXED_OUTCOMES: dict[str, Outcome] = {
    "suitability.scarring_alopecia": "reject",
    "allergy.known_allergen": "exclude_ingredient",
    "allergy.positive_test": "exclude_ingredient",
    "allergy.recorded_sensitivity": "exclude_ingredient",
    "consent.not_given": "defer",
    "consent.expectations_not_discussed": "defer",
    "review.clinician_rejected": "reject",
    "meds.washout_in_progress": "note",
    "precaution.numbing_cream_allergy": "note",
}
NEVER_CLEARABLE = ("consent.not_given", "consent.expectations_not_discussed")
STATIC_RULES = (
    *FIXED_OUTCOMES,
    "suitability.alopecia_areata",
    "suitability.other_hair_loss",
    "contra.pregnancy",
    "contra.breastfeeding",
    "contra.essential_ingredient_allergy",
    "contra.no_ingredients_left",
    "review.essential_ingredient_sensitivity",
    "allergy.test_required",
    "scalp.active_infection",
    "scalp.open_wound",
    "meds.blood_thinner_washout",
    "review.anticoagulant",
    "review.bleeding_disorder",
    "review.immunosuppressed",
)


LabProblem = Literal["missing", "out_of_range"]
LAB_PROBLEMS: tuple[LabProblem, ...] = ("missing", "out_of_range")


def lab_rule(test: str, problem: LabProblem) -> str:
    return f"labs.{test}_{problem}"


class LabRange(Model):
    low: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> LabRange:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


class LabRequirement(Model):
    ranges: dict[str, LabRange] = Field(description="Accepted range (inclusive) per unit the lab may report in.")


class RuleSet(Model):
    version: RuleSetVersion
    rules: dict[RuleId, RuleSpec]
    labs: dict[LabTest, LabRequirement] = Field(description="Work-up results every consultation needs.")
    lab_max_age_days: int = Field(ge=1, le=730, description="Older results count as missing.")
    test_all_ingredients_on_allergy_history: bool = Field(
        True, description="With a history of allergies every ingredient needs a test, not only new ones."
    )

    @model_validator(mode="after")
    def _complete(self) -> RuleSet:
        needed = [*STATIC_RULES, *(lab_rule(t, p) for t in self.labs for p in LAB_PROBLEMS)]
        if missing := [rule for rule in needed if rule not in self.rules]:
            raise ValueError(f"rule set lacks {', '.join(missing)}")
        for rule, outcome in FIXED_OUTCOMES.items():
            if self.rules[rule].outcome != outcome:
                raise ValueError(f"{rule} must have outcome {outcome}")
        for rule in NEVER_CLEARABLE:
            if self.rules[rule].clearable:
                raise ValueError(f"{rule} cannot be clearable")
        for rule, spec in self.rules.items():
            if spec.outcome == "exclude_ingredient" and FIXED_OUTCOMES.get(rule) != "exclude_ingredient":
                raise ValueError(f"{rule} cannot exclude an ingredient")
        for test, requirement in self.labs.items():
            if bad := [u for u in requirement.ranges if u not in LAB_UNITS[test]]:
                raise ValueError(f"{test} is not reported in {', '.join(bad)}")
        return self


class Ingredient(Model):
    code: IngredientCode
    unit: Unit
    role: Literal["hydration", "vitamin", "growth", "dht_blocker", "mineral", "amino_acid", "peptide", "enzyme", "plant_extract"]
    essential_for: tuple[HairLossType, ...] = Field((), description="Types whose plan cannot do without it.")
    doses: dict[HairLossType, dict[Band, PositiveFloat]] = Field(description="Per-session amount by type and severity band.")


class BandRange(Model):
    band: Band
    low: int
    high: int


class CourseTemplate(Model):
    sessions: int = Field(ge=3, le=10)
    interval_days: int = Field(ge=7, le=28)
    depth_mm: float = Field(ge=1.0, le=4.0)
    technique: Technique
    pattern: InjectionPattern
    maintenance_interval_weeks: int = Field(ge=4, le=52)


class Formulary(Model):
    ingredients: tuple[Ingredient, ...]
    bands: dict[Scale, tuple[BandRange, ...]] = Field(description="Severity bands of each scale, covering it without gaps.")
    unscaled_band: Band = Field(description="Band of types without a severity scale (e.g. telogen effluvium).")
    courses: dict[HairLossType, dict[Band, CourseTemplate]] = Field(description="Course by type and severity band.")

    @model_validator(mode="after")
    def _consistent(self) -> Formulary:
        codes = [i.code for i in self.ingredients]
        if len(set(codes)) != len(codes):
            raise ValueError("an ingredient is listed twice")
        for scale, ranges in self.bands.items():
            covered = sorted(v for r in ranges for v in range(r.low, r.high + 1))
            lo, hi = SEVERITY_RANGES[scale]
            if covered != list(range(lo, hi + 1)):
                raise ValueError(f"bands of {scale} must cover {lo}-{hi} exactly once")
        for kind in HairLossType:
            if kind in UNSUITABLE:
                continue
            for band in self.bands_of(kind):
                if band not in self.courses.get(kind, {}):
                    raise ValueError(f"no course for {kind} {band}")
                if not any(band in i.doses.get(kind, {}) for i in self.ingredients):
                    raise ValueError(f"no ingredient for {kind} {band}")
        for ingredient in self.ingredients:
            for kind in ingredient.essential_for:
                if lacking := [b for b in self.bands_of(kind) if b not in ingredient.doses.get(kind, {})]:
                    raise ValueError(f"essential {ingredient.code} has no {kind} dose for {', '.join(lacking)}")
        return self

    def bands_of(self, kind: HairLossType) -> list[Band]:
        scales = SCALES_OF_TYPE.get(kind)
        if not scales:
            return [self.unscaled_band]
        return sorted({r.band for scale in scales for r in self.bands[scale]})

    def band(self, scale: Scale | None, value: int | None) -> Band:
        if scale is None or value is None:
            return self.unscaled_band
        return next(r.band for r in self.bands[scale] if r.low <= value <= r.high)

    def ingredient(self, code: str) -> Ingredient | None:
        return next((i for i in self.ingredients if i.code == code), None)


# Clinical vocabulary, not clinic policy: which severity scale belongs to which type (and sex).
SCALES_OF_TYPE: dict[HairLossType, tuple[Scale, ...]] = {
    HairLossType.ANDROGENETIC_ALOPECIA: ("norwood", "ludwig"),
    HairLossType.ALOPECIA_AREATA: ("salt",),
}


class Precautions(Model):
    aspirin_nsaid_washout_days: int = Field(ge=0, le=14, description="Days without aspirin/NSAIDs before a session.")
    alcohol_days: int = Field(ge=0, le=14, description="Days without alcohol before a session.")
    numbing_cream_minutes: int | None = Field(ge=30, le=60, description="Numbing cream before a session; null when none is used.")
    anaesthetic_allergens: tuple[IngredientCode, ...] = Field(description="Allergies that rule the numbing cream out.")


class ConsultationConfig(Model):
    timezone: str = Field("UTC", description="The clinic's time zone: decides which day 'today' is.")
    rule_set: RuleSet = Field(default_factory=lambda: RuleSet.model_validate(defaults.RULE_SET))
    formulary: Formulary = Field(default_factory=lambda: Formulary.model_validate(defaults.FORMULARY))
    precautions: Precautions = Field(default_factory=lambda: Precautions.model_validate(defaults.PRECAUTIONS))

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def load_config(path: str | None = None) -> ConsultationConfig:
    path = path or os.environ.get("CLINIC_CONSULTATION_CONFIG")
    if not path:
        return ConsultationConfig()
    return ConsultationConfig.model_validate(json.loads(Path(path).read_text()))
