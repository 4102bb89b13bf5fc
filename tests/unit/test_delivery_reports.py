"""A provider's delivery report becomes a ``message_*`` event about the buyer it went to."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.delivery import REGION_CONTEXT_KEY, DeliveryReport
from shared.domain.events import (
    MessageBouncedEvent,
    MessageClickedEvent,
    MessageOpenedEvent,
)

OPENED = {
    "message_key": "win-back-30d-0123456789abcdef",
    "status": "opened",
    "occurred_at": "2026-03-02T12:00:00+03:00",
    "recipient": "Anna@Shop.ru",
}


def report(**changes: Any) -> DeliveryReport:
    return DeliveryReport.model_validate({**OPENED, **changes}, context={REGION_CONTEXT_KEY: "RU"})


def test_an_opened_email_becomes_message_opened_for_the_address_it_went_to() -> None:
    event = report().event("mailer")

    assert isinstance(event, MessageOpenedEvent)
    assert event.customer.identifiers() == {"email": "anna@shop.ru"}
    assert event.data.channel == "email"
    assert event.data.message_key == OPENED["message_key"]
    assert event.occurred_at == report().occurred_at


def test_a_phone_recipient_is_an_sms_in_e164() -> None:
    event = report(recipient="8 (916) 123-45-67", status="delivered").event("sms-gate")

    assert event.type == "message_delivered"
    assert event.data.channel == "sms"
    assert event.customer.identifiers() == {"phone": "+79161234567"}


def test_a_push_report_names_the_app_install() -> None:
    event = report(recipient="app-7", channel="push").event("push-gate")
    assert event.customer.identifiers() == {"app_install_id": "app-7"}


def test_a_click_keeps_its_url_and_a_bounce_its_kind() -> None:
    click = report(status="clicked", url="https://shop.ru/cat-food").event("mailer")
    bounce = report(status="bounced", bounce="hard").event("mailer")

    assert isinstance(click, MessageClickedEvent)
    assert click.data.url == "https://shop.ru/cat-food"
    assert isinstance(bounce, MessageBouncedEvent)
    assert bounce.data.bounce == "hard"


def test_the_same_report_always_gets_the_same_event_id_whatever_its_offset() -> None:
    again = report(occurred_at="2026-03-02T09:00:00Z")

    assert report().event_id("mailer") == again.event_id("mailer")
    assert report().event_id("mailer") != report().event_id("other-provider")
    assert report().event_id("mailer") != report(status="delivered").event_id("mailer")
    assert len(report().event_id("mailer")) <= 100


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"status": "bounced"}, ()),
        ({"bounce": "hard"}, ()),
        ({"url": "https://shop.ru"}, ()),
        ({"status": "sent"}, ("status",)),
        ({"recipient": "not an address"}, ("recipient",)),
        ({"occurred_at": "2026-03-02T12:00:00"}, ("occurred_at",)),
        ({"channel": "fax"}, ("channel",)),
        ({"extra": 1}, ("extra",)),
    ],
)
def test_a_report_that_does_not_fit_is_refused_at_its_field(
    changes: dict[str, Any], where: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        report(**changes)
    assert where in [tuple(e["loc"]) for e in caught.value.errors()]
