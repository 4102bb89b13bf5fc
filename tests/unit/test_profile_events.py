"""What each event type of the v1 contract keeps on the buyer's profile, the fields it
reports as changed, and how the new facts merge when two profiles turn out to be one."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.events import AnyEvent
from shared.domain.profile import Engagement, Profile, Tally, absorb, apply_event
from tests.unit.builders import T0, event, identify, purchase

DAY = timedelta(days=1)
ANNA = {"id": "c-1", "email": "anna@shop.ru"}


def message(status: str, at: datetime = T0, *, channel: str = "email", **data: Any) -> AnyEvent:
    """A delivery report for a message sent to Anna's address."""
    return event(
        f"message_{status}",
        {"message_key": "win-back-30d-abc", "channel": channel, **data},
        at,
        customer={"email": "anna@shop.ru"},
    )


def anna() -> Profile:
    profile = Profile(id="p-1")
    apply_event(profile, identify(**ANNA))
    return profile


# --- refunds -------------------------------------------------------------------------


def test_a_partial_refund_lowers_net_revenue_and_leaves_the_orders_alone() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("1000.00", T0))

    changed = apply_event(profile, event("refund", {"order_id": "o-1", "amount": "250.50"}))

    assert profile.refunds_count == 1
    assert profile.refunds_total == Decimal("250.50")
    assert profile.net_revenue == Decimal("749.50")
    assert profile.orders_count == 1
    assert profile.revenue_total == Decimal("1000.00")
    assert profile.avg_check == Decimal("1000.00")
    assert changed == {"refunds_count", "refunds_total", "net_revenue"}


def test_a_whole_refund_with_its_items_brings_net_revenue_to_zero() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("499.90", T0))
    items = [{"sku": "cat-food-2kg", "quantity": 1, "price": "499.90"}]

    apply_event(profile, event("refund", {"order_id": "o-1", "amount": "499.90", "items": items}))

    assert profile.net_revenue == Decimal("0.00")
    assert profile.orders_count == 1


# --- identify: traits and consents ---------------------------------------------------


def test_identify_sets_traits_and_a_null_trait_removes_it() -> None:
    profile = Profile(id="p-1")
    traits = {"gender": "female", "has_kids": True, "kids": 2, "region": "CFD"}
    changed = apply_event(profile, event("identify", {"traits": traits}))
    assert profile.traits == traits
    assert changed == {"traits"}

    changed = apply_event(profile, event("identify", {"traits": {"region": None, "kids": 2}}))

    assert profile.traits == {"gender": "female", "has_kids": True, "kids": 2}
    assert changed == {"traits"}


def test_identify_repeating_what_is_known_changes_nothing() -> None:
    profile = Profile(id="p-1")
    data = {"traits": {"kids": 2}, "consents": {"email": True}}
    apply_event(profile, event("identify", data))

    assert apply_event(profile, event("identify", data)) == frozenset()
    assert apply_event(profile, event("identify", {"traits": {"absent": None}})) == frozenset()


def test_a_trait_of_another_type_is_a_change_even_when_python_calls_it_equal() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, event("identify", {"traits": {"newsletter": 1}}))

    changed = apply_event(profile, event("identify", {"traits": {"newsletter": True}}))

    assert profile.traits["newsletter"] is True
    assert changed == {"traits"}


def test_identify_gives_and_withdraws_consent_per_channel() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, event("identify", {"consents": {"email": True, "sms": True}}))

    changed = apply_event(profile, event("identify", {"consents": {"sms": False}}))

    assert profile.consents == {"email": True, "sms": False}
    assert changed == {"consents"}
    assert profile.barred_from("sms") == "unsubscribed"
    assert profile.barred_from("email") is None


def test_a_channel_never_mentioned_is_open() -> None:
    assert Profile(id="p-1").barred_from("push") is None


# --- track ---------------------------------------------------------------------------


