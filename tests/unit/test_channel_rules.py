"""The channel rules the dispatcher follows when it writes and delivers a message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.channels import (
    can_send_again,
    fallbacks_after,
    falls_back,
    receiving_address,
    tried_again_later,
)
from shared.domain.profile import Profile

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
ANNA = Profile(id="p-1", email="anna@example.com", phone="+79161234567")


def test_a_message_reaches_the_buyer_where_there_is_an_address_and_a_provider() -> None:
    everything = ("email", "sms", "push")
    assert receiving_address("email", ANNA, push_address=None, providers=everything) == (
        "anna@example.com"
    )
    assert receiving_address("sms", ANNA, push_address=None, providers=everything) == (
        "+79161234567"
    )
    assert receiving_address("push", ANNA, push_address="app-1", providers=everything) == "app-1"
    assert receiving_address("push", ANNA, push_address=None, providers=everything) is None
    # A shop with no SMS provider configured: the phone is no address for a message.
    assert receiving_address("sms", ANNA, push_address=None, providers=("email",)) is None
    no_phone = Profile(id="p-2", email="oleg@example.com")
    assert receiving_address("sms", no_phone, push_address=None, providers=everything) is None


def test_only_a_rejection_moves_the_message_on_and_only_while_a_fallback_is_left() -> None:
    assert falls_back("rejected", ("sms",))
    assert not falls_back("rejected", ())
    assert not falls_back("failed", ("sms",))  # down, not refused: tried again instead
    assert not falls_back("sent", ("sms",))


def test_the_fallbacks_left_are_those_after_the_channel_used() -> None:
    assert fallbacks_after(("email", "sms", "push"), "email") == ("sms", "push")
    assert fallbacks_after(("email", "sms", "push"), "sms") == ("push",)
    assert fallbacks_after(("email", "sms"), "sms") == ()


@pytest.mark.parametrize(
    ("channel", "again"), [("sms", "sms"), ("push", "push"), ("email", None), (None, None)]
)
def test_only_channels_with_an_idempotency_key_may_send_again(
    channel: str | None, again: str | None
) -> None:
    assert can_send_again(channel) == again


def test_a_message_whose_provider_was_down_is_tried_again_within_the_time_allowed() -> None:
    until = T0 + timedelta(hours=6)
    assert tried_again_later("failed", "sms", at=T0, until=until)
    assert tried_again_later("failed", "push", at=until, until=until)
    assert not tried_again_later("failed", "sms", at=until + timedelta(seconds=1), until=until)
    # An email may have gone before the failure: never again.
    assert not tried_again_later("failed", "email", at=T0, until=until)
    assert not tried_again_later("rejected", "sms", at=T0, until=until)
    assert not tried_again_later("sent", "sms", at=T0, until=until)
