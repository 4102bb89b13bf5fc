"""Folding two profiles of one buyer together, on plain data."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from shared.domain.profile import Profile, absorb
from shared.domain.segments import merge_stays
from tests.unit.builders import T0

DAY = timedelta(days=1)


def test_absorbing_adds_orders_and_widens_the_order_dates() -> None:
    survivor = Profile(
        id="known",
        email="olga@example.com",
        orders_count=2,
        revenue_total=Decimal("300.00"),
        first_order_at=T0,
        last_order_at=T0 + 5 * DAY,
        evaluated_at=T0,
    )
    other = Profile(
        id="anonymous",
        phone="+79161234567",
        orders_count=1,
        revenue_total=Decimal("50.50"),
        first_order_at=T0 - DAY,
        last_order_at=T0 - DAY,
        next_timer_at=T0 + 29 * DAY,
    )

    absorb(survivor, other)

    assert survivor.orders_count == 3
    assert survivor.revenue_total == Decimal("350.50")
    assert (survivor.first_order_at, survivor.last_order_at) == (T0 - DAY, T0 + 5 * DAY)
    assert (survivor.email, survivor.phone) == ("olga@example.com", "+79161234567")
    assert survivor.evaluated_at is None  # every segment is evaluated again
    assert other.merged_into == "known"
    assert other.next_timer_at is None


def test_absorbing_a_profile_without_orders_keeps_the_survivors_dates() -> None:
    survivor = Profile(
        id="known",
        orders_count=1,
        revenue_total=Decimal("10.00"),
        first_order_at=T0,
        last_order_at=T0,
    )
    absorb(survivor, Profile(id="lead", email="lead@example.com"))
    assert (survivor.first_order_at, survivor.last_order_at) == (T0, T0)
    assert survivor.email == "lead@example.com"


def test_the_survivors_stays_win_and_the_others_join_as_they_were() -> None:
    survivor = {"no-order-30d": T0 + 3 * DAY}
    other = {"no-order-30d": T0, "vip": T0 + DAY}
    assert merge_stays(survivor, other) == {"no-order-30d": T0 + 3 * DAY, "vip": T0 + DAY}
