"""How a buyer's segment memberships move, with events and with time alone."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.profile import Profile, apply_event
from shared.domain.rules import Condition
from shared.domain.segments import (
    BUILTIN_SEGMENTS,
    MembershipChange,
    Segment,
    occurrence_id,
    reevaluate,
)
from tests.unit.builders import T0, identify, purchase

NO_ORDER = "no-order-30d"
DAY = timedelta(days=1)
NO_ORDER_ONLY = tuple(s for s in BUILTIN_SEGMENTS if s.key == NO_ORDER)
"""The built-in win-back segment alone (the lifecycle stages are tested in test_lifecycle)."""


def buyer_who_ordered_at(moment: datetime) -> tuple[Profile, frozenset[str]]:
    profile = Profile(id="p-1")
    changed = apply_event(profile, purchase("100.00", moment))
    return profile, changed


def entered_no_order_segment() -> tuple[Profile, MembershipChange]:
    """A buyer who ordered at T0 and entered the segment when the timer fired."""
    profile, _ = buyer_who_ordered_at(T0)
    timer = reevaluate(profile, NO_ORDER_ONLY, {}, T0, None).next_timer
    assert timer is not None
    (entry,) = reevaluate(profile, NO_ORDER_ONLY, {}, timer, None).changes
    return profile, entry


# --- the built-in "no order for 30 days" segment -------------------------------------


def test_no_order_segment_is_built_in_and_reads_the_last_order() -> None:
    (segment,) = NO_ORDER_ONLY
    assert segment.key == NO_ORDER
    assert segment.rule.reads == frozenset({"last_order_at"})


def test_buyer_29_days_after_last_order_is_out_with_a_timer_at_30_days() -> None:
    profile, _ = buyer_who_ordered_at(T0)

    evaluation = reevaluate(profile, NO_ORDER_ONLY, {}, T0 + 29 * DAY, None)

    assert evaluation.changes == ()
    assert evaluation.memberships == {}
    assert evaluation.next_timer == T0 + 30 * DAY


def test_first_purchase_sets_the_timer_exactly_30_days_after_the_order() -> None:
    profile, changed = buyer_who_ordered_at(T0)

    evaluation = reevaluate(profile, NO_ORDER_ONLY, {}, T0, changed)

    assert evaluation.changes == ()
    assert evaluation.next_timer == T0 + 30 * DAY


def test_buyer_enters_no_order_segment_exactly_30_days_after_last_order() -> None:
    profile, _ = buyer_who_ordered_at(T0)
    timer = T0 + 30 * DAY

    evaluation = reevaluate(profile, NO_ORDER_ONLY, {}, timer, None)

    assert evaluation.changes == (
        MembershipChange("entered", NO_ORDER, "p-1", timer, occurrence_id(NO_ORDER, "p-1", timer)),
    )
    assert evaluation.memberships == {NO_ORDER: timer}
    assert evaluation.next_timer is None


def test_evaluating_the_member_again_changes_nothing() -> None:
    profile, entry = entered_no_order_segment()
    memberships = {NO_ORDER: entry.at}

    for later in (entry.at, entry.at + DAY, entry.at + 365 * DAY):
        again = reevaluate(profile, NO_ORDER_ONLY, memberships, later, None)
        assert again.changes == ()
        assert again.memberships == {NO_ORDER: entry.at}
        assert again.next_timer is None


def test_new_purchase_makes_the_buyer_exit_with_the_entry_occurrence_id() -> None:
    profile, entry = entered_no_order_segment()
    bought_at = entry.at + 5 * DAY
    changed = apply_event(profile, purchase("250.00", bought_at, order_id="o-2"))
    assert "last_order_at" in changed

    evaluation = reevaluate(profile, NO_ORDER_ONLY, {NO_ORDER: entry.at}, bought_at, changed)

    (exit_,) = evaluation.changes
    assert exit_.kind == "exited"
    assert exit_.segment == NO_ORDER
    assert exit_.at == bought_at
    assert exit_.occurrence_id == entry.occurrence_id
    assert evaluation.memberships == {}
    assert evaluation.next_timer == bought_at + 30 * DAY


def test_buyer_who_comes_back_and_lapses_again_gets_a_new_occurrence() -> None:
    profile, entry = entered_no_order_segment()
    bought_at = entry.at + 5 * DAY
    apply_event(profile, purchase("250.00", bought_at, order_id="o-2"))

    (second_entry,) = reevaluate(profile, NO_ORDER_ONLY, {}, bought_at + 30 * DAY, None).changes

    assert second_entry.kind == "entered"
    assert second_entry.occurrence_id != entry.occurrence_id


def test_event_that_changes_no_field_the_segment_reads_leaves_the_member_in() -> None:
    profile, entry = entered_no_order_segment()
    changed = apply_event(profile, identify(entry.at + DAY, email="anna@shop.ru"))
    assert changed == frozenset({"email"})

    evaluation = reevaluate(profile, NO_ORDER_ONLY, {NO_ORDER: entry.at}, entry.at + DAY, changed)

    assert evaluation.changes == ()
    assert evaluation.memberships == {NO_ORDER: entry.at}


def test_an_order_older_than_the_last_one_does_not_re_evaluate_the_segment() -> None:
    profile, entry = entered_no_order_segment()
    changed = apply_event(profile, purchase("10.00", T0 - 3 * DAY, order_id="o-old"))
    assert "last_order_at" not in changed

    evaluation = reevaluate(profile, NO_ORDER_ONLY, {NO_ORDER: entry.at}, entry.at, changed)

    assert evaluation.changes == ()
    assert evaluation.memberships == {NO_ORDER: entry.at}


def test_buyer_with_no_orders_never_enters_and_has_no_timer() -> None:
    profile = Profile(id="p-lead")
    changed = apply_event(profile, identify(T0, email="lead@shop.ru"))

    on_event = reevaluate(profile, NO_ORDER_ONLY, {}, T0, changed)
    assert (on_event.changes, on_event.memberships, on_event.next_timer) == ((), {}, None)
    for later in (T0 + 30 * DAY, T0 + 1000 * DAY):
        on_timer = reevaluate(profile, NO_ORDER_ONLY, {}, later, None)
        assert (on_timer.changes, on_timer.memberships, on_timer.next_timer) == ((), {}, None)


def test_reevaluate_leaves_the_memberships_it_was_given_untouched() -> None:
    profile, entry = entered_no_order_segment()
    memberships = {NO_ORDER: entry.at}
    apply_event(profile, purchase("1.00", entry.at + DAY, order_id="o-2"))

    reevaluate(profile, NO_ORDER_ONLY, memberships, entry.at + DAY, None)

    assert memberships == {NO_ORDER: entry.at}


# --- which segments an event evaluates -----------------------------------------------


@dataclass(frozen=True, eq=False)
class CountingCondition(Condition):
    """A condition reading ``orders_count`` that counts how often it is asked."""

    asked: list[datetime] = field(default_factory=list)

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({"orders_count"})

    def holds(self, profile: Profile, now: datetime) -> bool:
        self.asked.append(now)
        return profile.orders_count > 0

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


@pytest.mark.parametrize("changed", [frozenset({"email", "phone"}), frozenset()])
def test_event_whose_changes_the_segment_does_not_read_evaluates_nothing(
    changed: frozenset[str],
) -> None:
    condition = CountingCondition()
    segment = Segment("buyers", "Buyers", condition)
    profile = Profile(
        id="p-1", orders_count=3, revenue_total=Decimal("30.00"), evaluated_at=T0 - DAY
    )

    evaluation = reevaluate(profile, [segment], {}, T0, changed)

    assert condition.asked == []
    assert evaluation.changes == ()


def test_a_buyer_never_evaluated_is_evaluated_in_full_whatever_changed() -> None:
    condition = CountingCondition()
    segment = Segment("buyers", "Buyers", condition)
    profile = Profile(id="p-1", orders_count=3, revenue_total=Decimal("30.00"))

    reevaluate(profile, [segment], {}, T0, frozenset({"email"}))

    assert condition.asked == [T0]


def test_event_changing_a_field_the_segment_reads_evaluates_it() -> None:
    condition = CountingCondition()
    segment = Segment("buyers", "Buyers", condition)
    profile = Profile(id="p-1", orders_count=3, revenue_total=Decimal("30.00"))

    evaluation = reevaluate(profile, [segment], {}, T0, frozenset({"orders_count", "email"}))

    assert condition.asked == [T0]
    assert [c.kind for c in evaluation.changes] == ["entered"]


def test_timer_evaluates_every_segment() -> None:
    condition = CountingCondition()
    profile = Profile(id="p-1")

    reevaluate(profile, [Segment("buyers", "Buyers", condition)], {}, T0, None)

    assert condition.asked == [T0]


def test_next_timer_is_the_earliest_flip_over_all_segments() -> None:
    segments = [
        *NO_ORDER_ONLY,
        Segment.from_definition(
            "active-7d", "Ordered this week", {"stat": "last_order_at", "within": "7d"}
        ),
    ]
    profile, changed = buyer_who_ordered_at(T0)

    evaluation = reevaluate(profile, segments, {}, T0 + DAY, changed)

    assert [c.segment for c in evaluation.changes] == ["active-7d"]
    assert evaluation.next_timer == T0 + 7 * DAY


def test_a_flip_that_fell_due_before_an_event_is_not_lost() -> None:
    new_buyer = Segment.from_definition(
        "new-buyer", "First order this week", {"stat": "first_order_at", "within": "7d"}
    )
    profile, changed = buyer_who_ordered_at(T0)
    first = reevaluate(profile, [new_buyer], {}, T0, changed)
    assert first.memberships == {"new-buyer": T0}
    assert first.next_timer == T0 + 7 * DAY
    profile.next_timer_at, profile.evaluated_at = (
        first.next_timer,
        T0,
    )  # as the segmenter keeps them

    # The timer loop is a minute late; a second order is handled first.
    late = T0 + 7 * DAY + timedelta(minutes=1)
    changed = apply_event(profile, purchase("50.00", late, order_id="o-2"))
    second = reevaluate(profile, [new_buyer], first.memberships, late, changed)

    assert "new-buyer" not in second.memberships


def test_newly_identified_buyer_enters_a_segment_that_holds_with_no_orders() -> None:
    lead = Segment.from_definition(
        "lead", "Identified, no order yet", {"stat": "orders_count", "eq": 0}
    )
    profile = Profile(id="p-new")
    changed = apply_event(profile, identify(T0, email="lead@shop.ru"))

    evaluation = reevaluate(profile, [lead], {}, T0, changed)

    assert evaluation.memberships == reevaluate(profile, [lead], {}, T0, None).memberships


# --- occurrence ids ------------------------------------------------------------------


def test_occurrence_id_is_deterministic() -> None:
    assert occurrence_id(NO_ORDER, "p-1", T0) == occurrence_id(NO_ORDER, "p-1", T0)
    assert uuid.UUID(occurrence_id(NO_ORDER, "p-1", T0)).version == 5


def test_occurrence_id_differs_per_segment_buyer_and_entry_moment() -> None:
    ids = {
        occurrence_id(NO_ORDER, "p-1", T0),
        occurrence_id("active-7d", "p-1", T0),
        occurrence_id(NO_ORDER, "p-2", T0),
        occurrence_id(NO_ORDER, "p-1", T0 + timedelta(microseconds=1)),
    }
    assert len(ids) == 4


def test_replaying_the_same_history_gives_the_same_occurrence_ids() -> None:
    _, entry = entered_no_order_segment()
    _, replayed = entered_no_order_segment()
    assert replayed == entry


# --- incremental evaluation agrees with evaluation from scratch ----------------------

COMPOSED_SEGMENTS: tuple[Segment, ...] = (
    *BUILTIN_SEGMENTS,
    Segment.from_definition(
        "active-7d", "Ordered this week", {"stat": "last_order_at", "within": "7d"}
    ),
    Segment.from_definition(
        "repeat", "Two orders or more", {"stat": "orders_count", "at_least": 2}
    ),
    Segment.from_definition(
        "mid-check", "Average check 50-150", {"stat": "avg_check", "between": [50, 150]}
    ),
    Segment.from_definition(
        "new-and-quiet",
        "First order this quarter, nothing for two weeks",
        {
            "all": [
                {"stat": "first_order_at", "within": "90d"},
                {"not": {"stat": "last_order_at", "within": "14d"}},
            ]
        },
    ),
    Segment.from_definition(
        "lapsing-regular-or-veteran",
        "Regular gone quiet for 10 days, or a buyer of more than 60 days' standing",
        {
            "any": [
                {
                    "all": [
                        {"stat": "orders_count", "at_least": 3},
                        {"stat": "last_order_at", "older_than": "10d"},
                    ]
                },
                {"not": {"stat": "first_order_at", "within": "60d"}},
            ]
        },
    ),
    Segment.from_definition(
        "big-spender-this-month",
        "Spent 500 or more, ordered within 30 days",
        {
            "all": [
                {"stat": "revenue_total", "at_least": 500},
                {"stat": "last_order_at", "within": "30d"},
            ]
        },
    ),
)


@dataclass
class Buyer:
    """A buyer kept incrementally, the way the segmenter keeps one."""

    profile: Profile = field(default_factory=lambda: Profile(id="p-1"))
    memberships: dict[str, datetime] = field(default_factory=dict)
    next_timer: datetime | None = None
    open_occurrences: dict[str, str] = field(default_factory=dict)

    def settle(self, now: datetime, changed: frozenset[str] | None) -> None:
        evaluation = reevaluate(self.profile, COMPOSED_SEGMENTS, self.memberships, now, changed)
        for change in evaluation.changes:
            if change.kind == "entered":
                assert change.segment not in self.open_occurrences
                self.open_occurrences[change.segment] = change.occurrence_id
            else:
                assert self.open_occurrences.pop(change.segment) == change.occurrence_id
        self.memberships = evaluation.memberships
        self.next_timer = evaluation.next_timer
        assert self.next_timer is None or self.next_timer > now

    def fire_timers_until(self, now: datetime) -> None:
        while self.next_timer is not None and self.next_timer <= now:
            self.settle(self.next_timer, None)


# Whole days land the clock exactly on flips (every rule counts in days); minutes land it near.
GAPS = st.one_of(
    st.integers(min_value=0, max_value=45).map(lambda d: timedelta(days=d)),
    st.integers(min_value=0, max_value=72).map(lambda h: timedelta(hours=h)),
    st.integers(min_value=0, max_value=24 * 60).map(lambda m: timedelta(minutes=m)),
)
STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("purchase"),
            GAPS,
            st.integers(min_value=0, max_value=40_000).map(lambda c: Decimal(c) / 100),
        ),
        st.tuples(st.just("wait"), GAPS, st.none()),
        st.tuples(st.just("to-next-timer"), st.just(timedelta(0)), st.none()),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None, database=None)
@given(steps=STEPS)
def test_incremental_memberships_match_evaluation_from_scratch(
    steps: list[tuple[str, timedelta, Decimal | None]],
) -> None:
    buyer = Buyer()
    clock = T0
    buyer.settle(clock, None)  # a new buyer is evaluated against every segment once
    for number, (kind, gap, total) in enumerate(steps):
        if kind == "to-next-timer":
            clock = buyer.next_timer or clock
        else:
            clock += gap
        buyer.fire_timers_until(clock)
        if kind == "purchase":
            assert total is not None
            event = purchase(total, clock, order_id=f"o-{number}")
            buyer.settle(clock, apply_event(buyer.profile, event))

        scratch = reevaluate(buyer.profile, COMPOSED_SEGMENTS, {}, clock, None)
        assert set(buyer.memberships) == set(scratch.memberships)
        assert set(buyer.open_occurrences) == set(buyer.memberships)
        assert buyer.next_timer == scratch.next_timer
