"""Sending decisions, one step at a time: who gets nothing and why, when, and on which channel."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from shared.domain.campaigns import Campaign, MomentTrigger, parse_campaign
from shared.domain.channels import (
    BetaPrior,
    ChannelEconomics,
    ChannelEvidence,
    choose_channel,
    evidence_from,
    reachable_channels,
)
from shared.domain.decisions import (
    FrequencyCaps,
    QuietHours,
    Reason,
    ScheduledSend,
    SendingPolicy,
    SentMessage,
    SunsetPolicy,
    best_hour,
    check_at_wake,
    decide,
    holdout_draw,
    in_holdout,
    schedule,
)
from shared.domain.profile import Engagement, Profile, apply_event
from shared.domain.segments import occurrence_id
from tests.unit.builders import T0, purchase

NO_QUIET = SendingPolicy(quiet_hours=None)


def campaign(**changes: Any) -> Campaign:
    document: dict[str, Any] = {
        "key": "welcome-lead",
        "name": "Welcome",
        "status": "active",
        "trigger": {"segment": "lifecycle-lead"},
        "channels": ["email"],
        "templates": {"email": "welcome-email", "sms": "welcome-sms", "push": "welcome-push"},
        "priority": 50,
    }
    document.update(changes)
    return parse_campaign(document)


def buyer(profile_id: str = "p-2", **fields: Any) -> Profile:
    """A buyer outside the welcome campaign's holdout, with an email address."""
    return Profile(id=profile_id, email=fields.pop("email", "anna@example.com"), **fields)


def sent(hours_ago: float, campaign_key: str = "other", priority: int = 50) -> SentMessage:
    return SentMessage(campaign_key, priority, T0 - timedelta(hours=hours_ago), "email")


def planned(hours_ahead: float, priority: int, key: str = "planned-1") -> ScheduledSend:
    return ScheduledSend(
        key, "other", "p-2", "occ", T0, T0 + timedelta(hours=hours_ahead), priority=priority
    )


def rng() -> random.Random:
    return random.Random(20240501)


# --- the plain case ------------------------------------------------------------------------


def test_a_reachable_buyer_at_noon_is_sent_at_once_on_the_campaigns_channel() -> None:
    decision = decide(campaign(), buyer(), T0, rng=rng())

    assert decision.action == "send_now"
    assert decision.at == T0
    assert decision.channel == "email"
    assert decision.reason.code == "send_now"
    assert [r.step for r in decision.trail] == ["channel"]


# --- campaign and audience -----------------------------------------------------------------


def test_a_paused_campaign_sends_nothing_and_says_so() -> None:
    decision = decide(campaign(status="paused"), buyer(), T0, rng=rng())

    assert (decision.action, decision.reason.code) == ("skip", "campaign_not_live")


def test_a_buyer_outside_the_audience_gets_nothing() -> None:
    decision = decide(
        campaign(audience={"stat": "orders_count", "at_least": 1}), buyer(), T0, rng=rng()
    )

    assert decision.reason.code == "not_in_audience"


# --- consent and suppression ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "code"),
    [
        (buyer(consents={"email": False}), "unsubscribed"),
        (buyer(suppressions={"email": "bounced"}), "suppressed"),
        (buyer(suppressions={"email": "complained"}), "suppressed"),
        (buyer(email=None), "no_address"),
    ],
    ids=["unsubscribed", "bounced", "complained", "no-email"],
)
def test_a_buyer_who_cannot_be_reached_gets_nothing_with_the_reason(
    profile: Profile, code: str
) -> None:
    decision = decide(campaign(), profile, T0, rng=rng())

    assert (decision.action, decision.reason.step, decision.reason.code) == (
        "skip",
        "consent",
        code,
    )


def test_when_the_channels_disagree_on_why_the_buyer_is_unreachable_it_says_so() -> None:
    profile = buyer(consents={"email": False})

    decision = decide(campaign(channels=["email", "sms"]), profile, T0, rng=rng())

    assert decision.reason.code == "unreachable"
    assert "email: unsubscribed" in decision.reason.detail
    assert "sms: no_address" in decision.reason.detail


def test_an_unsubscribed_email_falls_back_to_the_next_channel_in_order() -> None:
    profile = buyer(phone="+79161234567", consents={"email": False})

    decision = decide(campaign(channels=["email", "sms", "push"]), profile, T0, rng=rng())

    assert (decision.action, decision.channel, decision.fallbacks) == ("send_now", "sms", ())


