"""Incremental evaluation agrees with evaluation from scratch, for every kind of condition.

The segmenter evaluates a buyer only on the segments reading a field an event changed,
and otherwise wakes the buyer at the next timer. If a condition's ``reads`` missed a
field its answer depends on, or its ``next_change`` missed a flip, the memberships kept
that way would drift from what evaluating every rule afresh says. Hypothesis plays
random histories (purchases with items and stores, late ones too, custom events,
traits and time zones, email opens, scoring runs, time passing) to look for one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.events import AnyEvent
from shared.domain.profile import Profile, Scores, apply_event, apply_scores
from shared.domain.segments import BUILTIN_SEGMENTS, Segment, link_segments, reevaluate
from tests.unit.builders import T0, event

RULES: dict[str, Any] = {
    "female": {"trait": "gender", "eq": "female"},
    "central-or-north-west": {"trait": "region", "in": ["CFD", "NWFD"]},
    "two-kids-or-more": {"trait": "kids", "at_least": 2},
    "pets-unknown": {"trait": "has_pets", "exists": False},
    "monthly": {"rhythm": "median_days_between_orders", "between": [20, 40]},
    "mean-gap-over-10d": {"rhythm": "mean_days_between_orders", "at_least": 10},
    "due-in-3d": {"rhythm": "expected_next_order_at", "within": "3d"},
    "overdue-a-week": {"rhythm": "expected_next_order_at", "overdue_by": "7d"},
    "pet-food-90d": {"bought": {"category": "pet-food"}, "within": "90d"},
    "no-milk-30d": {"bought": {"sku": "milk"}, "not_within": "30d"},
    "bought-in-moscow": {"bought": {"store": "msk-01"}},
    "cart-twice-in-7d": {"event": "cart_updated", "at_least": 2, "within": "7d"},
    "cart-quiet-3d": {"event": "cart_updated", "at_most": 1, "within": "3d"},
    "viewer": {"event": "product_viewed", "at_least": 3},
    "night-opener": {"opens": "email", "local_hours": [23, 5], "share_at_least": 0.5},
    "champions": {"rfm": "champions"},
    "recent-rfm": {"rfm_score": {"r": [4, 5]}},
    "fading": {"p_alive": {"below": 0.3}},
    "top-clv": {"clv": {"top_share": 0.2}},
    "clv-1000": {"clv": {"at_least": 1000}},
    "net-100": {"stat": "net_revenue", "at_least": 100},
    "lapsed-woman": {"all": [{"segment": "female"}, {"segment": "no-order-30d"}]},
    "pet-buyer-not-churned": {
        "all": [{"not": {"segment": "lifecycle-churned"}}, {"segment": "pet-food-90d"}]
    },
    "loyal-or-champion": {"any": [{"lifecycle": "loyal"}, {"segment": "champions"}]},
    "new-and-quiet": {
        "all": [{"lifecycle": "new"}, {"not": {"stat": "last_order_at", "within": "14d"}}]
    },
}

SEGMENTS: tuple[Segment, ...] = link_segments(
    (
        *BUILTIN_SEGMENTS,
        *(Segment.from_definition(key, key, rule) for key, rule in RULES.items()),
    )
)


@dataclass
class Buyer:
    """A buyer kept incrementally, the way the segmenter keeps one."""

    profile: Profile = field(default_factory=lambda: Profile(id="p-1"))
    memberships: dict[str, datetime] = field(default_factory=dict)

    def settle(self, now: datetime, changed: frozenset[str] | None) -> None:
        evaluation = reevaluate(self.profile, SEGMENTS, self.memberships, now, changed)
        self.memberships = evaluation.memberships
        assert evaluation.next_timer is None or evaluation.next_timer > now
        self.profile.next_timer_at = evaluation.next_timer
        self.profile.evaluated_at = now

    def fire_timers_until(self, now: datetime) -> None:
        while self.profile.next_timer_at is not None and self.profile.next_timer_at <= now:
            self.settle(self.profile.next_timer_at, None)


GAPS = st.one_of(
    st.integers(min_value=0, max_value=60).map(lambda d: timedelta(days=d)),
    st.integers(min_value=0, max_value=72).map(lambda h: timedelta(hours=h)),
    st.integers(min_value=0, max_value=24 * 60).map(lambda m: timedelta(minutes=m)),
)
LATENESS = st.one_of(st.just(timedelta(0)), GAPS)
ITEMS = st.lists(
    st.tuples(
        st.sampled_from(["milk", "cat-food", "bread", "toy"]),
        st.sampled_from(["pet-food", "dairy", None]),
        st.integers(min_value=1, max_value=3),
    ),
    max_size=3,
)
TRAITS = st.dictionaries(
    st.sampled_from(["gender", "region", "kids", "has_pets", "timezone"]),
    st.one_of(
        st.none(),
        st.sampled_from(["female", "male", "CFD", "NWFD", "Europe/Moscow", "Asia/Tokyo"]),
        st.integers(min_value=0, max_value=4),
        st.booleans(),
    ),
    max_size=3,
)
SCORES = st.builds(
    Scores,
    rfm_r=st.one_of(st.none(), st.integers(min_value=1, max_value=5)),
    rfm_segment=st.sampled_from([None, "champions", "at-risk"]),
    p_alive=st.one_of(st.none(), st.sampled_from([0.1, 0.29, 0.3, 0.8])),
    clv=st.one_of(st.none(), st.sampled_from([Decimal("999.99"), Decimal("1000.00")])),
    clv_share=st.one_of(st.none(), st.sampled_from([0.0, 0.19, 0.2, 0.7])),
)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("purchase"), GAPS, st.tuples(LATENESS, ITEMS, st.booleans())),
        st.tuples(
            st.just("track"),
            GAPS,
            st.tuples(LATENESS, st.sampled_from(["cart_updated", "product_viewed"])),
        ),
        st.tuples(st.just("identify"), GAPS, TRAITS),
        st.tuples(st.just("opened"), GAPS, st.sampled_from(["email", "push"])),
        st.tuples(st.just("refund"), GAPS, st.sampled_from(["30.00", "200.00"])),
        st.tuples(st.just("scores"), GAPS, SCORES),
        st.tuples(st.just("wait"), GAPS, st.none()),
        st.tuples(st.just("to-next-timer"), st.just(timedelta(0)), st.none()),
    ),
    max_size=30,
)


def event_for(kind: str, payload: Any, clock: datetime, number: int) -> AnyEvent:
    """The event a step stands for, happening at ``clock`` (or earlier, when late)."""
    event_id = f"evt-{number}"
    if kind == "purchase":
        lateness, items, in_moscow = payload
        data = {
            "order_id": f"o-{number}",
            "total": "70.00",
            "items": [
                {"sku": sku, "category": category, "quantity": quantity, "price": "10.00"}
                for sku, category, quantity in items
            ],
        }
        purchase = event("purchase", data, clock - lateness, event_id=event_id)
        return purchase.model_copy(update={"store_id": "msk-01" if in_moscow else None})
    if kind == "track":
        lateness, name = payload
        return event("track", {"name": name}, clock - lateness, event_id=event_id)
    if kind == "identify":
        return event("identify", {"traits": payload}, clock, event_id=event_id)
    if kind == "opened":
        data = {"message_key": f"m-{number}", "channel": payload}
        return event("message_opened", data, clock, event_id=event_id)
    assert kind == "refund"
    data = {"order_id": f"o-{number}", "amount": payload}
    return event("refund", data, clock, event_id=event_id)


@settings(max_examples=250, deadline=None, database=None)
@given(steps=STEPS)
def test_incremental_memberships_match_evaluation_from_scratch(
    steps: list[tuple[str, timedelta, Any]],
) -> None:
    buyer = Buyer()
    clock = T0
    buyer.settle(clock, None)  # a new buyer is evaluated against every segment once
    for number, (kind, gap, payload) in enumerate(steps):
        if kind == "to-next-timer":
            clock = buyer.profile.next_timer_at or clock
        else:
            clock += gap
        buyer.fire_timers_until(clock)
        if kind == "scores":
            changed = apply_scores(buyer.profile, payload)
            buyer.settle(clock, changed)
        elif kind != "wait" and kind != "to-next-timer":
            changed = apply_event(buyer.profile, event_for(kind, payload, clock, number))
            buyer.settle(clock, changed)

        scratch = reevaluate(buyer.profile, SEGMENTS, {}, clock, None)
        assert set(buyer.memberships) == set(scratch.memberships)
        assert buyer.profile.next_timer_at == scratch.next_timer
        stages = [key for key in buyer.memberships if key.startswith("lifecycle-")]
        assert len(stages) == 1