def test_track_counts_each_named_event_and_keeps_the_last_time() -> None:
    profile = Profile(id="p-1")
    cart = {"name": "cart_updated", "properties": {"items": 3, "total": 1250.5}}
    apply_event(profile, event("track", cart, T0 + 2 * DAY))
    apply_event(profile, event("track", cart, T0))  # late: counts, the last time stays
    changed = apply_event(profile, event("track", {"name": "product_viewed"}, T0 + DAY))

    assert profile.tracked == {
        "cart_updated": Tally(count=2, last_at=T0 + 2 * DAY),
        "product_viewed": Tally(count=1, last_at=T0 + DAY),
    }
    assert changed == {"tracked", "tracked_days"}


# --- message engagement and suppression ----------------------------------------------


def test_opens_and_clicks_are_counted_per_channel_with_their_last_time() -> None:
    profile = anna()
    apply_event(profile, message("delivered"))
    apply_event(profile, message("opened", T0 + DAY))
    apply_event(profile, message("opened", T0 + 3 * DAY))
    apply_event(profile, message("clicked", T0 + 3 * DAY, url="https://shop.ru/cat-food"))
    changed = apply_event(profile, message("opened", T0 + 2 * DAY, channel="push"))

    assert profile.engagement == {
        "email": Engagement(
            delivered=1, opens=2, clicks=1, last_open_at=T0 + 3 * DAY, last_click_at=T0 + 3 * DAY
        ),
        "push": Engagement(opens=1, last_open_at=T0 + 2 * DAY),
    }
    assert changed == {"engagement", "open_hours"}
    assert profile.suppressions == {}


def test_a_delivery_report_never_changes_the_buyers_contacts() -> None:
    profile = Profile(id="p-1", email="new@shop.ru")

    apply_event(profile, message("opened"))  # about the old address anna@shop.ru

    assert profile.email == "new@shop.ru"


def test_a_hard_bounce_suppresses_the_channel_and_a_soft_one_does_not() -> None:
    profile = anna()
    changed = apply_event(profile, message("bounced", bounce="soft"))
    assert profile.suppressions == {}
    assert changed == {"engagement"}

    changed = apply_event(profile, message("bounced", T0 + DAY, bounce="hard"))

    assert profile.suppressions == {"email": "bounced"}
    assert profile.engagement["email"].bounces == 2
    assert changed == {"engagement", "suppressions"}
    assert profile.barred_from("email") == "suppressed"


def test_a_hard_bounce_of_an_address_the_buyer_left_suppresses_nothing() -> None:
    profile = Profile(id="p-1", email="new@shop.ru")

    apply_event(profile, message("bounced", bounce="hard"))

    assert profile.suppressions == {}


def test_a_new_address_lifts_a_bounce_but_never_a_complaint() -> None:
    profile = anna()
    apply_event(profile, message("bounced", bounce="hard"))

    changed = apply_event(profile, identify(id="c-1", email="anna.new@shop.ru"))

    assert profile.suppressions == {}
    assert changed == {"email", "suppressions"}

    apply_event(profile, message("complained", channel="email"))
    apply_event(profile, identify(id="c-1", email="anna.third@shop.ru"))
    assert profile.suppressions == {"email": "complained"}


def test_a_complaint_suppresses_and_outranks_a_later_bounce() -> None:
    profile = anna()
    changed = apply_event(profile, message("complained"))
    assert changed == {"engagement", "suppressions"}

    changed = apply_event(profile, message("bounced", bounce="hard"))

    assert profile.suppressions == {"email": "complained"}
    assert changed == {"engagement"}
    assert profile.engagement["email"].complaints == 1


# --- unsubscribed --------------------------------------------------------------------


def test_unsubscribing_withdraws_consent_for_that_channel_only() -> None:
    profile = anna()
    apply_event(profile, event("identify", {"consents": {"email": True, "sms": True}}))

    changed = apply_event(
        profile, event("unsubscribed", {"channel": "email", "campaign": "win-back-30d"})
    )

    assert profile.consents == {"email": False, "sms": True}
    assert changed == {"consents"}
    assert apply_event(profile, event("unsubscribed", {"channel": "email"})) == frozenset()


