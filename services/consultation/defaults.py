"""The clinic's default rule set and formulary (validated by ``config.py``; a JSON file may replace them).

Rule outcomes: ``reject`` is an absolute contraindication (no review clears it), ``defer`` waits until
resolved, ``review`` waits for a clinician, ``exclude_ingredient`` leaves an ingredient out, ``note``
changes nothing but is published so the decision can be explained.
"""

from __future__ import annotations

from typing import Any

_LAB_NAMES = {"ferritin": "ferritin", "vitamin_d": "vitamin D", "zinc": "zinc", "tsh": "TSH"}


def _rule(outcome: str, detail: str, **more: Any) -> dict[str, Any]:
    return {"outcome": outcome, "detail": detail, **more}


RULES: dict[str, dict[str, Any]] = {
    "suitability.scarring_alopecia": _rule("reject", "scarring alopecia does not respond to mesotherapy", referral="dermatologist"),
    "suitability.alopecia_areata": _rule("review", "alopecia areata needs the clinician's explicit review"),
    "suitability.other_hair_loss": _rule("review", "hair-loss type outside the formulary needs the clinician's review"),
    "contra.pregnancy": _rule("reject", "pregnancy is an absolute contraindication"),
    "contra.breastfeeding": _rule("reject", "breastfeeding is an absolute contraindication"),
    "contra.essential_ingredient_allergy": _rule(
        "reject", "allergy to an ingredient the plan cannot do without", referral="dermatologist"
    ),
    "contra.no_ingredients_left": _rule("reject", "no formulary ingredient is left after exclusions", referral="dermatologist"),
    "review.essential_ingredient_sensitivity": _rule(
        "review", "sensitivity recorded after an adverse event to an ingredient the plan cannot do without"
    ),
    "allergy.known_allergen": _rule("exclude_ingredient", "known allergy to a formulary ingredient"),
    "allergy.positive_test": _rule("exclude_ingredient", "positive allergy test to a formulary ingredient"),
    "allergy.recorded_sensitivity": _rule("exclude_ingredient", "sensitivity recorded after an adverse event"),
    "allergy.test_required": _rule("defer", "allergy test required for new ingredients"),
    "scalp.active_infection": _rule("defer", "active scalp infection must resolve first"),
    "scalp.open_wound": _rule("defer", "open scalp wound must heal first"),
    "meds.blood_thinner_washout": _rule("defer", "aspirin or NSAIDs still taken: washout needed before the first session"),
    "meds.washout_in_progress": _rule("note", "first session after the aspirin/NSAID washout"),
    "review.anticoagulant": _rule("review", "prescribed anticoagulants need the clinician's review"),
    "review.bleeding_disorder": _rule("review", "bleeding disorder needs the clinician's review"),
    "review.immunosuppressed": _rule("review", "immunosuppression raises the infection risk: clinician's review needed"),
    "consent.not_given": _rule("defer", "informed consent not given", clearable=False),
    "consent.expectations_not_discussed": _rule("defer", "realistic expectations not discussed", clearable=False),
    "review.clinician_rejected": _rule("reject", "rejected by the clinician on review"),
    "precaution.numbing_cream_allergy": _rule("note", "no numbing cream: allergy to a local anaesthetic"),
    **{f"labs.{test}_missing": _rule("defer", f"{name} result required") for test, name in _LAB_NAMES.items()},
    **{
        f"labs.{test}_out_of_range": _rule("defer", f"{name} out of range: treat the underlying cause first")
        for test, name in _LAB_NAMES.items()
    },
}

RULE_SET: dict[str, Any] = {
    "version": "2026.11-1",
    "rules": RULES,
    "labs": {
        "ferritin": {"ranges": {"ng/mL": {"low": 30, "high": 400}, "ug/L": {"low": 30, "high": 400}}},
        "vitamin_d": {"ranges": {"ng/mL": {"low": 30, "high": 100}, "nmol/L": {"low": 75, "high": 250}}},
        "zinc": {"ranges": {"ug/dL": {"low": 70, "high": 120}, "umol/L": {"low": 10.7, "high": 18.4}}},
        "tsh": {"ranges": {"mIU/L": {"low": 0.4, "high": 4.0}}},
    },
    "lab_max_age_days": 180,
    "test_all_ingredients_on_allergy_history": True,
}

_AGA = "androgenetic_alopecia"
_TE = "telogen_effluvium"
_AA = "alopecia_areata"
_HQ = "hair_quality"
_OTHER = "other"


