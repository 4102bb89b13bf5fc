"""The dashboard's figures on a small base worked out by hand.

The base, seen on 15 March 2026 (UTC):

====  ===============================================  ==========  ==========
who   orders                                           stores      stage
====  ===============================================  ==========  ==========
A     5 Dec 2025, 20 Dec 2025, 10 Feb 2026             st-1        repeat
B     10 Dec 2025, 25 Jan 2026                         st-1        repeat
C     28 Dec 2025                                      st-2        new
D     3 Jan 2026, 20 Jan 2026                          st-2        pre-churn
E     1 Mar 2026                                       st-2        new
F     (none: a lead)                                   -           lead
G     1 Jun 2025                                       st-2        churned
====  ===============================================  ==========  ==========

- Early repeat (30 days): E's first order is under 30 days old, so the base is A, B,
  C, D, G; A (15 days) and D (17 days) ordered again in time, B (46 days) did not:
  2 of 5.
- First-to-second conversion: A, B and D of the six buyers with an order: 3 of 6.
- Churn: G of the six: 1 of 6.
- Cohorts: June 2025 (G), December 2025 (A, B, C: B ordered in January, A in
  February), January 2026 (D, both orders in January), March 2026 (E).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.domain.kpis import BaseFilter, KpiTally, second_order_at
from shared.domain.profile import Profile, Purchases

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 10, 0, tzinfo=UTC)


def buyer(
    name: str,
    *orders: datetime,
    store: str = "st-2",
    region: str | None = None,
    clv: str | None = None,
    rfm: tuple[int, int, int] | None = None,
) -> Profile:
    profile = Profile(
        id=name,
        orders_count=len(orders),
        first_order_at=orders[0] if orders else None,
        last_order_at=orders[-1] if orders else None,
        order_moments=list(orders),
        stores={store: Purchases(orders=len(orders))} if orders else {},
        traits={"region": region} if region else {},
        clv=Decimal(clv) if clv else None,
    )
    if rfm is not None:
        profile.rfm_r, profile.rfm_f, profile.rfm_m = rfm
    return profile


def base() -> list[Profile]:
    return [
        buyer(
            "A",
            at(2025, 12, 5),
            at(2025, 12, 20),
            at(2026, 2, 10),
            store="st-1",
            region="north",
            clv="1000.00",
            rfm=(5, 4, 5),
        ),
        buyer("B", at(2025, 12, 10), at(2026, 1, 25), store="st-1", clv="500.00", rfm=(3, 3, 2)),
        buyer("C", at(2025, 12, 28)),
        buyer("D", at(2026, 1, 3), at(2026, 1, 20), clv="300.50"),
        buyer("E", at(2026, 3, 1)),
        buyer("F"),
        buyer("G", at(2025, 6, 1), rfm=(1, 1, 1)),
    ]


def tally(
    base_filter: BaseFilter | None = None, *, repeat_days: int = 30, cohort_months: int = 12
) -> KpiTally:
    counted = KpiTally(
        NOW, base_filter or BaseFilter(), repeat_days=repeat_days, cohort_months=cohort_months
    )
    for profile in base():
        counted.add(profile)
    return counted


def test_buyers_are_counted_by_lifecycle_stage() -> None:
    kpis = tally().result()
    assert kpis.buyers == 7
    assert kpis.buyers_with_orders == 6
    assert dict(kpis.stages) == {
        "lead": 1,
        "new": 2,
        "repeat": 2,
        "loyal": 0,
        "pre-churn": 1,
        "churned": 1,
    }


def test_a_stage_recorded_by_the_segmenter_is_taken_as_it_is() -> None:
    counted = KpiTally(NOW)
    counted.add(buyer("A", at(2026, 3, 1)), "loyal")
    assert counted.result().stages["loyal"] == 1


def test_early_repeat_rate_counts_second_orders_within_the_window_of_matured_buyers() -> None:
    kpis = tally().result()
    assert (kpis.early_repeaters, kpis.early_repeat_base) == (2, 5)
    assert kpis.early_repeat_rate == pytest.approx(0.4)


def test_a_wider_repeat_window_lets_a_slower_second_order_count() -> None:
    kpis = tally(repeat_days=50).result()
    # the base is now the buyers whose first order is 50+ days old: A, B, C, D, G
    assert (kpis.early_repeaters, kpis.early_repeat_base) == (3, 5)


def test_first_to_second_order_conversion_and_churn_are_shares_of_buyers_with_an_order() -> None:
    kpis = tally().result()
    assert kpis.second_order_rate == pytest.approx(3 / 6)
    assert kpis.churn_rate == pytest.approx(1 / 6)


def test_clv_is_averaged_over_scored_buyers_and_summed_into_customer_equity() -> None:
    kpis = tally().result()
    assert kpis.scored == 3
    assert kpis.customer_equity == Decimal("1800.50")
    assert kpis.clv_average == Decimal("600.17")


def test_the_cohort_heat_map_shares_each_cohorts_buyers_ordering_k_months_later() -> None:
    cohorts = {c.month: c for c in tally().result().cohorts}
    assert list(cohorts) == [
        date(2025, 6, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 3, 1),
    ]
    december = cohorts[date(2025, 12, 1)]
    assert december.buyers == 3
    assert december.active == (3, 1, 1, 0)
    assert december.retention == pytest.approx((1.0, 1 / 3, 1 / 3, 0.0))
    assert cohorts[date(2026, 1, 1)].active == (1, 0, 0), "both of D's orders fell in January"
    assert cohorts[date(2026, 3, 1)].active == (1,), "no month after the current one"
    assert cohorts[date(2025, 6, 1)].active == (1,) + (0,) * 9


def test_the_heat_map_shows_only_the_latest_cohort_months() -> None:
    cohorts = tally(cohort_months=4).result().cohorts
    assert [c.month for c in cohorts] == [date(2025, 12, 1), date(2026, 1, 1), date(2026, 3, 1)]
    assert cohorts[0].active == (3, 1, 1, 0)


def test_the_rfm_grid_places_buyers_by_recency_against_the_mean_of_f_and_m() -> None:
    grid = tally().result().rfm_grid
    assert grid[4][4] == 1, "A: R 5, FM (4 + 5) / 2 rounded half up = 5"
    assert grid[2][2] == 1, "B: R 3, FM (3 + 2) / 2 rounded half up = 3"
    assert grid[0][0] == 1, "G: R 1, FM 1"
    assert sum(map(sum, grid)) == 3, "unscored buyers are not on the grid"


@pytest.mark.parametrize(
    ("base_filter", "who"),
    [
        (BaseFilter(store="st-1"), 2),
        (BaseFilter(region="north"), 1),
        (BaseFilter(since=date(2026, 1, 1)), 2),
        (BaseFilter(until=date(2025, 12, 31)), 4),
        (BaseFilter(store="st-2", since=date(2025, 12, 1), until=date(2026, 1, 31)), 2),
    ],
    ids=["store", "region", "first-order-since", "first-order-until", "store-and-period"],
)
def test_filters_narrow_the_base(base_filter: BaseFilter, who: int) -> None:
    assert tally(base_filter).result().buyers == who


def test_a_period_bounds_the_heat_map_at_its_last_month() -> None:
    cohorts = tally(BaseFilter(until=date(2025, 12, 31)), cohort_months=3).result().cohorts
    assert [c.month for c in cohorts] == [date(2025, 12, 1)]


def test_an_empty_base_has_no_rates_rather_than_zero() -> None:
    kpis = KpiTally(NOW).result()
    assert (kpis.early_repeat_rate, kpis.second_order_rate, kpis.churn_rate) == (None, None, None)
    assert kpis.clv_average is None


def test_a_second_order_no_longer_kept_is_unknown_not_guessed() -> None:
    many = buyer("H", at(2025, 1, 1), at(2025, 1, 5))
    many.orders_count = 150
    assert second_order_at(many) is None
    counted = KpiTally(NOW)
    counted.add(many)
    kpis = counted.result()
    assert kpis.early_repeat_base == 0
    assert kpis.second_order_buyers == 1