def test_the_channels_after_the_first_are_the_fallbacks_in_order() -> None:
    profile = buyer(phone="+79161234567")

    decision = decide(
        campaign(channels=["push", "email", "sms"]), profile, T0, rng=rng(), push_address="app-1"
    )

    assert (decision.channel, decision.fallbacks) == ("push", ("email", "sms"))


def test_push_is_reachable_only_with_an_app_install() -> None:
    reachable, barred = reachable_channels(buyer(), ["push", "email"])

    assert reachable == ["email"]
    assert barred == {"push": "no_address"}


# --- holdout -------------------------------------------------------------------------------


def test_the_holdout_draw_is_fixed_by_campaign_and_buyer_across_processes() -> None:
    # A hash, not Python's salted hash(): a restart must not move buyers between arms.
    assert holdout_draw("win-back-30d", "p-1") == pytest.approx(0.36341263993125067)
    assert holdout_draw("win-back-30d", "p-1") == holdout_draw("win-back-30d", "p-1")
    assert holdout_draw("welcome-lead", "p-1") != holdout_draw("win-back-30d", "p-1")


def test_a_held_out_buyer_gets_nothing_every_time() -> None:
    held_out = buyer("p-1")  # its draw for welcome-lead is 0.084
    welcome = campaign(holdout=0.1)

    decisions = [decide(welcome, held_out, T0 + timedelta(days=d), rng=rng()) for d in range(3)]

    assert {(d.action, d.reason.code) for d in decisions} == {("skip", "holdout")}
    assert decide(welcome, buyer("p-2"), T0, rng=rng()).action == "send_now"


def test_the_holdout_takes_about_its_share_of_ten_thousand_buyers() -> None:
    held = sum(in_holdout("welcome-lead", f"buyer-{i}", 0.1) for i in range(10_000))

    assert 900 <= held <= 1100  # 0.1 of 10 000, within about three standard deviations


def test_no_holdout_holds_nobody_out() -> None:
    assert not any(in_holdout("welcome-lead", f"buyer-{i}", 0.0) for i in range(1000))


# --- frequency caps ------------------------------------------------------------------------


def test_a_third_message_in_a_day_waits_until_the_first_is_a_day_old() -> None:
    decision = decide(campaign(), buyer(), T0, rng=rng(), policy=NO_QUIET, sent=[sent(10), sent(2)])

    assert decision.action == "send_at"
    assert decision.at == T0 + timedelta(hours=14)
    assert decision.reason.code == "capped_deferred"


def test_a_message_over_the_weekly_cap_for_longer_than_a_day_is_dropped() -> None:
    week = [sent(24 * d) for d in (1, 2, 3, 4)]  # 4 a week, the oldest frees room in 3 days

    decision = decide(campaign(), buyer(), T0, rng=rng(), policy=NO_QUIET, sent=week)

    assert (decision.action, decision.reason.code) == ("skip", "capped")


def test_the_same_campaign_goes_to_a_buyer_at_most_once_a_week() -> None:
    before = [sent(24 * 3, "welcome-lead")]
    week_ago = [sent(24 * 7, "welcome-lead")]

    assert decide(campaign(), buyer(), T0, rng=rng(), policy=NO_QUIET, sent=before).reason.code == (
        "capped"
    )
    assert decide(campaign(), buyer(), T0, rng=rng(), policy=NO_QUIET, sent=week_ago).action == (
        "send_now"
    )


def test_a_scheduled_higher_priority_message_keeps_its_place_under_the_cap() -> None:
    low = campaign(priority=10)
    vip = planned(3, priority=90)

    decision = decide(low, buyer(), T0, rng=rng(), policy=NO_QUIET, sent=[sent(1)], scheduled=[vip])

    # Two a day: the one sent an hour ago and the one reserved in three hours fill today;
    # room opens when the one sent is a day old (no 24 hours then hold all three).
    assert decision.action == "send_at"
    assert decision.at == T0 + timedelta(hours=23)
    assert decide(low, buyer(), T0, rng=rng(), policy=NO_QUIET, sent=[sent(1)]).action == (
        "send_now"
    )


def test_a_higher_priority_message_does_not_wait_for_a_scheduled_lower_priority_one() -> None:
    high = campaign(priority=90)
    routine = planned(3, priority=10)

    decision = decide(
        high, buyer(), T0, rng=rng(), policy=NO_QUIET, sent=[sent(1)], scheduled=[routine]
    )

    assert decision.action == "send_now"


