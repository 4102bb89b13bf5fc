"""The events shops send to nudge: the public v1 contract, as pydantic models.

Ingest validates incoming JSON against these models and publishes the validated
event, as JSON, to the events topic; the segmenter parses the same models back.
Money is always :class:`~decimal.Decimal` with at most two decimals, and every
timestamp carries its UTC offset. A customer's identifiers are normalised as they
are validated (:mod:`shared.domain.identifiers`): phones in E.164, emails
lower-cased; a phone written without its country code is read in the default
region given to :func:`parse_event` (ingest passes ``NUDGE_DEFAULT_REGION``).

Only plausible input passes, so that whatever ingest accepts every store can hold and
the segmenter can apply: no control character in an id, a key or a name (none at
all) nor in free text (tab, line feed and carriage return aside), no lone surrogate,
integers within 64 bits, finite numbers, and moments within the bounds ingest gives
(:class:`Plausible`: by default from 1990 to one day ahead of its clock).

The types (``type``, the discriminator): ``purchase`` and ``refund`` (money in and
back out), ``identify`` (who the buyer is: identifiers, traits, consents),
``track`` (a named custom event with scalar properties: cart updated, product
viewed), the ``message_*`` family (``delivered``, ``opened``, ``clicked``,
``bounced``, ``complained``: what became of a message nudge sent, as the
provider's delivery webhook reports it) and ``unsubscribed`` (the buyer withdrew
consent for a channel, e.g. through the one-click link of an email). An event's
top-level ``channel`` is the sales channel it came through (web, pos, app); the
channel a message went out on is ``data.channel``.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from shared.domain.identifiers import normalise_identifier

__all__ = [
    "CHANNELS",
    "EARLIEST_OCCURRED_AT",
    "EVENT_TYPES",
    "IDENTIFIER_STRENGTH",
    "PLAUSIBLE_CONTEXT_KEY",
    "AnyEvent",
    "BounceData",
    "Channel",
    "ClickData",
    "Customer",
    "Event",
    "EventBatch",
    "IdentifyData",
    "IdentifyEvent",
    "Item",
    "MessageBouncedEvent",
    "MessageClickedEvent",
    "MessageComplainedEvent",
    "MessageData",
    "MessageDeliveredEvent",
    "MessageEvent",
    "MessageKey",
    "MessageOpenedEvent",
    "Moment",
    "Money",
    "Plausible",
    "Prose",
    "PurchaseData",
    "PurchaseEvent",
    "RefundData",
    "RefundEvent",
    "Scalar",
    "Text",
    "TrackData",
    "TrackEvent",
    "UnsubscribeData",
    "UnsubscribedEvent",
    "event_adapter",
    "parse_event",
    "read_published_event",
    "validate_event",
]

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
"""An amount in the shop's currency: never negative, at most two decimals."""

PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]
"""An amount that must be more than zero: a refund of nothing is no refund."""

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""What an id, a key or a name may not hold: any control character (Unicode ``Cc``: C0,
DEL, C1) and any surrogate (a lone one cannot be written as UTF-8, nor stored)."""

_CONTROL_IN_PROSE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
"""What free text may not hold: the same, but tab, line feed and carriage return."""


def _refusal(found: re.Match[str], what: str) -> ValueError:
    return ValueError(f"holds U+{ord(found.group()):04X} at character {found.start()}; {what}")


# The two checks below run for nearly every string of every event, on ingest's and on the
# segmenter's hot path: one Python call each when the text is clean.


def _no_control(value: str) -> str:
    found = _CONTROL.search(value)
    if found is not None:
        raise _refusal(found, "no control character is accepted in an id, key or name")
    return value


def _no_control_in_prose(value: str) -> str:
    found = _CONTROL_IN_PROSE.search(value)
    if found is not None:
        raise _refusal(
            found,
            "no control character but tab, line feed and carriage return is accepted in a text",
        )
    return value


_UP_TO_200 = StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
_UP_TO_100 = StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
_NO_CONTROL = AfterValidator(_no_control)

Text = Annotated[str, _UP_TO_200, _NO_CONTROL]
"""An id, a code or an identifier (an order id, a SKU, a store): no control character."""
Prose = Annotated[str, _UP_TO_200, AfterValidator(_no_control_in_prose)]
"""Free text (an item's name or category): tabs and line breaks are kept."""
EventId = Annotated[str, _UP_TO_100, _NO_CONTROL]
Name = Annotated[str, _UP_TO_100, _NO_CONTROL]
MessageKey = Annotated[str, _UP_TO_100, _NO_CONTROL]
"""The key of a message nudge sent (at most 100 characters, as nudge makes them)."""
Url = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048), _NO_CONTROL]

