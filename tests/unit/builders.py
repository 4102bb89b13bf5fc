"""Plain-data builders for the unit tests: events as a shop would post them, and moments.

Every moment is an explicit aware datetime: in pure code that is the simulated clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.domain.events import AnyEvent, IdentifyEvent, PurchaseEvent, parse_event

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
"""The moment most tests start from."""


def purchase_payload(
    total: str | Decimal = "100.00",
    at: datetime = T0,
    *,
    order_id: str = "o-1",
    customer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A purchase event as the JSON a shop posts, decoded into a dict."""
    return {
        "event_id": f"evt-{order_id}",
        "type": "purchase",
        "occurred_at": at.isoformat(),
        "customer": customer if customer is not None else {"id": "c-1"},
        "data": {"order_id": order_id, "total": str(total), "currency": "RUB"},
    }


def purchase(
    total: str | Decimal = "100.00",
    at: datetime = T0,
    *,
    order_id: str = "o-1",
    customer: dict[str, Any] | None = None,
) -> PurchaseEvent:
    event = parse_event(purchase_payload(total, at, order_id=order_id, customer=customer))
    assert isinstance(event, PurchaseEvent)
    return event


def identify_payload(
    at: datetime = T0, *, event_id: str = "evt-identify", **customer: str
) -> dict[str, Any]:
    """An identify event as the JSON a shop posts, decoded into a dict."""
    return {
        "event_id": event_id,
        "type": "identify",
        "occurred_at": at.isoformat(),
        "customer": customer or {"id": "c-1"},
    }


def identify(
    at: datetime = T0, *, event_id: str = "evt-identify", **customer: str
) -> IdentifyEvent:
    event = parse_event(identify_payload(at, event_id=event_id, **customer))
    assert isinstance(event, IdentifyEvent)
    return event


def event(
    type_: str,
    data: dict[str, Any] | None = None,
    at: datetime = T0,
    *,
    event_id: str | None = None,
    customer: dict[str, Any] | None = None,
) -> AnyEvent:
    """Any event of the contract, as a shop (or a provider's webhook) would post it."""
    payload: dict[str, Any] = {
        "event_id": event_id or f"evt-{type_}-{at.isoformat()}",
        "type": type_,
        "occurred_at": at.isoformat(),
        "customer": customer if customer is not None else {"id": "c-1"},
    }
    if data is not None:
        payload["data"] = data
    return parse_event(payload)