def test_the_message_being_decided_does_not_reserve_room_against_itself() -> None:
    itself = planned(0, priority=90, key="the-message")
    high = campaign(priority=50)
    policy = replace(NO_QUIET, caps=FrequencyCaps(per_day=1))

    assert decide(high, buyer(), T0, rng=rng(), policy=policy, scheduled=[itself]).action == (
        "send_at"
    )
    decision = decide(
        high, buyer(), T0, rng=rng(), policy=policy, scheduled=[itself], key="the-message"
    )
    assert decision.action == "send_now"


def test_a_deferred_message_is_let_through_when_its_moment_comes() -> None:
    history = [sent(10), sent(2)]
    first = decide(campaign(), buyer(), T0, rng=rng(), policy=NO_QUIET, sent=history)
    assert first.at is not None

    again = decide(campaign(), buyer(), first.at, rng=rng(), policy=NO_QUIET, sent=history)

    assert again.action == "send_now"


# --- sunset --------------------------------------------------------------------------------


def _unanswered(count: int) -> list[SentMessage]:
    """``count`` messages, one every eight days back from yesterday: no cap applies."""
    return [sent(24 + 24 * 8 * i) for i in range(count)]


def test_a_buyer_who_stopped_responding_gets_only_high_priority_messages() -> None:
    history = _unanswered(6)

    routine = decide(campaign(priority=30), buyer(), T0, rng=rng(), sent=history)
    rescue = decide(campaign(priority=70), buyer(), T0, rng=rng(), sent=history)

    assert (routine.action, routine.reason.code) == ("skip", "sunset_reduced")
    assert rescue.action == "send_now"


def test_a_buyer_who_ignored_a_dozen_messages_gets_none() -> None:
    decision = decide(campaign(priority=100), buyer(), T0, rng=rng(), sent=_unanswered(12))

    assert (decision.action, decision.reason.code) == ("skip", "sunset")


def test_an_open_or_an_order_after_the_messages_brings_the_buyer_back() -> None:
    opened = buyer(engagement={"email": Engagement(last_open_at=T0 - timedelta(hours=2))})
    ordered = buyer()
    apply_event(ordered, purchase("100.00", T0 - timedelta(hours=3)))
    policy = SendingPolicy(sunset=SunsetPolicy(reduce_after=1, stop_after=2))

    for profile in (opened, ordered):
        decision = decide(campaign(), profile, T0, rng=rng(), policy=policy, sent=_unanswered(12))
        assert decision.action == "send_now"


# --- quiet hours ---------------------------------------------------------------------------


def berliner() -> Profile:
    return buyer(traits={"timezone": "Europe/Berlin"})


def test_a_send_in_the_night_waits_for_the_morning_across_the_spring_clock_change() -> None:
    # Sunday 31 March 2024 Berlin moves from CET (+1) to CEST (+2) at 02:00.
    saturday_night = datetime(2024, 3, 30, 22, tzinfo=UTC)  # 23:00 CET

    decision = decide(campaign(), berliner(), saturday_night, rng=rng())

    assert decision.action == "send_at"
    assert decision.reason.code == "quiet_hours"
    assert decision.at == datetime(2024, 3, 31, 7, tzinfo=UTC)  # 09:00 CEST, not 08:00 UTC


def test_a_send_in_the_night_waits_for_the_morning_across_the_autumn_clock_change() -> None:
    # Sunday 27 October 2024 Berlin moves from CEST (+2) back to CET (+1) at 03:00.
    midnight = datetime(2024, 10, 26, 22, tzinfo=UTC)  # 00:00 CEST

    decision = decide(campaign(), berliner(), midnight, rng=rng())

    assert decision.at == datetime(2024, 10, 27, 8, tzinfo=UTC)  # 09:00 CET


def test_quiet_hours_follow_each_buyers_own_clock() -> None:
    evening_utc = datetime(2024, 5, 1, 19, 30, tzinfo=UTC)
    moscow = buyer(traits={"timezone": "Europe/Moscow"})  # 22:30 there
    new_york = buyer(traits={"timezone": "America/New_York"})  # 15:30 there

    assert decide(campaign(), moscow, evening_utc, rng=rng()).at == datetime(
        2024, 5, 2, 6, tzinfo=UTC
    )
    assert decide(campaign(), new_york, evening_utc, rng=rng()).action == "send_now"


