"""Lifecycle stages: exactly one per buyer at a moment, and when time alone moves it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from shared.domain.lifecycle import (
    DEFAULT_POLICY,
    LIFECYCLE_READS,
    STAGES,
    LifecyclePolicy,
    next_stage_change,
    stage,
)
from shared.domain.profile import Profile, apply_event
from shared.domain.rules import LifecycleIs, RuleError, parse_rule
from shared.domain.segments import (
    BUILTIN_SEGMENTS,
    Segment,
    lifecycle_segments,
    link_segments,
    reevaluate,
)
from tests.unit.builders import T0, identify, purchase

DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


def buyer(*days: float, totals: str = "100.00", p_alive: float | None = None) -> Profile:
    """A buyer who ordered on these days after T0."""
    profile = Profile(id="p-1", p_alive=p_alive)
    for number, day in enumerate(days):
        apply_event(profile, purchase(totals, T0 + day * DAY, order_id=f"o-{number}"))
    return profile


# --- each stage ----------------------------------------------------------------------


def test_an_identified_buyer_without_orders_is_a_lead_for_good() -> None:
    lead = Profile(id="p-1")
    apply_event(lead, identify(T0, email="lead@shop.ru"))

    assert stage(lead, T0) == "lead"
    assert stage(lead, T0 + 1000 * DAY) == "lead"
    assert next_stage_change(lead, T0) is None


def test_one_order_makes_a_new_buyer_who_churns_after_180_days() -> None:
    new = buyer(0)

    assert stage(new, T0) == "new"
    assert next_stage_change(new, T0) == T0 + 180 * DAY
    assert stage(new, T0 + 180 * DAY - TICK) == "new"
    assert stage(new, T0 + 180 * DAY) == "churned"


def test_a_second_order_makes_a_repeat_buyer_who_is_due_within_their_rhythm() -> None:
    repeat = buyer(0, 30)
    now = T0 + 31 * DAY

    assert stage(repeat, now) == "repeat"
    # 1.5 x the 30-day median after the last order: day 30 + 45.
    assert next_stage_change(repeat, now) == T0 + 75 * DAY


def test_four_orders_make_a_loyal_buyer() -> None:
    assert stage(buyer(0, 5, 40, 41), T0 + 42 * DAY) == "loyal"


def test_three_evenly_spaced_orders_make_a_loyal_buyer_and_uneven_ones_a_repeat() -> None:
    assert stage(buyer(0, 30, 61), T0 + 62 * DAY) == "loyal"  # gaps 30, 31
    assert stage(buyer(0, 5, 65), T0 + 66 * DAY) == "repeat"  # gaps 5, 60: irregular


def test_a_high_average_check_makes_a_loyal_buyer_when_the_policy_says_so() -> None:
    big = buyer(0, 9, totals="6000.00")
    policy = LifecyclePolicy(loyal_avg_check=Decimal("5000"))

    assert stage(big, T0 + 10 * DAY) == "repeat"  # off by default
    assert stage(big, T0 + 10 * DAY, policy) == "loyal"


def test_a_buyer_overdue_against_their_rhythm_is_pre_churn_then_churned() -> None:
    monthly = buyer(0, 30, 60, 90)  # loyal until overdue
    overdue_at = T0 + (90 + 45) * DAY

    assert stage(monthly, overdue_at - TICK) == "loyal"
    assert next_stage_change(monthly, T0 + 91 * DAY) == overdue_at
    assert stage(monthly, overdue_at) == "pre-churn"
    assert next_stage_change(monthly, overdue_at) == T0 + (90 + 180) * DAY
    assert stage(monthly, T0 + 270 * DAY) == "churned"
    assert next_stage_change(monthly, T0 + 270 * DAY) is None


def test_a_fading_probability_of_being_alive_is_pre_churn() -> None:
    assert stage(buyer(0, p_alive=0.29), T0 + DAY) == "pre-churn"
    assert stage(buyer(0, p_alive=0.3), T0 + DAY) == "new"


def test_churned_outranks_pre_churn() -> None:
    assert stage(buyer(0, 10, p_alive=0.01), T0 + 190 * DAY) == "churned"


def test_the_overdue_factor_and_churn_period_are_the_policys() -> None:
    policy = LifecyclePolicy(overdue_factor=2.0, churned_after=timedelta(days=90))
    weekly = buyer(0, 7)

    assert next_stage_change(weekly, T0 + 8 * DAY, policy) == T0 + 21 * DAY
    assert stage(weekly, T0 + 97 * DAY, policy) == "churned"


def test_two_orders_at_one_moment_are_no_rhythm_to_be_overdue_against() -> None:
    twice = buyer(0, 0)
    assert stage(twice, T0 + DAY) == "repeat"
    assert next_stage_change(twice, T0 + DAY) == T0 + 180 * DAY


@pytest.mark.parametrize("days_after", [0, 1, 44, 45, 46, 179, 180, 400])
def test_the_next_stage_change_is_exactly_when_the_stage_changes(days_after: int) -> None:
    profile = buyer(0, 30)
    now = T0 + (30 + days_after) * DAY
    flip = next_stage_change(profile, now)
    if flip is None:
        assert stage(profile, now + 10_000 * DAY) == stage(profile, now)
        return
    assert flip > now
    assert stage(profile, flip - TICK) == stage(profile, now)
    assert stage(profile, flip) != stage(profile, now)


# --- as a rule and as built-in segments ----------------------------------------------


def test_lifecycle_condition_reads_what_the_stage_depends_on_and_flips_with_it() -> None:
    rule = parse_rule({"lifecycle": "pre-churn"})
    profile = buyer(0, 30)

    assert rule == LifecycleIs("pre-churn", DEFAULT_POLICY)
    assert rule.reads == LIFECYCLE_READS
    assert {"orders_count", "order_moments", "p_alive"} <= rule.reads
    assert rule.holds(profile, T0 + 74 * DAY) is False
    assert rule.next_change(profile, T0 + 74 * DAY) == T0 + 75 * DAY
    assert rule.holds(profile, T0 + 75 * DAY) is True


def test_lifecycle_thresholds_come_from_the_policy_given_to_the_parser() -> None:
    policy = LifecyclePolicy(loyal_orders=2)
    assert parse_rule({"lifecycle": "loyal"}, policy=policy).holds(buyer(0, 60), T0 + 61 * DAY)


def test_every_stage_is_a_built_in_segment() -> None:
    keys = {s.key for s in BUILTIN_SEGMENTS}
    assert {f"lifecycle-{s}" for s in STAGES} <= keys
    assert "no-order-30d" in keys


@pytest.mark.parametrize(
    "profile_at",
    [
        (Profile(id="p-1"), T0),
        (buyer(0), T0),
        (buyer(0, 30), T0 + 31 * DAY),
        (buyer(0, 30, 60, 90), T0 + 91 * DAY),
        (buyer(0, 30), T0 + 80 * DAY),
        (buyer(0), T0 + 200 * DAY),
    ],
)
def test_a_buyer_is_in_exactly_one_lifecycle_segment(profile_at: tuple[Profile, datetime]) -> None:
    profile, now = profile_at
    evaluation = reevaluate(profile, lifecycle_segments(), {}, now, None)
    assert len(evaluation.memberships) == 1
    (key,) = evaluation.memberships
    assert key == f"lifecycle-{stage(profile, now)}"


def test_lifecycle_segments_take_the_shops_thresholds() -> None:
    segments = lifecycle_segments(LifecyclePolicy(loyal_orders=2))
    evaluation = reevaluate(buyer(0, 60), segments, {}, T0 + 61 * DAY, None)
    assert set(evaluation.memberships) == {"lifecycle-loyal"}


def test_a_stored_segment_that_cannot_be_linked_is_left_out_and_the_rest_kept() -> None:
    errors: dict[str, RuleError] = {}
    stored = [
        Segment.from_definition("lapsed-loyal", "x", {"all": [{"segment": "lifecycle-loyal"}]}),
        Segment.from_definition("typo", "y", {"segment": "lifecycle-loyl"}),
    ]

    linked = link_segments([*BUILTIN_SEGMENTS, *stored], errors)

    assert [s.key for s in linked][-1] == "lapsed-loyal"
    assert set(errors) == {"typo"}
    assert linked[-1].rule.holds(buyer(0, 5, 40, 41), T0 + 42 * DAY) is True
