"""Every reason a record is dead-lettered for: the stable ``dlq_reason`` header code and what it means.

The one table of them. The runtime's reasons come from decoding and handling any record
(``shared/envelope.py``, ``shared/runtime/``); the others are a service's own rejection codes
(``Rejected("unknown-session", ...)`` and the errors it turns into one). The AsyncAPI document's
``dlq_reason`` header and the rules reference (docs/rules.md) are written from it, and
tests/contract/test_rules_reference.py fails when a reason raised anywhere in the code is missing here,
or one listed here is raised nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass

RUNTIME = "runtime"
"""``raised_by`` of the reasons any service gives, from decoding or handling a record."""


@dataclass(frozen=True)
class DeadLetterReason:
    code: str
    meaning: str
    raised_by: tuple[str, ...]
    """``runtime`` (every service) or the services that reject with it."""


def _reasons(*reasons: DeadLetterReason) -> dict[str, DeadLetterReason]:
    table = {reason.code: reason for reason in reasons}
    if len(table) != len(reasons):
        raise ValueError("a dead-letter reason is listed twice")
    return table


def _r(code: str, meaning: str, *raised_by: str) -> DeadLetterReason:
    return DeadLetterReason(code, meaning, raised_by or (RUNTIME,))


REASONS: dict[str, DeadLetterReason] = _reasons(
    # Decoding (shared/envelope.py), in the order the checks run.
    _r("oversized", "The record (value plus headers) is larger than CLINIC_MAX_EVENT_BYTES (256 KiB by default); refused before it is parsed."),
    _r("malformed", "Not a CloudEvent we can read: no value, not JSON, a header that is not UTF-8, a content type other than JSON, "
       "a time that is not RFC 3339, or base64 data in structured mode."),
    _r("missing-attribute", "A required CloudEvents attribute (id, source, type or specversion) is missing."),
    _r("unsupported-specversion", "The CloudEvents specversion is not 1.0."),
    _r("unknown-type", "The CloudEvents type is not an event of the clinic's contracts."),
    _r("schema-invalid", "The data does not match the event's JSON Schema: a missing or invalid field, too many items, or a field "
       "the contract does not have (unknown fields are refused). dlq_error names the fields, never their values."),
    # Handling (shared/runtime/service.py).
    _r("wrong-topic", "The event's type does not belong on the topic it was read from (each type has its own topic)."),
    _r("handler-error", "The service's handler failed on every attempt (CLINIC_HANDLER_ATTEMPTS) with an error that is not transient; "
       "dlq_error names the exception class. A defect to fix, then `clinic dlq replay`."),
    _r("internal-error", "An unexpected failure before the handler ran; dlq_error names the exception class."),
    # The services' own rejections: well-formed events that cannot be applied.
    _r("patient-mismatch", "The consultation, course, session or check-in named belongs to another patient.",
       "consultation", "scheduling", "aftercare"),
    _r("severity-missing", "A hair-loss type with a severity scale (androgenetic alopecia, alopecia areata) was recorded without a severity.",
       "consultation"),
    _r("severity-not-applicable", "A severity was recorded for a hair-loss type that has no severity scale.", "consultation"),
    _r("severity-scale-mismatch", "The severity's scale does not fit the hair-loss type (and, for androgenetic alopecia, the sex at "
       "birth: Norwood for men, Ludwig for women).", "consultation"),
    _r("unknown-rule", "A review clears a rule id that is not in the service's rule set (see the screening rules).", "consultation"),
    _r("unknown-ingredient", "An allergy test names an ingredient that is not in the formulary, or a stock forecast is requested "
       "(StockForecastRequested) for an ingredient inventory does not stock: nothing is published (a delivery naming one is answered by "
       "StockRefused with this reason instead).",
       "consultation", "inventory"),
    _r("unknown-course", "An escalation or a review decision names a course (or a session of a course) that scheduling has not booked.",
       "scheduling"),
    _r("course-not-paused", "A clinician's review decision (resume or close) is about a course that is not paused (active, completed, "
       "closed or never booked in full): nothing is changed.", "scheduling"),
    _r("unknown-session", "The session is not one scheduling booked, or aftercare has no completed session of that id.",
       "scheduling", "aftercare"),
    _r("unit-mismatch", "A booking's cocktail amount is in a different unit from the one the ingredient is stocked in (a delivery in another unit is answered by StockRefused with this reason instead).", "inventory"),
    _r("unknown-lot", "A completed session used a lot inventory has never received.", "inventory"),
    _r("lot-mismatch", "The lot exists but holds another ingredient (or is counted in another unit) than the event says.", "inventory"),
    _r("quantity-not-positive", "A delivery of zero or less: answered by StockRefused with this reason, not dead-lettered.", "inventory"),
    _r("expired-on-receipt", "A delivered lot has already expired: answered by StockRefused with this reason, not dead-lettered.", "inventory"),
    _r("lot-withdrawn", "A delivery adds to a lot that was recalled or quarantined: answered by StockRefused with this reason, not dead-lettered.", "inventory"),
    _r("lot-conflict", "A delivery reuses a lot number already stocked with another ingredient, unit or expiry date: answered by StockRefused with this reason, not dead-lettered.", "inventory"),
    _r("parked-full", "A side-effect report for a session aftercare has not seen completed yet, when that session already has the most "
       "reports waiting for its completion (aftercare's parked_reports_per_session).", "aftercare"),
    _r("check-in-mismatch", "The check-in answered is known, but for another session.", "aftercare"),
    _r("onset-before-session", "A side effect's onset precedes the completion of the session it is reported for.", "aftercare"),
    _r("onset-after-report", "A side effect's onset is later than the time it was reported.", "aftercare"),
)


def describe() -> str:
    """The reasons as one line of text (the AsyncAPI ``dlq_reason`` header's description)."""
    return "Stable code of why it failed: " + "; ".join(f"`{r.code}`: {r.meaning}" for r in REASONS.values())