_INT64 = (-(2**63), 2**63 - 1)
"""The integers every store holds as numbers (a JSON value read as a 64-bit integer)."""


def _scalar(value: Any) -> str | int | float | bool | None:
    if isinstance(value, str):
        if len(value) > 1000:
            raise ValueError("a text of at most 1000 characters")
        return _no_control_in_prose(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a finite number")
    if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
        raise ValueError("an integer of at most 64 bits (-2**63 to 2**63 - 1)")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError("expected a string, a number, true, false or null")


Scalar = Annotated[
    str | int | float | bool | None,
    PlainValidator(_scalar),
    WithJsonSchema({"type": ["string", "number", "boolean", "null"], "maxLength": 1000}),
]
"""A trait's or a property's value, as a segment rule can compare it: one error for
anything else (a list, an object), not one per kind it is not."""

Channel = Literal["email", "sms", "push"]
CHANNELS: tuple[Channel, ...] = ("email", "sms", "push")
"""The channels nudge reaches a buyer on."""

IDENTIFIER_STRENGTH: tuple[str, ...] = (
    "profile_id",
    "id",
    "loyalty_card",
    "phone",
    "email",
    "app_install_id",
    "bank_card_token",
)
"""Identifier kinds, strongest first: the strongest one present keys the buyer's events.

``profile_id`` is nudge's own id of a buyer (a UUID, as carried by an unsubscribe
link); every profile is known by it, and it follows merges like any identifier.
"""

EARLIEST_OCCURRED_AT = datetime(1990, 1, 1, tzinfo=UTC)
"""The earliest moment an event may have occurred by default (``NUDGE_OCCURRED_AT_EARLIEST``)."""

_HEADROOM = timedelta(days=3660)
"""How far from the ends of :class:`datetime` a moment must lie whatever the bounds: the
segmenter adds and subtracts days, years even, and converts to every time zone."""

_HOLDABLE = (
    datetime.min.replace(tzinfo=UTC) + 2 * _HEADROOM,
    datetime.max.replace(tzinfo=UTC) - 2 * _HEADROOM,
)
"""Moments well within the headroom, compared without arithmetic that could overflow
(nearly every one): only a moment outside them is checked the long way."""


@dataclass(frozen=True)
class Plausible:
    """The moments an event may have occurred at, as ingest sees them: from ``earliest``
    to ``max_future`` ahead of ``now`` (its clock), both ends included."""

    earliest: datetime
    now: datetime
    max_future: timedelta

    @property
    def latest(self) -> datetime:
        return self.now + self.max_future


PLAUSIBLE_CONTEXT_KEY = "plausible"
"""The validation context key holding the :class:`Plausible` bounds of every moment."""


def _plausible_moment(value: datetime, info: ValidationInfo) -> datetime:
    if not _HOLDABLE[0] <= value <= _HOLDABLE[1]:
        try:
            (value.astimezone(UTC) - _HEADROOM) + 2 * _HEADROOM
        except OverflowError:
            raise ValueError("a moment nudge can hold and count from: years 11 to 9989") from None
    context = info.context if isinstance(info.context, dict) else {}
    bounds = context.get(PLAUSIBLE_CONTEXT_KEY)
    if isinstance(bounds, Plausible):
        if value < bounds.earliest:
            raise ValueError(f"earlier than {bounds.earliest.isoformat()}, the earliest accepted")
        if value > bounds.latest:
            raise ValueError(
                f"later than {bounds.latest.isoformat()}: at most {_span(bounds.max_future)} "
                "ahead of nudge's clock"
            )
    return value


def _span(delta: timedelta) -> str:
    if delta % timedelta(days=1) == timedelta(0):
        days = delta // timedelta(days=1)
        return f"{days} day" + ("" if days == 1 else "s")
    return f"{delta.total_seconds():g} seconds"


Moment = Annotated[AwareDatetime, AfterValidator(_plausible_moment)]
"""A moment with its UTC offset, within the :class:`Plausible` bounds of the validation."""


_REGION_CONTEXT_KEY = "default_region"
"""The validation context key naming the region of phones written without a country code."""


_PUBLISHED_CONTEXT_KEY = "published"
"""Set when reading an event back from the bus: its identifiers are normalised already."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_IDENTIFIERS_OF = attrgetter(*IDENTIFIER_STRENGTH)
"""A customer's identifiers, strongest first, ``None`` for each it lacks."""

_NORMALISED_KINDS = ("profile_id", "phone", "email")
"""The identifiers whose spelling :func:`normalise_identifier` changes beyond what the
type already did (strip the white space around it): the others need no Python call."""


class Customer(_Strict):
    """Who the event is about: at least one identifier."""

    profile_id: Text | None = None
    id: Text | None = None
    loyalty_card: Text | None = None
    phone: Text | None = None
    email: Text | None = None
    bank_card_token: Text | None = None
    app_install_id: Text | None = None

    @field_validator(*_NORMALISED_KINDS)
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
        if _IDENTIFIERS_OF(self).count(None) == len(IDENTIFIER_STRENGTH):
            raise ValueError(
                "a customer needs at least one identifier: " + ", ".join(IDENTIFIER_STRENGTH)
            )
        return self

    def identifiers(self) -> dict[str, str]:
        """The identifiers present, strongest first."""
        return {
            kind: value
            for kind, value in zip(IDENTIFIER_STRENGTH, _IDENTIFIERS_OF(self), strict=True)
            if value is not None
        }

    def strongest(self) -> tuple[str, str]:
        """The strongest identifier, as ``(kind, value)`` (every event's bus key: on the
        hot path, so without building :meth:`identifiers`)."""
        for kind in IDENTIFIER_STRENGTH:
            value = getattr(self, kind)
            if value is not None:
                return kind, value
        raise ValueError("a customer needs at least one identifier")  # refused at validation


class Item(_Strict):
    sku: Text
    name: Prose | None = None
    category: Prose | None = None
    quantity: int = Field(default=1, ge=1, le=100_000)
    price: Money


PromoCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]{1,64}$")
]
"""A promo code as a checkout took it: 1 to 64 letters, digits, ``-`` or ``_``."""


