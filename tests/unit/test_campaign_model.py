"""The campaign model: what a marketer writes, how it is refused, and the ready-made campaigns."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from shared.domain.campaigns import (
    BUILTIN_CAMPAIGNS,
    BUILTIN_PUSH_TEMPLATES,
    BUILTIN_SMS_TEMPLATES,
    BUILTIN_TEMPLATES,
    CampaignError,
    EventTrigger,
    Goal,
    MomentTrigger,
    SegmentTrigger,
    campaigns_over,
    campaigns_triggered_by,
    campaigns_triggered_by_event,
    format_duration,
    message_context,
    message_key,
    parse_campaign,
)
from shared.domain.profile import Profile, apply_event
from shared.domain.rendering import render_email, render_push, render_sms
from shared.domain.segments import BUILTIN_SEGMENTS, MembershipChange
from tests.unit.builders import T0, event, purchase

LINK = "https://shop.example/v1/unsubscribe/abc.def"
READY = {c.key: c for c in BUILTIN_CAMPAIGNS}
ALL_TEMPLATES = {
    "email": set(BUILTIN_TEMPLATES),
    "sms": set(BUILTIN_SMS_TEMPLATES),
    "push": set(BUILTIN_PUSH_TEMPLATES),
}


def cart_campaign() -> dict[str, Any]:
    """Every field a marketer can set, as the console API takes it."""
    return {
        "key": "big-cart",
        "name": "Big abandoned cart",
        "status": "active",
        "trigger": {
            "event": "track",
            "name": "cart_updated",
            "where": {"total": {"at_least": 5000}, "currency": "RUB"},
        },
        "delay": "2h",
        "audience": {"stat": "orders_count", "at_least": 1},
        "holdout": 0.2,
        "channels": ["push", "email"],
        "templates": {"email": "abandoned-cart-email", "push": "abandoned-cart-push"},
        "goal": {"event": "purchase", "within": "3d"},
        "priority": 90,
        "reentry": "once_per_occurrence",
        "active": {"from": "2024-05-01T00:00:00+03:00", "until": "2024-06-01T00:00:00+03:00"},
    }


def cart_updated(at: datetime = T0, **properties: Any) -> Any:
    return event(
        "track",
        {"name": "cart_updated", "properties": properties},
        at,
        event_id=f"cart-{at.isoformat()}",
    )


# --- reading and writing back ------------------------------------------------------------


def test_a_campaign_written_in_full_is_read_field_by_field() -> None:
    campaign = parse_campaign(cart_campaign())

    assert campaign.key == "big-cart"
    assert campaign.status == "active"
    assert isinstance(campaign.trigger, EventTrigger)
    assert campaign.trigger.name == "cart_updated"
    assert campaign.delay == timedelta(hours=2)
    assert campaign.holdout == 0.2
    assert campaign.channels == ("push", "email")
    assert campaign.templates == {"email": "abandoned-cart-email", "push": "abandoned-cart-push"}
    assert campaign.goal == Goal("purchase", timedelta(days=3))
    assert campaign.priority == 90
    assert campaign.active_from == datetime(2024, 4, 30, 21, tzinfo=UTC)
    assert campaign.channel == "push"


def test_a_campaign_round_trips_through_its_dict() -> None:
    written = cart_campaign()
    campaign = parse_campaign(written)

    assert campaign.to_dict() == written
    assert parse_campaign(campaign.to_dict()) == campaign


def test_a_campaign_saved_with_only_what_it_needs_is_a_draft_with_defaults() -> None:
    campaign = parse_campaign(
        {
            "key": "hello",
            "name": "Hello",
            "trigger": {"segment": "lifecycle-lead"},
            "channels": ["email"],
            "templates": {"email": "welcome-email"},
        }
    )

    assert campaign.status == "draft"
    assert campaign.trigger == SegmentTrigger("lifecycle-lead", "entered")
    assert campaign.delay == timedelta(0)
    assert campaign.holdout == 0.0
    assert campaign.goal == Goal("purchase", timedelta(days=14))
    assert campaign.reentry == "once_per_occurrence"
    assert campaign.audience is None
    assert parse_campaign(campaign.to_dict()) == campaign


def test_the_key_in_the_address_is_the_campaigns_key() -> None:
    document = cart_campaign()
    del document["key"]

    assert parse_campaign(document, key="from-url").key == "from-url"


def test_a_moment_trigger_writes_before_and_after_back() -> None:
    document = cart_campaign()
    document["trigger"] = {"moment": "expected_next_order_at", "before": "3d"}
    before = parse_campaign(document)
    document["trigger"] = {"moment": "last_order_at", "after": "36h"}
    after = parse_campaign(document)

    assert before.trigger == MomentTrigger("expected_next_order_at", -timedelta(days=3))
    assert after.trigger == MomentTrigger("last_order_at", timedelta(hours=36))
    assert after.to_dict()["trigger"] == {"moment": "last_order_at", "after": "36h"}


def test_durations_are_written_in_the_largest_exact_unit() -> None:
    assert format_duration(timedelta(days=14)) == "14d"
    assert format_duration(timedelta(hours=36)) == "36h"
    assert format_duration(timedelta(minutes=90)) == "90m"
    assert format_duration(timedelta(0)) == "0m"
    with pytest.raises(ValueError, match="whole"):
        format_duration(timedelta(seconds=30))


# --- refusals ------------------------------------------------------------------------------


def _with(path: str, value: Any) -> dict[str, Any]:
    """The full cart campaign with one field (a ``/``-separated path) replaced or removed."""
    document = cart_campaign()
    *parents, last = path.split("/")
    node = document
    for name in parents:
        node = node[name]
    if value is _REMOVE:
        del node[last]
    else:
        node[last] = value
    return document


_REMOVE = object()


@pytest.mark.parametrize(
    ("path", "value", "pointer", "message"),
    [
        ("key", "Big Cart!", "/key", "lower-case letters"),
        ("name", "  ", "/name", "non-empty text"),
        ("status", "live", "/status", "expected one of ['draft', 'active', 'paused']"),
        ("trigger", _REMOVE, "/trigger", "required"),
        ("trigger", {"when": "now"}, "/trigger", "expected one of: segment, event, moment"),
        ("trigger/event", "cart", "/trigger/event", "expected one of ['purchase'"),
        ("trigger/where/total", {"at_least": "lots"}, "/trigger/where/total/at_least", "number"),
        ("trigger/where/total", {"at_least": 9, "at_most": 1}, "/trigger/where/total", "above"),
        ("trigger/where/currency", {"in": ["RUB"]}, "/trigger/where/currency", "a value"),
        ("delay", "2 hours", "/delay", "expected a duration such as '30d'"),
        ("audience", {"stat": "avg_check", "between": [6000, 4000]}, "/audience/between", "low"),
        ("audience", {"all": []}, "/audience/all", "non-empty list"),
        ("holdout", 0.6, "/holdout", "from 0 to 0.5"),
        ("holdout", True, "/holdout", "from 0 to 0.5"),
        ("channels", ["email", "fax"], "/channels/1", "expected one of ['email', 'sms', 'push']"),
        ("channels", ["email", "email"], "/channels/1", "listed twice"),
        ("channels", ["email", "sms"], "/channels/1", "no template for 'sms'"),
        ("channels", [], "/channels", "'best' or a list"),
        ("templates", {"fax": "t"}, "/templates/fax", "expected a channel"),
        ("templates", {}, "/templates", "channel to template key"),
        ("goal", {"event": "refund", "within": "3d"}, "/goal/event", "expected one of"),
        ("goal", {"event": "track", "within": "3d"}, "/goal/name", "names its custom event"),
        ("goal/within", "0d", "/goal/within", "longer than zero"),
        ("priority", 1.5, "/priority", "whole number"),
        ("priority", 10**30, "/priority", "from 0 to 1000"),
        ("priority", -1, "/priority", "from 0 to 1000"),
        ("reentry", "always", "/reentry", "once_per_buyer"),
        ("active/from", "2024-05-01T00:00:00", "/active/from", "with its offset"),
        ("active/until", "2024-04-01T00:00:00+03:00", "/active/until", "after 'from'"),
        ("colour", "red", "/colour", "unexpected field"),
    ],
)
def test_a_bad_campaign_is_refused_at_the_field_that_is_wrong(
    path: str, value: Any, pointer: str, message: str
) -> None:
    with pytest.raises(CampaignError) as refused:
        parse_campaign(_with(path, value))

    assert refused.value.pointer == pointer
    assert message in refused.value.message
    assert str(refused.value).startswith(f"{pointer}: ")


def test_a_name_goes_with_track_events_only() -> None:
    document = cart_campaign()
    document["trigger"] = {"event": "purchase", "name": "cart_updated"}

    with pytest.raises(CampaignError) as refused:
        parse_campaign(document)

    assert refused.value.pointer == "/trigger/name"


def test_a_key_in_the_document_must_agree_with_the_address() -> None:
    with pytest.raises(CampaignError) as refused:
        parse_campaign(cart_campaign(), key="other")
    assert refused.value.pointer == "/key"


def test_unknown_segments_and_templates_are_refused_when_the_known_ones_are_given() -> None:
    document = cart_campaign()
    document["trigger"] = {"segment": "lifecycle-vip"}

    with pytest.raises(CampaignError) as segment:
        parse_campaign(document, segments={"lifecycle-lead"})
    with pytest.raises(CampaignError) as template:
        parse_campaign(cart_campaign(), templates={"email": {"abandoned-cart-email"}})

    assert (segment.value.pointer, segment.value.message) == (
        "/trigger/segment",
        "no segment 'lifecycle-vip'",
    )
    assert template.value.pointer == "/templates/push"


def test_a_document_that_is_not_an_object_is_refused_at_the_root() -> None:
    with pytest.raises(CampaignError) as refused:
        parse_campaign(["win-back"])
    assert refused.value.pointer == "/"


# --- the ready-made campaigns --------------------------------------------------------------


def test_every_ready_made_campaign_validates_against_the_builtin_segments_and_templates() -> None:
    segments = {s.key for s in BUILTIN_SEGMENTS}
    for campaign in BUILTIN_CAMPAIGNS:
        document = campaign.to_dict()
        assert parse_campaign(document, segments=segments, templates=ALL_TEMPLATES) == campaign


def test_win_back_stays_active_and_every_other_ready_made_campaign_starts_as_a_draft() -> None:
    assert {c.key: c.status for c in BUILTIN_CAMPAIGNS} == {
        "win-back-30d": "active",
        "welcome-lead": "draft",
        "second-order": "draft",
        "monthly-basket": "draft",
        "pre-churn-rescue": "draft",
        "abandoned-cart": "draft",
    }


def test_the_ready_made_campaigns_trigger_on_the_lifecycle_segments_and_the_cart() -> None:
    assert READY["welcome-lead"].trigger == SegmentTrigger("lifecycle-lead")
    assert READY["second-order"].trigger == SegmentTrigger("lifecycle-new")
    assert READY["second-order"].delay == timedelta(days=14)
    assert READY["second-order"].goal == Goal("purchase", timedelta(days=14))
    assert READY["pre-churn-rescue"].trigger == SegmentTrigger("lifecycle-pre-churn")
    assert READY["monthly-basket"].trigger == MomentTrigger(
        "expected_next_order_at", -timedelta(days=3)
    )
    assert READY["abandoned-cart"].trigger == EventTrigger("track", "cart_updated")
    assert READY["abandoned-cart"].delay == timedelta(hours=2)


def test_the_monthly_reminder_is_for_buyers_who_order_about_monthly() -> None:
    audience = READY["monthly-basket"].audience
    assert audience is not None
    monthly, weekly = Profile(id="monthly"), Profile(id="weekly")
    for i in range(4):
        apply_event(monthly, purchase("100.00", T0 + timedelta(days=30 * i), order_id=f"m{i}"))
        apply_event(weekly, purchase("100.00", T0 + timedelta(days=7 * i), order_id=f"w{i}"))
    now = T0 + timedelta(days=100)

    assert audience.holds(monthly, now)
    assert not audience.holds(weekly, now)


def test_every_template_a_ready_made_campaign_names_exists_and_renders() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("1499.90", T0))
    context = message_context(profile, unsubscribe_url=LINK, trigger={"total": 2990})
    for campaign in BUILTIN_CAMPAIGNS:
        for channel, key in campaign.templates.items():
            if channel == "email":
                email = render_email(BUILTIN_TEMPLATES[key], context)
                assert LINK in email.text
                assert f'href="{LINK}"' in email.html
            elif channel == "sms":
                sms = render_sms(BUILTIN_SMS_TEMPLATES[key], context)
                assert sms.length.encoding == "GSM-7"
                assert LINK in sms.text
            else:
                assert render_push(BUILTIN_PUSH_TEMPLATES[key], context).title


def test_the_abandoned_cart_email_names_the_cart_total_when_the_event_gave_it() -> None:
    template = BUILTIN_TEMPLATES["abandoned-cart-email"]
    with_total = message_context(Profile(id="p-1"), unsubscribe_url=LINK, trigger={"total": 2990})
    without = message_context(Profile(id="p-1"), unsubscribe_url=LINK)

    assert "waiting for you: 2990 in all." in render_email(template, with_total).text
    assert "waiting for you. Complete" in render_email(template, without).text


def test_templates_see_the_trigger_even_without_one() -> None:
    env = SandboxedEnvironment(undefined=StrictUndefined)
    context = message_context(Profile(id="p-1"), unsubscribe_url=LINK)

    assert env.from_string("{{ trigger | length }}").render(context) == "0"


# --- what starts a campaign ------------------------------------------------------------------


def _change(kind: str, segment: str, at: datetime = T0) -> MembershipChange:
    return MembershipChange(kind, segment, "p-1", at, "occ-1")  # type: ignore[arg-type]


def test_a_draft_campaign_is_not_triggered_until_it_is_switched_on() -> None:
    welcome = READY["welcome-lead"]
    entered = _change("entered", "lifecycle-lead")

    assert campaigns_triggered_by(BUILTIN_CAMPAIGNS, entered) == []
    assert campaigns_triggered_by([replace(welcome, status="active")], entered) == [
        replace(welcome, status="active")
    ]
    assert campaigns_triggered_by([replace(welcome, status="paused")], entered) == []


def test_a_campaign_is_triggered_only_inside_its_active_window() -> None:
    campaign = replace(
        READY["welcome-lead"],
        status="active",
        active_from=T0,
        active_until=T0 + timedelta(days=7),
    )

    def triggered(at: datetime) -> bool:
        return bool(campaigns_triggered_by([campaign], _change("entered", "lifecycle-lead", at)))

    assert not triggered(T0 - timedelta(minutes=1))
    assert triggered(T0)
    assert triggered(T0 + timedelta(days=7) - timedelta(minutes=1))
    assert not triggered(T0 + timedelta(days=7))


def test_an_event_trigger_matches_the_event_type_name_and_data() -> None:
    campaign = parse_campaign(cart_campaign())

    assert campaigns_triggered_by_event([campaign], cart_updated(total=5000, currency="RUB"))
    assert campaigns_triggered_by_event([campaign], cart_updated(total="7500.50", currency="RUB"))
    assert not campaigns_triggered_by_event([campaign], cart_updated(total=4999, currency="RUB"))
    assert not campaigns_triggered_by_event([campaign], cart_updated(total=6000, currency="EUR"))
    assert not campaigns_triggered_by_event([campaign], cart_updated(currency="RUB"))
    product_viewed = event("track", {"name": "product_viewed", "properties": {"total": 9000}})
    assert not campaigns_triggered_by_event([campaign], product_viewed)
    assert not campaigns_triggered_by_event([campaign], purchase("9000.00"))


def test_an_event_trigger_reads_a_purchase_s_data_and_store() -> None:
    document = cart_campaign()
    document["trigger"] = {"event": "purchase", "where": {"total": {"at_least": 1000}}}
    campaign = parse_campaign(document)
    document["trigger"] = {"event": "purchase", "where": {"store_id": ["s-1", "s-2"]}}
    in_store = parse_campaign(document)

    assert campaigns_triggered_by_event([campaign], purchase("1000.00"))
    assert not campaigns_triggered_by_event([campaign], purchase("999.99"))
    assert not campaigns_triggered_by_event([in_store], purchase("10.00"))


def test_an_event_filter_tells_true_from_one() -> None:
    document = cart_campaign()
    document["trigger"] = {"event": "track", "name": "cart_updated", "where": {"gift": True}}
    campaign = parse_campaign(document)

    assert campaigns_triggered_by_event([campaign], cart_updated(gift=True))
    assert not campaigns_triggered_by_event([campaign], cart_updated(gift=1))


def test_a_moment_trigger_fires_three_days_before_the_expected_next_order() -> None:
    trigger = READY["monthly-basket"].trigger
    assert isinstance(trigger, MomentTrigger)
    profile = Profile(id="p-1")
    apply_event(profile, purchase("100.00", T0, order_id="o-1"))

    assert trigger.fires_at(profile) is None  # one order is no rhythm
    apply_event(profile, purchase("100.00", T0 + timedelta(days=30), order_id="o-2"))

    assert trigger.fires_at(profile) == T0 + timedelta(days=57)
    assert trigger.occurrence_id(profile) == (
        f"expected_next_order_at@{(T0 + timedelta(days=60)).isoformat()}"
    )


def test_a_once_per_buyer_campaign_keys_every_occurrence_alike() -> None:
    welcome, cart = READY["welcome-lead"], READY["abandoned-cart"]

    assert welcome.occurrence("occ-1") == welcome.occurrence("occ-2")
    assert message_key(welcome.key, "p-1", welcome.occurrence("occ-1")) == message_key(
        welcome.key, "p-1", welcome.occurrence("occ-2")
    )
    assert cart.occurrence("evt-1") != cart.occurrence("evt-2")


def test_the_document_given_is_not_changed_by_parsing_or_later_edits() -> None:
    document = cart_campaign()
    kept = copy.deepcopy(document)
    campaign = parse_campaign(document)
    document["audience"]["at_least"] = 5

    assert campaign.to_dict()["audience"] == kept["audience"]


def test_a_template_of_another_channel_is_refused_at_its_channel() -> None:
    document = cart_campaign()
    document["templates"] = {**document["templates"], "email": "abandoned-cart-sms"}
    with pytest.raises(CampaignError) as refused:
        parse_campaign(document, templates=ALL_TEMPLATES)
    assert refused.value.pointer == "/templates/email"
    assert "no email template 'abandoned-cart-sms'" in refused.value.message


def test_stored_campaigns_replace_the_built_ins_of_their_key_with_their_stored_status() -> None:
    builtin = {c.key: c for c in BUILTIN_CAMPAIGNS}
    second = builtin["second-order"].to_dict()
    broken = {**cart_campaign(), "templates": {"email": "gone-email"}}
    found, refused = campaigns_over(
        BUILTIN_CAMPAIGNS,
        [("second-order", second, "active"), (broken["key"], broken, "active")],
        templates=ALL_TEMPLATES,
    )
    assert found["second-order"].status == "active"
    assert builtin["second-order"].status == "draft"
    assert found["win-back-30d"] is builtin["win-back-30d"]
    assert set(found) == set(builtin)
    assert refused[broken["key"]].pointer == "/templates/email"
