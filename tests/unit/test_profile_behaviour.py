"""What a buyer's behaviour leaves on the profile: rhythm, baskets, categories, custom
events per day, opens by local hour, and the scores the scoring job sets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.domain.events import AnyEvent
from shared.domain.profile import (
    BASKET_HISTORY,
    ORDER_HISTORY,
    SCORE_FIELDS,
    TRACK_HORIZON_DAYS,
    Basket,
    Profile,
    Purchases,
    Scores,
    absorb,
    apply_event,
    apply_scores,
)
from tests.unit.builders import T0, event

DAY = timedelta(days=1)


def order(
    at: datetime,
    *items: tuple[str, str | None, int],
    store: str | None = None,
    number: int = 0,
) -> AnyEvent:
    """A purchase of ``items`` (sku, category, quantity) at ``at``."""
    payload: dict[str, Any] = {
        "order_id": f"o-{number}-{at.isoformat()}",
        "total": "100.00",
        "items": [
            {"sku": sku, "category": category, "quantity": quantity, "price": "10.00"}
            for sku, category, quantity in items
        ],
    }
    parsed = event("purchase", payload, at, event_id=f"evt-{number}-{at.isoformat()}")
    if store is None:
        return parsed
    return parsed.model_copy(update={"store_id": store})


def buyer_ordering_at(*moments: datetime) -> Profile:
    profile = Profile(id="p-1")
    for number, at in enumerate(moments):
        apply_event(profile, order(at, number=number))
    return profile


# --- rhythm --------------------------------------------------------------------------


def test_a_buyer_with_one_order_has_no_rhythm_yet() -> None:
    profile = buyer_ordering_at(T0)

    assert profile.order_moments == [T0]
    assert profile.median_days_between_orders is None
    assert profile.mean_days_between_orders is None
    assert profile.expected_next_order_at is None


def test_monthly_buyer_is_expected_again_a_median_gap_after_the_last_order() -> None:
    profile = buyer_ordering_at(T0, T0 + 30 * DAY, T0 + 60 * DAY, T0 + 100 * DAY)

    assert profile.median_days_between_orders == 30
    assert profile.mean_days_between_orders is not None
    assert round(profile.mean_days_between_orders, 6) == round(100 / 3, 6)
    assert profile.expected_next_order_at == T0 + 130 * DAY


def test_orders_arriving_out_of_order_give_the_same_rhythm() -> None:
    in_order = buyer_ordering_at(T0, T0 + 10 * DAY, T0 + 40 * DAY)
    shuffled = buyer_ordering_at(T0 + 40 * DAY, T0, T0 + 10 * DAY)

    assert shuffled.order_moments == in_order.order_moments
    assert shuffled.median_days_between_orders == 20


def test_only_the_latest_hundred_order_moments_are_kept() -> None:
    moments = [T0 + n * DAY for n in range(ORDER_HISTORY + 5)]
    profile = buyer_ordering_at(*moments)

    assert profile.order_moments == moments[5:]
    assert profile.orders_count == ORDER_HISTORY + 5

    changed = apply_event(profile, order(T0 - DAY, number=999))  # older than all kept
    assert "order_moments" not in changed
    assert profile.order_moments == moments[5:]


def test_every_purchase_reports_the_order_moments_changed() -> None:
    profile = buyer_ordering_at(T0)
    changed = apply_event(profile, order(T0 - DAY, number=1))
    assert "order_moments" in changed
    assert "last_order_at" not in changed


# --- what was bought, and where ------------------------------------------------------


def test_a_purchase_counts_per_category_sku_and_store_once_per_order() -> None:
    profile = Profile(id="p-1")

    changed = apply_event(
        profile,
        order(
            T0,
            ("cat-food-1kg", "pet-food", 2),
            ("cat-food-1kg", "pet-food", 1),
            ("toy-mouse", "pet-toys", 1),
            store="msk-01",
        ),
    )

    assert profile.skus == {
        "cat-food-1kg": Purchases(orders=1, quantity=3, last_at=T0),
        "toy-mouse": Purchases(orders=1, quantity=1, last_at=T0),
    }
    assert profile.categories == {
        "pet-food": Purchases(orders=1, quantity=3, last_at=T0),
        "pet-toys": Purchases(orders=1, quantity=1, last_at=T0),
    }
    assert profile.stores == {"msk-01": Purchases(orders=1, quantity=4, last_at=T0)}
    assert {"skus", "categories", "stores", "baskets"} <= changed


def test_a_purchase_without_items_or_store_changes_no_purchase_maps() -> None:
    profile = Profile(id="p-1")
    changed = apply_event(profile, order(T0))
    assert not changed & {"skus", "categories", "stores", "baskets"}
    assert (profile.skus, profile.categories, profile.stores, profile.baskets) == ({}, {}, {}, [])


def test_an_item_without_category_counts_for_its_sku_only() -> None:
    profile = Profile(id="p-1")
    changed = apply_event(profile, order(T0, ("gift-card", None, 1)))
    assert profile.skus == {"gift-card": Purchases(1, 1, T0)}
    assert profile.categories == {}
    assert "categories" not in changed


def test_the_last_time_is_the_latest_order_whatever_the_arrival_order() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, order(T0 + 5 * DAY, ("milk", "dairy", 1), number=1))
    apply_event(profile, order(T0, ("milk", "dairy", 2), number=2))
    assert profile.categories["dairy"] == Purchases(orders=2, quantity=3, last_at=T0 + 5 * DAY)


# --- the standard basket -------------------------------------------------------------


def test_standard_basket_holds_what_is_in_at_least_half_the_orders_with_usual_quantity() -> None:
    profile = Profile(id="p-1")
    baskets: list[tuple[tuple[str, str | None, int], ...]] = [
        (("milk", "dairy", 2), ("bread", "bakery", 1)),
        (("milk", "dairy", 2),),
        (("milk", "dairy", 3), ("eggs", "dairy", 10)),
        (("milk", "dairy", 2), ("bread", "bakery", 2)),
    ]
    for number, items in enumerate(baskets):
        apply_event(profile, order(T0 + number * 7 * DAY, *items, number=number))

    # milk in 4 of 4 (median 2), bread in 2 of 4 (median 1.5, rounded half up), eggs 1 of 4.
    assert profile.standard_basket == [("milk", 2), ("bread", 2)]


def test_one_order_is_no_standard_basket() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, order(T0, ("milk", "dairy", 2)))
    assert profile.standard_basket == []


def test_only_the_latest_baskets_are_kept() -> None:
    profile = Profile(id="p-1")
    for n in range(BASKET_HISTORY + 3):
        apply_event(profile, order(T0 + n * DAY, (f"sku-{n}", None, 1), number=n))

    assert len(profile.baskets) == BASKET_HISTORY
    assert profile.baskets[0] == Basket(T0 + 3 * DAY, {"sku-3": 1})
    assert len(profile.skus) == BASKET_HISTORY + 3  # the per-SKU counts stay whole


# --- custom events per day -----------------------------------------------------------


def test_custom_events_are_counted_per_utc_day() -> None:
    profile = Profile(id="p-1")
    late_evening_moscow = datetime(2024, 5, 1, 23, 30, tzinfo=UTC)
    for at in (T0, T0 + timedelta(hours=2), late_evening_moscow, T0 + DAY):
        apply_event(profile, event("track", {"name": "cart_updated"}, at))

    assert profile.tracked_days == {"cart_updated": {date(2024, 5, 1): 3, date(2024, 5, 2): 1}}


def test_days_older_than_the_horizon_are_dropped() -> None:
    profile = Profile(id="p-1")
    apply_event(profile, event("track", {"name": "viewed"}, T0))
    apply_event(profile, event("track", {"name": "viewed"}, T0 + (TRACK_HORIZON_DAYS - 1) * DAY))
    assert len(profile.tracked_days["viewed"]) == 2

    apply_event(profile, event("track", {"name": "viewed"}, T0 + TRACK_HORIZON_DAYS * DAY))

    assert set(profile.tracked_days["viewed"]) == {
        (T0 + (TRACK_HORIZON_DAYS - 1) * DAY).date(),
        (T0 + TRACK_HORIZON_DAYS * DAY).date(),
    }
    assert profile.tracked["viewed"].count == 3  # the running total keeps everything


# --- opens by local hour -------------------------------------------------------------


def opened(at: datetime, channel: str = "email") -> AnyEvent:
    return event(
        "message_opened",
        {"message_key": "m-1", "channel": channel},
        at,
        customer={"email": "anna@shop.ru"},
    )


def test_opens_are_counted_by_the_hour_of_the_buyers_timezone_trait() -> None:
    profile = Profile(id="p-1", traits={"timezone": "Europe/Moscow"})

    changed = apply_event(profile, opened(datetime(2024, 5, 1, 21, 30, tzinfo=UTC)))

    assert profile.open_hours["email"][0] == 1  # 00:30 in Moscow
    assert sum(profile.open_hours["email"]) == 1
    assert "open_hours" in changed


def test_without_a_timezone_trait_the_default_zone_is_used() -> None:
    utc_buyer, far_east_buyer = Profile(id="p-1"), Profile(id="p-2")
    at = datetime(2024, 5, 1, 21, 30, tzinfo=UTC)

    apply_event(utc_buyer, opened(at))
    apply_event(far_east_buyer, opened(at), default_timezone="Asia/Vladivostok")

    assert utc_buyer.open_hours["email"][21] == 1
    assert far_east_buyer.open_hours["email"][7] == 1  # UTC+10


def test_a_timezone_trait_that_names_no_zone_falls_back_to_the_default() -> None:
    profile = Profile(id="p-1", traits={"timezone": "Mars/Olympus"})
    apply_event(profile, opened(datetime(2024, 5, 1, 10, 0, tzinfo=UTC)), default_timezone="UTC")
    assert profile.open_hours["email"][10] == 1


def test_opens_are_kept_per_channel_and_clicks_do_not_count() -> None:
    profile = Profile(id="p-1")
    at = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    apply_event(profile, opened(at, "push"))
    changed = apply_event(
        profile,
        event("message_clicked", {"message_key": "m", "channel": "email"}, at),
    )
    assert set(profile.open_hours) == {"push"}
    assert "open_hours" not in changed


# --- scores --------------------------------------------------------------------------


CHAMPION = Scores(
    rfm_r=5,
    rfm_f=5,
    rfm_m=4,
    rfm_segment="champions",
    p_alive=0.93,
    expected_purchases=2.4,
    expected_spend=Decimal("2500.00"),
    clv=Decimal("42000.00"),
    clv_low=Decimal("36000.00"),
    clv_high=Decimal("49000.00"),
    clv_share=0.02,
    scored_at=T0,
)


def test_scores_report_the_fields_they_changed() -> None:
    profile = Profile(id="p-1")

    assert apply_scores(profile, CHAMPION) == frozenset(SCORE_FIELDS)
    assert profile.rfm_segment == "champions"
    assert profile.clv == Decimal("42000.00")

    rescored = Scores(**{**CHAMPION.__dict__, "p_alive": 0.5, "scored_at": T0 + DAY})
    assert apply_scores(profile, rescored) == {"p_alive", "scored_at"}
    assert apply_scores(profile, rescored) == frozenset()


# --- merging two profiles of one buyer -----------------------------------------------


def test_merging_counts_each_order_once_and_interleaves_the_history() -> None:
    survivor = Profile(id="known")
    apply_event(survivor, order(T0, ("milk", "dairy", 2), store="msk-01", number=1))
    apply_event(survivor, order(T0 + 30 * DAY, ("milk", "dairy", 1), number=2))
    other = Profile(id="anonymous")
    apply_event(other, order(T0 + 10 * DAY, ("milk", "dairy", 3), ("bread", None, 1), number=3))
    apply_event(other, event("track", {"name": "cart_updated"}, T0))
    apply_event(survivor, event("track", {"name": "cart_updated"}, T0 + timedelta(hours=1)))
    apply_event(other, opened(datetime(2024, 5, 1, 23, 0, tzinfo=UTC)))
    apply_event(survivor, opened(datetime(2024, 5, 2, 23, 0, tzinfo=UTC)))
    apply_scores(other, CHAMPION)

    absorb(survivor, other)

    assert survivor.orders_count == 3
    assert survivor.order_moments == [T0, T0 + 10 * DAY, T0 + 30 * DAY]
    assert survivor.median_days_between_orders == 15
    assert [b.at for b in survivor.baskets] == [T0, T0 + 10 * DAY, T0 + 30 * DAY]
    assert survivor.categories == {"dairy": Purchases(3, 6, T0 + 30 * DAY)}
    assert survivor.skus["milk"] == Purchases(3, 6, T0 + 30 * DAY)
    assert survivor.skus["bread"] == Purchases(1, 1, T0 + 10 * DAY)
    assert survivor.stores == {"msk-01": Purchases(1, 2, T0)}
    assert survivor.tracked_days == {"cart_updated": {T0.date(): 2}}
    assert survivor.open_hours["email"][23] == 2
    assert survivor.rfm_segment == "champions"  # the survivor was never scored


def test_merging_keeps_the_survivors_scores_when_it_has_some() -> None:
    survivor, other = Profile(id="known"), Profile(id="anonymous")
    apply_scores(survivor, Scores(rfm_segment="at-risk", p_alive=0.2, scored_at=T0))
    apply_scores(other, CHAMPION)

    absorb(survivor, other)

    assert (survivor.rfm_segment, survivor.p_alive) == ("at-risk", 0.2)


def test_merging_keeps_the_order_history_bounded() -> None:
    survivor = buyer_ordering_at(*(T0 + n * DAY for n in range(ORDER_HISTORY)))
    other = buyer_ordering_at(*(T0 + (n + 0.5) * DAY for n in range(10)))

    absorb(survivor, other)

    assert len(survivor.order_moments) == ORDER_HISTORY
    assert survivor.order_moments[-1] == T0 + (ORDER_HISTORY - 1) * DAY
    assert survivor.order_moments == sorted(survivor.order_moments)