class PurchaseData(_Strict):
    order_id: Text
    total: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "RUB"
    items: list[Item] = Field(default_factory=list, max_length=500)
    promo_codes: list[PromoCode] = Field(default_factory=list, max_length=20)
    """The promo codes the order was placed with: nudge counts each one it issued as
    redeemed (docs/offers.md)."""


class RefundData(_Strict):
    """Money given back for an order: all of it (a whole refund) or part of it."""

    order_id: Text
    amount: PositiveMoney
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "RUB"
    items: list[Item] = Field(default_factory=list, max_length=500)
    """What came back, when the shop says; a refund without items is still a refund."""


def _sorted_keys(members: dict[str, Any]) -> dict[str, Any]:
    """``members`` in the order of their keys: an event's JSON (as ingest publishes it)
    is then the same bytes whatever order the sender wrote them in, so that its content
    digest is a hash of those bytes (:mod:`shared.domain.event_content`)."""
    return dict(sorted(members.items()))


class IdentifyData(_Strict):
    traits: Annotated[dict[Name, Scalar], AfterValidator(_sorted_keys)] = Field(
        default_factory=dict, max_length=200
    )
    """Traits to set on the buyer (``gender``, ``region``, ``has_kids``); ``null`` removes one."""
    consents: Annotated[dict[Channel, bool], AfterValidator(_sorted_keys)] = Field(
        default_factory=dict
    )
    """Consent given (``true``) or withdrawn (``false``) per channel."""


class TrackData(_Strict):
    """A named custom event: ``cart_updated``, ``product_viewed``, ..."""

    name: Name
    properties: Annotated[dict[Name, Scalar], AfterValidator(_sorted_keys)] = Field(
        default_factory=dict, max_length=100
    )


class MessageData(_Strict):
    """Which message a delivery report is about: its key and the channel it went out on."""

    message_key: MessageKey
    channel: Channel


class ClickData(MessageData):
    url: Url | None = None
    """The link the buyer followed, when the provider says."""


class BounceData(MessageData):
    bounce: Literal["hard", "soft"]
    """``hard``: the address does not exist (never send there again); ``soft``: try later."""


class UnsubscribeData(_Strict):
    channel: Channel
    campaign: Text | None = None
    """The campaign whose message carried the unsubscribe link, when there was one."""


