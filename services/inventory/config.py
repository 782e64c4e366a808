"""Inventory configuration: the ingredients the clinic stocks, their units, reorder points, reorder lead
times and warnings, and the stock forecast's horizon.

The ingredient codes and units match the consultation formulary (plus the numbing cream used before
sessions). A clinic overrides any of it with a JSON file named in ``CLINIC_INVENTORY_CONFIG``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.contracts.base import IngredientCode
from shared.contracts.inventory import DEFAULT_FORECAST_WEEKS, MAX_FORECAST_WEEKS
from shared.contracts.plan import Unit

CONFIG_ENV = "CLINIC_INVENTORY_CONFIG"


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Ingredient(_Config):
    code: IngredientCode
    unit: Unit = Field(description="The unit every lot of this ingredient is counted in.")
    reorder_point: float = Field(gt=0, description="StockLow when available stock (on hand minus reserved) falls to or below this.")
    expiry_warning_days: int = Field(30, ge=0, le=365, description="LotExpiringSoon when a lot with stock left is this close to expiry.")
    quarantine_after_escalations: int = Field(
        2, ge=1, le=20, description="Escalated adverse events naming one lot before that lot is quarantined."
    )
    reorder_lead_days: int = Field(
        14, ge=0, le=180, description="Days from placing an order with the supplier to the lot being on the shelf (the stock forecast's reorder-by date)."
    )


DEFAULT_INGREDIENTS = (
    Ingredient(code="hyaluronic_acid", unit=Unit.MG, reorder_point=200, reorder_lead_days=21),
    Ingredient(code="biotin", unit=Unit.MG, reorder_point=50, reorder_lead_days=7),
    Ingredient(code="b_complex", unit=Unit.ML, reorder_point=10, reorder_lead_days=10),
    Ingredient(code="dexpanthenol", unit=Unit.MG, reorder_point=1000, reorder_lead_days=7),
    Ingredient(code="minoxidil", unit=Unit.MG, reorder_point=20, reorder_lead_days=14),
    Ingredient(code="saw_palmetto", unit=Unit.MG, reorder_point=200, reorder_lead_days=14),
    Ingredient(code="zinc", unit=Unit.MG, reorder_point=20, reorder_lead_days=7),
    Ingredient(code="copper_peptide", unit=Unit.MG, reorder_point=10, expiry_warning_days=45, reorder_lead_days=28),
    Ingredient(code="lidocaine_cream", unit=Unit.G, reorder_point=100, expiry_warning_days=60, reorder_lead_days=10),
)


class InventoryConfig(_Config):
    ingredients: tuple[Ingredient, ...] = Field(DEFAULT_INGREDIENTS, min_length=1)
    forecast_weeks: int = Field(
        DEFAULT_FORECAST_WEEKS, ge=1, le=MAX_FORECAST_WEEKS, description="Weeks ahead the weekly stock forecast covers (from the current ISO week)."
    )

    @field_validator("ingredients")
    @classmethod
    def _one_entry_per_code(cls, ingredients: tuple[Ingredient, ...]) -> tuple[Ingredient, ...]:
        codes = [i.code for i in ingredients]
        if len(set(codes)) != len(codes):
            raise ValueError("each ingredient code may appear once")
        return ingredients

    def ingredient(self, code: str) -> Ingredient | None:
        return next((i for i in self.ingredients if i.code == code), None)


def load_config(path: str | Path | None = None) -> InventoryConfig:
    """The defaults, overridden by the JSON file at ``path`` or ``$CLINIC_INVENTORY_CONFIG`` when set."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return InventoryConfig()
    return InventoryConfig.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
