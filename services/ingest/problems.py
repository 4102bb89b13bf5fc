"""The problem kinds of the ingest API: what it refuses beyond the HTTP pieces' own
(:data:`services.http.problems.HTTP_PROBLEM_KINDS`); :func:`services.ingest.app.create_app`
registers them."""

from __future__ import annotations

from services.http.problems import ProblemKind

__all__ = ["INGEST_PROBLEM_KINDS"]

INGEST_PROBLEM_KINDS: dict[str, ProblemKind] = {
    "invalid-events": (
        422,
        "Invalid events",
        "One or more events do not match the event contract; nothing of the request was "
        "accepted. Each entry of `errors` names the event's index and a JSON pointer.",
    ),
    "card-number": (
        422,
        "Card number",
        "An event carries what looks like a payment card number (13 to 19 digits under a "
        "card network's issuer prefix, Luhn-valid, contiguous or grouped as cards are "
        "written), in a value, a number or a key; nudge never accepts one, and nothing of "
        "the request was accepted. Each entry of `errors` names the event's index and the "
        "JSON pointer of the field (of its object, for a key), never the digits. Send a bank "
        "card token in `customer.bank_card_token` instead.",
    ),
    "too-many-events": (422, "Too many events", "A batch holds at most 1000 events."),
    "broker-unavailable": (
        503,
        "Broker unavailable",
        "The event broker did not acknowledge in time; nothing is promised about this "
        "request. Retry after the number of seconds in Retry-After: a retried event is "
        "deduplicated by its event_id.",
    ),
    "event-id-conflict": (
        409,
        "Event id conflict",
        "An event id names one event: the request reuses one with other content, either "
        "within the request or against an event accepted before, and nothing of the "
        "request was accepted. Each entry of `errors` names the event's index and the JSON "
        "pointer of its id. The same id with the same content is a duplicate, not a "
        "conflict (see docs/api.md for what counts as the same content): give a new event "
        "a new id.",
    ),
    "database-unavailable": (
        503,
        "Database unavailable",
        "The database that keeps the accepted event ids did not answer; nothing of the "
        "request was accepted. Retry after the number of seconds in Retry-After.",
    ),
    "bad-signature": (
        401,
        "Bad signature",
        "A delivery webhook must carry `X-Nudge-Timestamp` (Unix seconds, within 5 minutes "
        "of nudge's clock) and `X-Nudge-Signature: v1=<hex HMAC-SHA256 of "
        '"<timestamp>.<raw body>" under the provider\'s secret>`; they were missing, '
        "malformed, too old or too far ahead, or did not match.",
    ),
    "bad-token": (
        400,
        "Bad unsubscribe link",
        "The unsubscribe link is not one nudge made: it was cut short, altered, or signed "
        "with another key. Use the link from the email as it came.",
    ),
}