class _EventBase(_Strict):
    event_id: EventId
    occurred_at: Moment
    customer: Customer
    store_id: Text | None = None
    channel: Text | None = None
    tenant: SkipJsonSchema[Text | None] = None
    """Whose ids ``event_id`` is among: the store of a store-bound API key, ``None`` for
    the shop-wide keys and nudge's own events. Ingest sets it; a sender may not."""

    @field_validator("tenant")
    @classmethod
    def _set_by_ingest(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not (info.context or {}).get(_PUBLISHED_CONTEXT_KEY):
            raise ValueError("nudge sets this field; do not send it")
        return value

    @property
    def dedupe_id(self) -> str:
        """What names the event for good downstream (applied once, triggers once): its
        ``event_id`` as sent, unless a store-bound key sent it; then a digest of its
        tenant and ``event_id``, so that two stores may use one id for two events."""
        if self.tenant is None:
            return self.event_id
        named = f"{self.tenant}\x00{self.event_id}".encode()
        return "~" + hashlib.blake2b(named, digest_size=16).hexdigest()

    @property
    def key(self) -> str:
        """The bus key: the buyer's strongest identifier, so one buyer's events stay ordered."""
        kind, value = self.customer.strongest()
        return f"{kind}:{value}"


class PurchaseEvent(_EventBase):
    type: Literal["purchase"]
    data: PurchaseData


class RefundEvent(_EventBase):
    type: Literal["refund"]
    data: RefundData


class IdentifyEvent(_EventBase):
    type: Literal["identify"]
    data: IdentifyData = Field(default_factory=IdentifyData)


class TrackEvent(_EventBase):
    type: Literal["track"]
    data: TrackData


class MessageDeliveredEvent(_EventBase):
    type: Literal["message_delivered"]
    data: MessageData


class MessageOpenedEvent(_EventBase):
    type: Literal["message_opened"]
    data: MessageData


class MessageClickedEvent(_EventBase):
    type: Literal["message_clicked"]
    data: ClickData


class MessageBouncedEvent(_EventBase):
    type: Literal["message_bounced"]
    data: BounceData


class MessageComplainedEvent(_EventBase):
    """The buyer marked the message as spam."""

    type: Literal["message_complained"]
    data: MessageData


class UnsubscribedEvent(_EventBase):
    type: Literal["unsubscribed"]
    data: UnsubscribeData


MessageEvent = (
    MessageDeliveredEvent
    | MessageOpenedEvent
    | MessageClickedEvent
    | MessageBouncedEvent
    | MessageComplainedEvent
)
"""What became of a message nudge sent, as its provider reports it."""

AnyEvent = (
    PurchaseEvent | RefundEvent | IdentifyEvent | TrackEvent | MessageEvent | UnsubscribedEvent
)
"""Any event of the v1 contract, once validated."""

EVENT_TYPES: tuple[str, ...] = tuple(
    get_args(model.model_fields["type"].annotation)[0] for model in get_args(AnyEvent)
)
"""Every value ``type`` may take, in the order of the contract."""

Event = Annotated[AnyEvent, Field(discriminator="type")]


class EventBatch(_Strict):
    events: list[Event] = Field(min_length=1, max_length=1000)


event_adapter: TypeAdapter[AnyEvent] = TypeAdapter(Event)


def parse_event(
    raw: bytes | str | dict[str, Any], *, default_region: str | None = None
) -> AnyEvent:
    """Parse one event from JSON (as published on the bus) or from a dict.

    A phone without its country code is read as a number of ``default_region``
    (ISO 3166-1 alpha-2); with none, every phone must carry its country code, as
    the published events do.
    """
    if isinstance(raw, dict):
        return validate_event(raw, default_region=default_region)
    return event_adapter.validate_json(raw, context={_REGION_CONTEXT_KEY: default_region})


def read_published_event(raw: bytes) -> AnyEvent:
    """An event as ingest published it: validated again, its identifiers taken as they are
    (ingest normalised them; normalising again costs the segmenter a fifth of its time)."""
    return event_adapter.validate_json(raw, context={_PUBLISHED_CONTEXT_KEY: True})


def validate_event(
    document: Any, *, default_region: str | None = None, plausible: Plausible | None = None
) -> AnyEvent:
    """Validate one event decoded from JSON, whatever it holds (as ingest reads a request).

    ``default_region`` as for :func:`parse_event`; with ``plausible``, an event that
    occurred outside its bounds is refused at ``occurred_at``.
    """
    return event_adapter.validate_python(
        document, context={_REGION_CONTEXT_KEY: default_region, PLAUSIBLE_CONTEXT_KEY: plausible}
    )
