"""The tests' name for the event client."""

from shared.client import EventClient as Bus

__all__ = ["Bus"]
