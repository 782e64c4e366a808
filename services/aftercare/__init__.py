"""Aftercare: instructions and check-ins after each session, graded side effects and their escalation, outcomes."""
