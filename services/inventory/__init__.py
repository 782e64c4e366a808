"""Inventory: cocktail ingredients in lots, FEFO reservations, consumption, shortages and recalls."""