def test_a_send_after_midnight_waits_for_the_same_mornings_end_of_quiet() -> None:
    three_am_berlin = datetime(2024, 5, 1, 1, tzinfo=UTC)

    assert decide(campaign(), berliner(), three_am_berlin, rng=rng()).at == datetime(
        2024, 5, 1, 7, tzinfo=UTC
    )


def test_a_buyer_without_a_valid_time_zone_is_in_the_shops() -> None:
    lost = buyer(traits={"timezone": "Mars/Olympus"})
    policy = SendingPolicy(default_timezone="Europe/Moscow")
    evening_utc = datetime(2024, 5, 1, 19, 30, tzinfo=UTC)

    decision = decide(campaign(), lost, evening_utc, rng=rng(), policy=policy)

    assert decision.at == datetime(2024, 5, 2, 6, tzinfo=UTC)


def test_quiet_hours_within_one_day_and_none_at_all() -> None:
    early = QuietHours(time(0), time(7))

    assert early.contains(time(3))
    assert not early.contains(time(7))
    assert not QuietHours(time(9), time(9)).contains(time(3))


# --- best hour -----------------------------------------------------------------------------


def hours(**counts: int) -> list[int]:
    histogram = [0] * 24
    for hour, count in counts.items():
        histogram[int(hour.removeprefix("h"))] = count
    return histogram


def test_the_send_moves_to_the_hour_the_buyer_opens_emails() -> None:
    own = hours(h19=6, h20=2, h8=1)

    decision = decide(campaign(), berliner(), T0, rng=rng(), open_hours=own)  # 14:00 in Berlin

    assert decision.action == "send_at"
    assert decision.reason.code == "best_hour"
    assert decision.at == datetime(2024, 5, 1, 17, tzinfo=UTC)  # 19:00 CEST


def test_with_few_opens_of_their_own_the_buyer_gets_similar_buyers_best_hour() -> None:
    own = hours(h19=3)  # fewer than 5 opens
    base = hours(h16=300, h17=200, h10=100)

    decision = decide(campaign(), berliner(), T0, rng=rng(), open_hours=own, base_open_hours=base)

    assert decision.at == datetime(2024, 5, 1, 14, tzinfo=UTC)  # 16:00 CEST
    assert "similar buyers" in decision.reason.detail


def test_with_no_open_history_anywhere_the_send_is_not_moved() -> None:
    decision = decide(campaign(), berliner(), T0, rng=rng(), open_hours=hours(h19=2))

    assert decision.action == "send_now"
    assert best_hour(None, None) is None
    assert best_hour(hours(h19=2), hours()) is None


def test_the_best_hour_is_read_with_its_neighbours_not_from_one_stray_open() -> None:
    # One open at 06:00, but the buyer reads in the evening, spread over 20-22.
    assert best_hour(hours(h6=3, h20=2, h21=2, h22=2)) == (21, "own")


def test_a_best_hour_inside_quiet_hours_or_too_far_ahead_is_ignored() -> None:
    late = hours(h23=10)
    morning = hours(h10=10)
    noon_berlin = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)  # 12:30 CEST: next 10:00 is 21h away

    assert decide(campaign(), berliner(), T0, rng=rng(), open_hours=late).action == "send_now"
    assert (
        decide(campaign(), berliner(), noon_berlin, rng=rng(), open_hours=morning).action
        == "send_now"
    )


def test_a_send_already_in_the_best_hour_goes_now() -> None:
    decision = decide(campaign(), berliner(), T0, rng=rng(), open_hours=hours(h14=9))

    assert decision.action == "send_now"


def test_a_night_send_waits_for_the_morning_then_for_the_best_hour() -> None:
    night = datetime(2024, 5, 1, 22, tzinfo=UTC)  # 00:00 CEST

    decision = decide(campaign(), berliner(), night, rng=rng(), open_hours=hours(h11=9))

    assert decision.at == datetime(2024, 5, 2, 9, tzinfo=UTC)  # 11:00 CEST
    assert [r.code for r in decision.trail] == ["quiet_hours", "best_hour", "order"]


# --- best channel --------------------------------------------------------------------------


EVERYWHERE = ("email", "sms", "push")


