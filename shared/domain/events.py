"""The events shops send to nudge: the public v1 contract, as pydantic models.

Ingest validates incoming JSON against these models and publishes the validated
event, as JSON, to the events topic; the segmenter parses the same models back.
Money is always :class:`~decimal.Decimal` with at most two decimals, and every
timestamp carries its UTC offset. A customer's identifiers are normalised as they
are validated (:mod:`shared.domain.identifiers`): phones in E.164, emails
lower-cased; a phone written without its country code is read in the default
region given to :func:`parse_event` (ingest passes ``NUDGE_DEFAULT_REGION``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.domain.identifiers import normalise_identifier

__all__ = [
    "IDENTIFIER_STRENGTH",
    "Customer",
    "Event",
    "EventBatch",
    "IdentifyData",
    "IdentifyEvent",
    "Item",
    "Money",
    "PurchaseData",
    "PurchaseEvent",
    "event_adapter",
    "parse_event",
    "read_published_event",
    "validate_event",
]

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
"""An amount in the shop's currency: never negative, at most two decimals."""

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
EventId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

IDENTIFIER_STRENGTH: tuple[str, ...] = (
    "id",
    "loyalty_card",
    "phone",
    "email",
    "app_install_id",
    "bank_card_token",
)
"""Identifier kinds, strongest first: the strongest one present keys the buyer's events."""

_REGION_CONTEXT_KEY = "default_region"
"""The validation context key naming the region of phones written without a country code."""


_PUBLISHED_CONTEXT_KEY = "published"
"""Set when reading an event back from the bus: its identifiers are normalised already."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Customer(_Strict):
    """Who the event is about: at least one identifier."""

    id: Text | None = None
    loyalty_card: Text | None = None
    phone: Text | None = None
    email: Text | None = None
    bank_card_token: Text | None = None
    app_install_id: Text | None = None

    @field_validator(*IDENTIFIER_STRENGTH)
    @classmethod
    def _normalised(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or info.field_name is None:
            return value
        context = info.context if isinstance(info.context, dict) else {}
        if context.get(_PUBLISHED_CONTEXT_KEY):
            return value  # ingest normalised it before publishing
        return normalise_identifier(
            info.field_name, value, default_region=context.get(_REGION_CONTEXT_KEY)
        )

    @model_validator(mode="after")
    def _at_least_one(self) -> Customer:
        if not self.identifiers():
            raise ValueError(
                "a customer needs at least one identifier: " + ", ".join(IDENTIFIER_STRENGTH)
            )
        return self

    def identifiers(self) -> dict[str, str]:
        """The identifiers present, strongest first."""
        found = {kind: getattr(self, kind) for kind in IDENTIFIER_STRENGTH}
        return {kind: value for kind, value in found.items() if value is not None}

    def strongest(self) -> tuple[str, str]:
        """The strongest identifier, as ``(kind, value)``."""
        return next(iter(self.identifiers().items()))


class Item(_Strict):
    sku: Text
    name: Text | None = None
    category: Text | None = None
    quantity: int = Field(default=1, ge=1, le=100_000)
    price: Money


class PurchaseData(_Strict):
    order_id: Text
    total: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "RUB"
    items: list[Item] = Field(default_factory=list, max_length=500)


class IdentifyData(_Strict):
    traits: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    consents: dict[Literal["email", "sms", "push"], bool] = Field(default_factory=dict)


class _EventBase(_Strict):
    event_id: EventId
    occurred_at: AwareDatetime
    customer: Customer
    store_id: Text | None = None
    channel: Text | None = None

    @property
    def key(self) -> str:
        """The bus key: the buyer's strongest identifier, so one buyer's events stay ordered."""
        kind, value = self.customer.strongest()
        return f"{kind}:{value}"


class PurchaseEvent(_EventBase):
    type: Literal["purchase"]
    data: PurchaseData


class IdentifyEvent(_EventBase):
    type: Literal["identify"]
    data: IdentifyData = Field(default_factory=IdentifyData)


Event = Annotated[PurchaseEvent | IdentifyEvent, Field(discriminator="type")]


class EventBatch(_Strict):
    events: list[Event] = Field(min_length=1, max_length=1000)


event_adapter: TypeAdapter[PurchaseEvent | IdentifyEvent] = TypeAdapter(Event)


def parse_event(
    raw: bytes | str | dict[str, Any], *, default_region: str | None = None
) -> PurchaseEvent | IdentifyEvent:
    """Parse one event from JSON (as published on the bus) or from a dict.

    A phone without its country code is read as a number of ``default_region``
    (ISO 3166-1 alpha-2); with none, every phone must carry its country code, as
    the published events do.
    """
    if isinstance(raw, dict):
        return validate_event(raw, default_region=default_region)
    return event_adapter.validate_json(raw, context={_REGION_CONTEXT_KEY: default_region})


def read_published_event(raw: bytes) -> PurchaseEvent | IdentifyEvent:
    """An event as ingest published it: validated again, its identifiers taken as they are
    (ingest normalised them; normalising again costs the segmenter a fifth of its time)."""
    return event_adapter.validate_json(raw, context={_PUBLISHED_CONTEXT_KEY: True})


def validate_event(
    document: Any, *, default_region: str | None = None
) -> PurchaseEvent | IdentifyEvent:
    """Validate one event decoded from JSON, whatever it holds (as ingest reads a request).

    ``default_region`` as for :func:`parse_event`.
    """
    return event_adapter.validate_python(document, context={_REGION_CONTEXT_KEY: default_region})
