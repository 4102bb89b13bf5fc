"""A buyer's profile, kept event by event, and the fields each event reports as changed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.domain.profile import Profile, apply_event
from tests.unit.builders import T0, identify, purchase

DAY = timedelta(days=1)
ORDER_FIELDS = frozenset(
    {"orders_count", "revenue_total", "avg_check", "net_revenue", "order_moments"}
)


def test_new_buyer_has_no_orders_and_no_average_check() -> None:
    profile = Profile(id="p-1")
    assert profile.orders_count == 0
    assert profile.revenue_total == Decimal("0.00")
    assert profile.avg_check is None
    assert profile.first_order_at is None
    assert profile.last_order_at is None


def test_first_purchase_sets_count_revenue_check_and_both_order_dates() -> None:
    profile = Profile(id="p-1")

    changed = apply_event(profile, purchase("1499.90", T0))

    assert profile.orders_count == 1
    assert profile.revenue_total == Decimal("1499.90")
    assert profile.avg_check == Decimal("1499.90")
    assert profile.first_order_at == T0
    assert profile.last_order_at == T0
    assert changed == ORDER_FIELDS | {"first_order_at", "last_order_at"}


def test_later_purchase_moves_only_the_last_order_date() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("100.00", T0))

    changed = apply_event(profile, purchase("300.00", T0 + 10 * DAY, order_id="o-2"))

    assert profile.orders_count == 2
    assert profile.first_order_at == T0
    assert profile.last_order_at == T0 + 10 * DAY
    assert changed == ORDER_FIELDS | {"last_order_at"}


def test_revenue_total_adds_up_exactly_in_decimal() -> None:
    profile = Profile(id="p-1")
    for number, total in enumerate(["0.10", "0.20", "0.01", "99999999.99"]):
        apply_event(profile, purchase(total, T0 + number * DAY, order_id=f"o-{number}"))

    assert profile.revenue_total == Decimal("100000000.30")
    assert isinstance(profile.revenue_total, Decimal)


def test_free_order_counts_as_an_order() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("0", T0))
    assert profile.orders_count == 1
    assert profile.revenue_total == Decimal("0.00")
    assert profile.avg_check == Decimal("0.00")


@pytest.mark.parametrize(
    ("totals", "expected"),
    [
        (["100.00", "0.00", "0.00"], Decimal("33.33")),
        (["200.00", "0.00", "0.00"], Decimal("66.67")),
        (["10.00", "20.02"], Decimal("15.01")),
        (["4000.00", "6000.00"], Decimal("5000.00")),
        (["1.00", "1.00", "1.00", "1.00", "1.00", "1.01"], Decimal("1.00")),
    ],
)
def test_average_check_is_rounded_to_cents(totals: list[str], expected: Decimal) -> None:
    profile = Profile(id="p-1")
    for number, total in enumerate(totals):
        apply_event(profile, purchase(total, T0 + number * DAY, order_id=f"o-{number}"))

    assert profile.avg_check == expected
    assert profile.avg_check is not None
    assert profile.avg_check.as_tuple().exponent == -2


def test_order_received_late_but_placed_earlier_moves_only_the_first_order_date() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("100.00", T0))

    changed = apply_event(profile, purchase("50.00", T0 - 3 * DAY, order_id="o-early"))

    assert profile.first_order_at == T0 - 3 * DAY
    assert profile.last_order_at == T0
    assert changed == ORDER_FIELDS | {"first_order_at"}


def test_order_placed_between_first_and_last_moves_neither_date() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("100.00", T0))
    apply_event(profile, purchase("100.00", T0 + 10 * DAY, order_id="o-2"))

    changed = apply_event(profile, purchase("100.00", T0 + 5 * DAY, order_id="o-3"))

    assert (profile.first_order_at, profile.last_order_at) == (T0, T0 + 10 * DAY)
    assert changed == ORDER_FIELDS


def test_second_order_at_the_same_moment_moves_neither_date() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("100.00", T0))

    changed = apply_event(profile, purchase("100.00", T0, order_id="o-2"))

    assert profile.orders_count == 2
    assert changed == ORDER_FIELDS


def test_order_dates_compare_instants_not_wall_clock_across_offsets() -> None:
    moscow = timezone(timedelta(hours=3))
    profile = Profile(id="p-1")
    apply_event(profile, purchase("100.00", T0))  # 12:00 UTC
    earlier_in_moscow = datetime(2024, 5, 1, 14, 0, tzinfo=moscow)  # 11:00 UTC

    changed = apply_event(profile, purchase("100.00", earlier_in_moscow, order_id="o-2"))

    assert profile.first_order_at == earlier_in_moscow
    assert profile.last_order_at == T0
    assert "last_order_at" not in changed


def test_identify_takes_new_email_and_phone() -> None:
    profile = Profile(id="p-1")

    changed = apply_event(
        profile, identify(T0, id="c-1", email="anna@shop.ru", phone="+79161234567")
    )

    assert (profile.email, profile.phone) == ("anna@shop.ru", "+79161234567")
    assert changed == frozenset({"email", "phone"})


def test_identify_with_the_same_contacts_changes_nothing() -> None:
    profile = Profile(id="p-1", email="anna@shop.ru", phone="+79161234567")

    changed = apply_event(profile, identify(T0, email="anna@shop.ru", phone="+79161234567"))

    assert changed == frozenset()


def test_identify_without_a_contact_keeps_the_known_ones() -> None:
    profile = Profile(id="p-1", email="anna@shop.ru", phone="+79161234567")

    changed = apply_event(profile, identify(T0, loyalty_card="LC-1"))

    assert changed == frozenset()
    assert (profile.email, profile.phone) == ("anna@shop.ru", "+79161234567")


def test_identify_with_a_new_phone_reports_only_the_phone() -> None:
    profile = Profile(id="p-1", email="anna@shop.ru", phone="+79161234567")

    changed = apply_event(profile, identify(T0, email="anna@shop.ru", phone="+79037654321"))

    assert changed == frozenset({"phone"})
    assert profile.phone == "+79037654321"


def test_identify_never_touches_orders() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("100.00", T0))

    apply_event(profile, identify(T0 + DAY, email="anna@shop.ru"))

    assert (profile.orders_count, profile.revenue_total) == (1, Decimal("100.00"))
    assert profile.last_order_at == T0


def test_purchase_carrying_a_new_email_reports_it_with_the_order_fields() -> None:
    profile = Profile(id="p-1")

    changed = apply_event(profile, purchase("10.00", T0, customer={"email": "anna@shop.ru"}))

    assert profile.email == "anna@shop.ru"
    assert changed == ORDER_FIELDS | {"first_order_at", "last_order_at", "email"}