def _choices(
    evidence: dict[str, ChannelEvidence], economics: ChannelEconomics, draws: int = 2000
) -> Counter[str]:
    generator = rng()
    return Counter(
        choose_channel(
            EVERYWHERE, best=True, evidence=evidence, economics=economics, rng=generator
        ).channel
        for _ in range(draws)
    )


def test_the_channel_the_buyer_responds_on_wins_once_the_evidence_is_clear() -> None:
    evidence = {
        "email": ChannelEvidence(sent=60, responses=0),
        "sms": ChannelEvidence(sent=60, responses=18),
        "push": ChannelEvidence(sent=60, responses=1),
    }

    chosen = _choices(evidence, ChannelEconomics())

    assert chosen["sms"] >= 0.95 * 2000


def test_an_sms_must_earn_its_cost_where_email_is_as_good() -> None:
    flat = {c: BetaPrior.from_rate(0.05) for c in EVERYWHERE}
    evidence = {c: ChannelEvidence(sent=100, responses=5) for c in EVERYWHERE}
    free = ChannelEconomics(costs=dict.fromkeys(EVERYWHERE, 0.0), priors=flat)
    sms_costs = ChannelEconomics(costs={"email": 0.1, "sms": 3.5, "push": 0.02}, priors=flat)

    assert _choices(evidence, free)["sms"] > 400  # about a third when it costs nothing
    assert _choices(evidence, sms_costs)["sms"] < 40  # rarely when it costs 3.5 a message


def test_a_buyer_without_history_follows_similar_buyers() -> None:
    prefer_push = ChannelEconomics(
        costs=dict.fromkeys(EVERYWHERE, 0.0),
        priors={
            "email": BetaPrior.from_rate(0.02, 200),
            "sms": BetaPrior.from_rate(0.02, 200),
            "push": BetaPrior.from_rate(0.15, 200),
        },
    )

    assert _choices({}, prefer_push)["push"] >= 0.95 * 2000


def test_sampling_keeps_trying_every_reachable_channel_while_data_is_thin() -> None:
    evidence = {"email": ChannelEvidence(sent=3, responses=1)}
    economics = ChannelEconomics(costs={"email": 0.1, "sms": 1.0, "push": 0.02})

    chosen = _choices(evidence, economics)

    assert set(chosen) == set(EVERYWHERE)
    assert min(chosen.values()) >= 0.03 * 2000


def test_the_fallbacks_are_the_other_reachable_channels_best_first() -> None:
    evidence = {
        "email": ChannelEvidence(sent=100, responses=1),
        "sms": ChannelEvidence(sent=100, responses=30),
        "push": ChannelEvidence(sent=100, responses=10),
    }
    free = ChannelEconomics(costs=dict.fromkeys(EVERYWHERE, 0.0))

    choice = choose_channel(EVERYWHERE, best=True, evidence=evidence, economics=free, rng=rng())

    assert (choice.channel, choice.fallbacks) == ("sms", ("push", "email"))
    assert set(choice.scores) == set(EVERYWHERE)


def test_best_chooses_only_among_channels_with_address_and_consent() -> None:
    profile = buyer(phone="+79161234567", consents={"sms": False})
    best = campaign(channels="best")

    decisions = [decide(best, profile, T0, rng=random.Random(i)) for i in range(50)]

    assert {d.channel for d in decisions} == {"email"}
    assert {d.fallbacks for d in decisions} == {()}


def test_a_best_campaign_reads_the_buyers_responses_from_the_profile() -> None:
    profile = buyer(
        phone="+79161234567",
        engagement={
            "email": Engagement(delivered=80, opens=30, clicks=0),
            "sms": Engagement(delivered=80, clicks=30),
            "push": Engagement(delivered=10, opens=4),
        },
    )

    assert evidence_from(profile) == {
        "email": ChannelEvidence(80, 0),
        "sms": ChannelEvidence(80, 30),
        "push": ChannelEvidence(10, 4),
    }
    decision = decide(campaign(channels="best"), profile, T0, rng=rng())
    assert (decision.channel, decision.fallbacks) == ("sms", ("email",))


# --- scheduled sends -----------------------------------------------------------------------


def code(reason: Reason | None) -> str | None:
    return reason.code if reason is not None else None


def cart() -> Campaign:
    return campaign(
        key="abandoned-cart",
        trigger={"event": "track", "name": "cart_updated"},
        delay="2h",
        channels=["email"],
        goal={"event": "purchase", "within": "3d"},
    )


