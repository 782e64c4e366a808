"""Consultation service: screens each assessment and approves a customized plan, defers or rejects."""
