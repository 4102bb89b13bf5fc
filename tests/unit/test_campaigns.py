"""Trigger campaigns: which segment change sends which message, and that message's identity."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain.campaigns import (
    BUILTIN_CAMPAIGNS,
    BUILTIN_TEMPLATES,
    Campaign,
    SegmentTrigger,
    campaigns_triggered_by,
    message_context,
    message_key,
)
from shared.domain.events import AnyEvent, parse_event
from shared.domain.profile import Profile, apply_event
from shared.domain.rendering import render_email
from shared.domain.segments import BUILTIN_SEGMENTS, MembershipChange, occurrence_id, reevaluate
from tests.unit.builders import T0, purchase

NO_ORDER_ONLY = tuple(s for s in BUILTIN_SEGMENTS if s.key == "no-order-30d")

OCCURRENCE = "0b5c6a53-6d5f-5c36-9a0c-3f7e0a6a1d10"
WIN_BACK = BUILTIN_CAMPAIGNS[0]
LINK = "https://shop.example/v1/unsubscribe/abc.def"


def change(kind: str = "entered", segment: str = "no-order-30d") -> MembershipChange:
    return MembershipChange(
        kind,  # type: ignore[arg-type]
        segment,
        "p-1",
        T0,
        occurrence_id(segment, "p-1", T0),
    )


# --- message keys --------------------------------------------------------------------


def test_message_key_is_stable_across_releases() -> None:
    # Keys are unique in the message table: if this changes, a restart after an
    # upgrade would send every pending message a second time.
    assert message_key("win-back-30d", "p-1", OCCURRENCE) == (
        "win-back-30d-56977ef8b7a41fa3aae9da0e35a63549"
    )


def test_message_key_is_the_same_for_the_same_campaign_buyer_and_occurrence() -> None:
    assert message_key("win-back-30d", "p-1", OCCURRENCE) == message_key(
        "win-back-30d", "p-1", OCCURRENCE
    )


@pytest.mark.parametrize(
    "other",
    [
        ("welcome", "p-1", OCCURRENCE),
        ("win-back-30d", "p-2", OCCURRENCE),
        ("win-back-30d", "p-1", "1b5c6a53-6d5f-5c36-9a0c-3f7e0a6a1d10"),
    ],
    ids=["other-campaign", "other-buyer", "other-occurrence"],
)
def test_message_key_differs_per_campaign_buyer_and_occurrence(
    other: tuple[str, str, str],
) -> None:
    assert message_key(*other) != message_key("win-back-30d", "p-1", OCCURRENCE)


def test_message_key_starts_with_the_campaign_so_an_operator_can_read_it() -> None:
    key = message_key("win-back-30d", "p-1", OCCURRENCE)
    assert key.startswith("win-back-30d-")
    assert len(key) == len("win-back-30d-") + 32


def test_buyer_who_lapses_twice_gets_two_distinct_win_back_messages() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("100.00", T0))
    (first,) = reevaluate(profile, NO_ORDER_ONLY, {}, T0 + timedelta(days=30), None).changes
    came_back = T0 + timedelta(days=40)
    apply_event(profile, purchase("100.00", came_back, order_id="o-2"))
    (second,) = reevaluate(profile, NO_ORDER_ONLY, {}, came_back + timedelta(days=30), None).changes

    keys = {message_key(WIN_BACK.key, profile.id, c.occurrence_id) for c in (first, second)}

    assert len(keys) == 2


# --- which campaigns a change triggers -----------------------------------------------


def test_win_back_campaign_is_triggered_when_a_buyer_enters_no_order_segment() -> None:
    assert campaigns_triggered_by(BUILTIN_CAMPAIGNS, change("entered")) == [WIN_BACK]


def test_win_back_campaign_is_not_triggered_when_the_buyer_leaves() -> None:
    assert campaigns_triggered_by(BUILTIN_CAMPAIGNS, change("exited")) == []


def test_change_in_another_segment_triggers_nothing() -> None:
    assert campaigns_triggered_by(BUILTIN_CAMPAIGNS, change("entered", "active-7d")) == []


def test_every_campaign_on_the_segment_and_kind_is_triggered_in_order() -> None:
    welcome_back = Campaign(
        "welcome-back",
        "Thanks for coming back",
        SegmentTrigger("no-order-30d", "exited"),
        {"email": "t"},
    )
    survey = Campaign("survey", "Why did you go?", SegmentTrigger("no-order-30d"), {"email": "t"})
    campaigns = [*BUILTIN_CAMPAIGNS, welcome_back, survey]

    assert campaigns_triggered_by(campaigns, change("entered")) == [WIN_BACK, survey]
    assert campaigns_triggered_by(campaigns, change("exited")) == [welcome_back]


def test_segment_trigger_fires_on_entry_unless_told_otherwise() -> None:
    assert SegmentTrigger("no-order-30d").on == "entered"


def test_builtin_win_back_campaign_has_its_template() -> None:
    assert WIN_BACK.trigger == SegmentTrigger("no-order-30d", "entered")
    assert WIN_BACK.templates["email"] in BUILTIN_TEMPLATES
    assert WIN_BACK.channel == "email"


# --- what the message says -----------------------------------------------------------


def test_win_back_email_names_the_day_of_the_last_order() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("1499.90", T0))

    email = render_email(
        BUILTIN_TEMPLATES[WIN_BACK.templates["email"]],
        message_context(profile, unsubscribe_url=LINK),
    )

    assert email.subject == "We miss you: 10% off your next order"
    assert "since your last order on 01 May." in email.text
    assert "<b>COMEBACK10</b>" in email.html
    assert "COMEBACK10" in email.text


def test_win_back_email_carries_the_unsubscribe_link_in_both_parts() -> None:
    email = render_email(
        BUILTIN_TEMPLATES[WIN_BACK.templates["email"]],
        message_context(Profile(id="p-1"), unsubscribe_url=LINK),
    )
    assert f'<a href="{LINK}">Unsubscribe</a>' in email.html
    assert f"Unsubscribe from these emails: {LINK}" in email.text


def test_win_back_email_renders_for_a_buyer_without_orders() -> None:
    email = render_email(
        BUILTIN_TEMPLATES[WIN_BACK.templates["email"]],
        message_context(Profile(id="p-1"), unsubscribe_url=LINK),
    )
    assert "since your last order. Here is 10% off" in email.text


def test_message_context_shows_the_buyer_stats() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("100.00", T0))
    apply_event(profile, purchase("201.00", T0 + timedelta(days=3), order_id="o-2"))

    customer = message_context(profile, unsubscribe_url=LINK)["customer"]

    assert customer["orders_count"] == 2
    assert str(customer["revenue_total"]) == "301.00"
    assert str(customer["avg_check"]) == "150.50"
    assert customer["first_order_at"] == T0
    assert customer["last_order_at"] == T0 + timedelta(days=3)


def _order(n: int, items: dict[str, int]) -> AnyEvent:
    return parse_event(
        {
            "event_id": f"o-{n}",
            "type": "purchase",
            "occurred_at": (T0 + timedelta(days=30 * n)).isoformat(),
            "customer": {"id": "monthly-mum"},
            "data": {
                "order_id": f"o-{n}",
                "total": "100.00",
                "currency": "RUB",
                "items": [
                    {"sku": sku, "category": sku.split("-")[0], "quantity": q, "price": "10.00"}
                    for sku, q in items.items()
                ],
            },
        }
    )


def test_a_template_sees_the_standard_basket_the_rhythm_and_the_offer() -> None:
    profile = Profile(id="monthly-mum")
    for n, items in enumerate(
        [{"food-cat": 2, "toy-ball": 1}, {"food-cat": 2}, {"food-cat": 3, "sand-box": 1}]
    ):
        apply_event(profile, _order(n, items))
    context = message_context(profile, unsubscribe_url="https://shop/u")
    assert context["basket"] == [{"sku": "food-cat", "quantity": 2}]
    assert context["offer"] == {"sku": "food-cat", "category": "food"}
    assert context["customer"]["median_days_between_orders"] == 30
    assert context["customer"]["expected_next_order_at"] == T0 + timedelta(days=90)

    rendered = render_email(BUILTIN_TEMPLATES["monthly-basket-email"], context)
    assert "food-cat x 2" in rendered.text
    assert "food-cat &times; 2" in rendered.html