def test_a_trigger_schedules_its_message_after_the_campaigns_delay() -> None:
    send = schedule(cart(), "p-2", "evt-cart-1", T0)

    assert send.due_at == T0 + timedelta(hours=2)
    assert send.key.startswith("abandoned-cart-")
    assert send == schedule(cart(), "p-2", "evt-cart-1", T0)
    assert send.key != schedule(cart(), "p-2", "evt-cart-2", T0).key
    assert send.deferred_to(T0 + timedelta(hours=5)).key == send.key


def test_a_cart_message_is_dropped_when_the_buyer_ordered_before_it_was_due() -> None:
    send = schedule(cart(), "p-2", "evt-cart-1", T0)
    profile = buyer()
    apply_event(profile, purchase("100.00", T0 + timedelta(minutes=40)))

    assert code(check_at_wake(send, cart(), profile, set(), send.due_at)) == "converted"


def test_an_order_before_the_cart_changed_does_not_cancel_the_reminder() -> None:
    send = schedule(cart(), "p-2", "evt-cart-1", T0)
    profile = buyer()
    apply_event(profile, purchase("100.00", T0 - timedelta(days=3)))

    assert check_at_wake(send, cart(), profile, set(), send.due_at) is None


def test_a_delayed_message_is_dropped_when_the_buyer_left_the_segment() -> None:
    second = campaign(key="second-order", trigger={"segment": "lifecycle-new"}, delay="14d")
    entered = occurrence_id("lifecycle-new", "p-2", T0)
    send = schedule(second, "p-2", entered, T0)

    left = check_at_wake(send, second, buyer(), {"lifecycle-repeat"}, send.due_at)
    stayed = check_at_wake(send, second, buyer(), {"lifecycle-new"}, send.due_at)

    assert code(left) == "left_segment"
    assert stayed is None


def test_a_delayed_message_is_dropped_when_the_buyer_left_the_audience_or_it_was_paused() -> None:
    audience = {"stat": "orders_count", "eq": 0}
    welcome = campaign(audience=audience)
    send = schedule(welcome, "p-2", "occ-1", T0)
    ordered = buyer()
    apply_event(ordered, purchase("100.00", T0 - timedelta(days=1)))

    out = check_at_wake(send, welcome, ordered, {"lifecycle-lead"}, send.due_at)
    paused = check_at_wake(
        send, replace(welcome, status="paused"), buyer(), {"lifecycle-lead"}, send.due_at
    )

    assert code(out) == "not_in_audience"
    assert code(paused) == "campaign_not_live"


def test_a_reminder_whose_expected_order_moved_is_dropped() -> None:
    monthly = campaign(
        key="monthly-basket", trigger={"moment": "expected_next_order_at", "before": "3d"}
    )
    profile = buyer()
    apply_event(profile, purchase("100.00", T0, order_id="o-1"))
    apply_event(profile, purchase("100.00", T0 + timedelta(days=30), order_id="o-2"))
    trigger = monthly.trigger
    assert isinstance(trigger, MomentTrigger)
    occurrence = trigger.occurrence_id(profile)
    fires = trigger.fires_at(profile)
    assert occurrence is not None
    assert fires == T0 + timedelta(days=57)
    send = schedule(monthly, profile.id, occurrence, fires)

    assert check_at_wake(send, monthly, profile, set(), send.due_at) is None
    # An order on day 50, before the reminder was due: the next one is expected later.
    apply_event(profile, purchase("100.00", T0 + timedelta(days=50), order_id="o-3"))
    assert code(check_at_wake(send, monthly, profile, set(), send.due_at)) == "moment_moved"


@pytest.mark.parametrize(
    ("now", "open_hours"),
    [
        (datetime(2024, 3, 30, 22, tzinfo=UTC), None),  # quiet hours, across the clock change
        (T0, hours(h19=6)),  # the best hour
        (datetime(2024, 5, 1, 22, tzinfo=UTC), hours(h11=9)),  # both
    ],
    ids=["quiet-hours", "best-hour", "both"],
)
def test_a_moved_send_goes_out_when_its_moment_comes(
    now: datetime, open_hours: list[int] | None
) -> None:
    first = decide(campaign(), berliner(), now, rng=rng(), open_hours=open_hours)
    assert first.action == "send_at"
    assert first.at is not None

    again = decide(campaign(), berliner(), first.at, rng=rng(), open_hours=open_hours)

    assert again.action == "send_now"