def test_consent_given_again_after_unsubscribing_counts() -> None:
    profile = anna()
    apply_event(profile, event("unsubscribed", {"channel": "email"}))

    apply_event(profile, event("identify", {"consents": {"email": True}}))

    assert profile.barred_from("email") is None


# --- merging two profiles of one buyer -----------------------------------------------


def _known() -> Profile:
    profile = Profile(id="known", email="anna@shop.ru")
    apply_event(profile, purchase("1000.00", T0))
    apply_event(profile, event("refund", {"order_id": "o-1", "amount": "100.00"}))
    apply_event(
        profile, event("identify", {"traits": {"region": "CFD"}, "consents": {"sms": True}})
    )
    apply_event(profile, event("track", {"name": "cart_updated"}, T0))
    apply_event(profile, message("opened", T0 + DAY))
    return profile


def _anonymous() -> Profile:
    profile = Profile(id="anonymous", phone="+79161234567")
    apply_event(profile, event("refund", {"order_id": "o-9", "amount": "50.00"}))
    apply_event(
        profile,
        event(
            "identify",
            {
                "traits": {"region": "NWFD", "has_pets": True},
                "consents": {"sms": False, "push": True},
            },
        ),
    )
    apply_event(profile, event("track", {"name": "cart_updated"}, T0 + 5 * DAY))
    apply_event(profile, event("track", {"name": "product_viewed"}, T0))
    apply_event(profile, message("opened", T0 + 4 * DAY))
    apply_event(profile, message("clicked", T0 + 4 * DAY))
    return profile


def test_absorbing_adds_refunds_custom_events_and_engagement() -> None:
    survivor, other = _known(), _anonymous()

    absorb(survivor, other)

    assert survivor.refunds_count == 2
    assert survivor.refunds_total == Decimal("150.00")
    assert survivor.net_revenue == Decimal("850.00")
    assert survivor.tracked == {
        "cart_updated": Tally(count=2, last_at=T0 + 5 * DAY),
        "product_viewed": Tally(count=1, last_at=T0),
    }
    assert survivor.engagement["email"] == Engagement(
        opens=2, clicks=1, last_open_at=T0 + 4 * DAY, last_click_at=T0 + 4 * DAY
    )


def test_absorbing_keeps_the_survivors_traits_and_consents_and_fills_in_the_rest() -> None:
    survivor, other = _known(), _anonymous()

    absorb(survivor, other)

    assert survivor.traits == {"region": "CFD", "has_pets": True}
    assert survivor.consents == {"sms": True, "push": True}


def test_absorbing_carries_a_complaint_and_a_bounce_of_the_address_kept() -> None:
    survivor = Profile(id="known", email="anna@shop.ru")
    other = Profile(
        id="anonymous",
        email="anna@shop.ru",
        phone="+79161234567",
        suppressions={"email": "bounced", "push": "complained"},
    )

    absorb(survivor, other)

    assert survivor.suppressions == {"email": "bounced", "push": "complained"}


def test_absorbing_drops_a_bounce_of_an_address_the_survivor_does_not_use() -> None:
    survivor = Profile(id="known", email="anna@shop.ru")
    other = Profile(id="anonymous", email="old@shop.ru", suppressions={"email": "bounced"})

    absorb(survivor, other)

    assert survivor.suppressions == {}


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("refund", {"order_id": "o-1", "amount": "10.00"}),
        ("track", {"name": "product_viewed"}),
        ("message_delivered", {"message_key": "m", "channel": "sms"}),
        ("unsubscribed", {"channel": "push"}),
    ],
)
def test_no_event_but_a_purchase_moves_the_order_stats(type_: str, data: dict[str, Any]) -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("300.00", T0))

    changed = apply_event(profile, event(type_, data, T0 + DAY))

    assert profile.orders_count == 1
    assert profile.last_order_at == T0
    assert not changed & {"orders_count", "revenue_total", "avg_check", "last_order_at"}
