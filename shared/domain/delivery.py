"""Delivery reports: what a provider says became of a message nudge sent.

A provider's delivery webhook posts ``{"events": [report, ...]}``; each report
becomes one ``message_<status>`` event about the buyer the message went to, found
by the recipient's address (an email, a phone, or for push an app install id).
The event id is derived from the provider, the message key, the status and the
moment, so a webhook the provider sends again is deduplicated downstream like
any retried event.
"""

from __future__ import annotations

import hashlib
from datetime import UTC
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.domain.events import (
    PLAUSIBLE_CONTEXT_KEY,
    Channel,
    MessageBouncedEvent,
    MessageClickedEvent,
    MessageComplainedEvent,
    MessageDeliveredEvent,
    MessageEvent,
    MessageKey,
    MessageOpenedEvent,
    Moment,
    Text,
)
from shared.domain.identifiers import normalise_identifier

__all__ = ["PLAUSIBLE_CONTEXT_KEY", "REGION_CONTEXT_KEY", "DeliveryReport", "DeliveryReports"]

REGION_CONTEXT_KEY = "default_region"
"""The validation context key naming the region of phones written without a country code."""

_RECIPIENT_KIND: dict[str, str] = {"email": "email", "sms": "phone", "push": "app_install_id"}

_EVENT_BY_STATUS: dict[
    str,
    type[MessageDeliveredEvent]
    | type[MessageOpenedEvent]
    | type[MessageClickedEvent]
    | type[MessageBouncedEvent]
    | type[MessageComplainedEvent],
] = {
    "delivered": MessageDeliveredEvent,
    "opened": MessageOpenedEvent,
    "clicked": MessageClickedEvent,
    "bounced": MessageBouncedEvent,
    "complained": MessageComplainedEvent,
}


class DeliveryReport(BaseModel):
    """One message's fate, as the provider reports it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_key: MessageKey
    status: Literal["delivered", "opened", "clicked", "bounced", "complained"]
    occurred_at: Moment
    """Within the :class:`~shared.domain.events.Plausible` bounds under
    :data:`PLAUSIBLE_CONTEXT_KEY`, as an event's."""
    channel: Channel | None = None
    """The channel the message went out on; by default email for an address with ``@``,
    else SMS."""
    recipient: Text
    """Where the message went: an email address, a phone, or (push) an app install id."""
    url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048)] | None = None
    """``clicked`` only: the link the buyer followed."""
    bounce: Literal["hard", "soft"] | None = None
    """``bounced`` only, and required there."""

    @field_validator("recipient")
    @classmethod
    def _normalised(cls, value: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel") or ("email" if "@" in value else "sms")
        context = info.context if isinstance(info.context, dict) else {}
        return normalise_identifier(
            _RECIPIENT_KIND[channel], value, default_region=context.get(REGION_CONTEXT_KEY)
        )

    @model_validator(mode="after")
    def _fits_the_status(self) -> DeliveryReport:
        if self.status == "bounced" and self.bounce is None:
            raise ValueError('a bounced report says its bounce: "hard" or "soft"')
        if self.status != "bounced" and self.bounce is not None:
            raise ValueError("only a bounced report has a bounce")
        if self.status != "clicked" and self.url is not None:
            raise ValueError("only a clicked report has a url")
        return self

    @property
    def delivery_channel(self) -> Channel:
        if self.channel is not None:
            return self.channel
        return "email" if "@" in self.recipient else "sms"

    def event_id(self, provider: str) -> str:
        """The same for the same report from the same provider, however often it comes."""
        moment = self.occurred_at.astimezone(UTC).isoformat()
        seed = "\n".join((provider, self.message_key, self.status, moment))
        return "delivery-" + hashlib.sha256(seed.encode()).hexdigest()[:40]

    def event(self, provider: str) -> MessageEvent:
        """The ``message_<status>`` event this report stands for."""
        channel = self.delivery_channel
        data: dict[str, Any] = {"message_key": self.message_key, "channel": channel}
        if self.url is not None:
            data["url"] = self.url
        if self.bounce is not None:
            data["bounce"] = self.bounce
        return _EVENT_BY_STATUS[self.status].model_validate(
            {
                "event_id": self.event_id(provider),
                "type": f"message_{self.status}",
                "occurred_at": self.occurred_at,
                "customer": {_RECIPIENT_KIND[channel]: self.recipient},
                "data": data,
            }
        )


class DeliveryReports(BaseModel):
    """A delivery webhook's body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: list[DeliveryReport] = Field(min_length=1, max_length=1000)