def _bands(mild: float, moderate: float, severe: float) -> dict[str, float]:
    return {"mild": mild, "moderate": moderate, "severe": severe}


FORMULARY: dict[str, Any] = {
    "ingredients": [
        {
            "code": "hyaluronic_acid",
            "unit": "mg",
            "role": "hydration",
            "essential_for": [_HQ],
            "doses": {_AGA: _bands(10, 15, 20), _TE: {"moderate": 15}, _AA: _bands(10, 10, 15), _HQ: {"moderate": 20}, _OTHER: {"moderate": 15}},
        },
        {
            "code": "biotin",
            "unit": "mg",
            "role": "vitamin",
            "essential_for": [_TE],
            "doses": {_AGA: _bands(5, 5, 5), _TE: {"moderate": 5}, _AA: _bands(5, 5, 5), _HQ: {"moderate": 5}, _OTHER: {"moderate": 5}},
        },
        {"code": "b_complex", "unit": "ml", "role": "vitamin", "doses": {_TE: {"moderate": 1}, _HQ: {"moderate": 1}}},
        {"code": "dexpanthenol", "unit": "mg", "role": "vitamin", "doses": {_AGA: _bands(50, 100, 100), _TE: {"moderate": 100}, _HQ: {"moderate": 50}}},
        {"code": "minoxidil", "unit": "mg", "role": "growth", "essential_for": [_AGA], "doses": {_AGA: _bands(1, 2, 2.5)}},
        {"code": "saw_palmetto", "unit": "mg", "role": "dht_blocker", "doses": {_AGA: {"moderate": 20, "severe": 40}}},
        {"code": "zinc", "unit": "mg", "role": "mineral", "doses": {_AGA: _bands(2, 2, 2), _TE: {"moderate": 2}}},
        {"code": "copper_peptide", "unit": "mg", "role": "peptide", "doses": {_AGA: {"severe": 1}, _AA: _bands(0.5, 1, 1)}},
    ],
    "bands": {
        "norwood": [{"band": "mild", "low": 1, "high": 2}, {"band": "moderate", "low": 3, "high": 4}, {"band": "severe", "low": 5, "high": 7}],
        "ludwig": [{"band": "mild", "low": 1, "high": 1}, {"band": "moderate", "low": 2, "high": 2}, {"band": "severe", "low": 3, "high": 3}],
        "salt": [{"band": "mild", "low": 0, "high": 24}, {"band": "moderate", "low": 25, "high": 49}, {"band": "severe", "low": 50, "high": 100}],
    },
    "unscaled_band": "moderate",
    "courses": {
        _AGA: {
            "mild": {"sessions": 4, "interval_days": 14, "depth_mm": 1.5, "technique": "gun", "pattern": "grid", "maintenance_interval_weeks": 16},
            "moderate": {"sessions": 6, "interval_days": 14, "depth_mm": 2.0, "technique": "gun", "pattern": "grid", "maintenance_interval_weeks": 12},
            "severe": {"sessions": 8, "interval_days": 14, "depth_mm": 2.5, "technique": "gun", "pattern": "grid", "maintenance_interval_weeks": 8},
        },
        _TE: {"moderate": {"sessions": 4, "interval_days": 14, "depth_mm": 1.5, "technique": "needle", "pattern": "grid", "maintenance_interval_weeks": 16}},
        _AA: {
            "mild": {"sessions": 4, "interval_days": 21, "depth_mm": 1.0, "technique": "syringe", "pattern": "points", "maintenance_interval_weeks": 12},
            "moderate": {"sessions": 6, "interval_days": 21, "depth_mm": 1.5, "technique": "syringe", "pattern": "points", "maintenance_interval_weeks": 12},
            "severe": {"sessions": 8, "interval_days": 21, "depth_mm": 1.5, "technique": "syringe", "pattern": "points", "maintenance_interval_weeks": 8},
        },
        _HQ: {"moderate": {"sessions": 4, "interval_days": 21, "depth_mm": 1.0, "technique": "gun", "pattern": "grid", "maintenance_interval_weeks": 16}},
        _OTHER: {"moderate": {"sessions": 5, "interval_days": 14, "depth_mm": 1.5, "technique": "needle", "pattern": "grid", "maintenance_interval_weeks": 12}},
    },
}

PRECAUTIONS: dict[str, Any] = {
    "aspirin_nsaid_washout_days": 7,
    "alcohol_days": 2,
    "numbing_cream_minutes": 45,
    "anaesthetic_allergens": ["lidocaine", "prilocaine", "benzocaine"],
}
