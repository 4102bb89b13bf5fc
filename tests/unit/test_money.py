"""Money that adds up: one shop currency (others refused, or converted at a configured
rate) and refunds never above what their order left (an order nudge never saw: up to a
cap)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.domain.events import PurchaseEvent, RefundEvent
from shared.domain.money import OrderBalance, OrderBook, RefundRefused, RefundRules, ShopCurrency
from tests.unit.builders import event, purchase


def refund(amount: str, order_id: str = "o-1", currency: str = "RUB") -> RefundEvent:
    found = event("refund", {"order_id": order_id, "amount": amount, "currency": currency})
    assert isinstance(found, RefundEvent)
    return found


def in_dollars(total: str) -> PurchaseEvent:
    found = event(
        "purchase",
        {
            "order_id": "o-usd",
            "total": total,
            "currency": "USD",
            "items": [{"sku": "tea", "quantity": 2, "price": "5.25"}],
        },
    )
    assert isinstance(found, PurchaseEvent)
    return found


def book(
    *balances: OrderBalance, cap: str = "0", merged: dict[str, str] | None = None
) -> OrderBook:
    heads = merged or {}

    def same_buyer(a: str, b: str) -> bool:
        return heads.get(a, a) == heads.get(b, b)

    return OrderBook({b.order_id: b for b in balances}, RefundRules(Decimal(cap)), same_buyer)


# --- the shop's currency -------------------------------------------------------------


def test_a_purchase_in_another_currency_is_refused_at_its_currency_without_a_rate() -> None:
    shop = ShopCurrency("RUB")
    assert shop.refusal(purchase("10.00")) is None
    where, detail = shop.refusal(in_dollars("10.50")) or ("", "")
    assert where == "currency"
    assert "RUB" in detail
    assert "USD" in detail
    assert shop.refusal(refund("1.00", currency="EUR")) is not None


def test_with_a_rate_the_amounts_are_converted_once_into_the_shops_currency() -> None:
    shop = ShopCurrency("RUB", {"USD": Decimal("92.5")})
    assert shop.refusal(in_dollars("10.50")) is None

    converted = shop.converted(in_dollars("10.50"))

    assert isinstance(converted, PurchaseEvent)
    assert converted.data.currency == "RUB"
    assert converted.data.total == Decimal("971.25")
    assert converted.data.items[0].price == Decimal("485.63"), "5.25 x 92.5, half up"
    assert shop.converted(converted) == converted, "already in the shop's currency"
    back = shop.converted(refund("2.00", currency="USD"))
    assert isinstance(back, RefundEvent)
    assert (back.data.amount, back.data.currency) == (Decimal("185.00"), "RUB")


def test_an_amount_too_large_once_converted_is_refused_at_the_amount() -> None:
    shop = ShopCurrency("RUB", {"USD": Decimal("1000")})
    where, _detail = shop.refusal(in_dollars("999999999999.00")) or ("", "")
    assert where == "total"


# --- refunds -------------------------------------------------------------------------


def test_refunds_of_an_order_add_up_to_at_most_what_it_was_paid() -> None:
    orders = book()
    orders.take(purchase("1000.00", order_id="o-1"), "p-1")
    assert orders.take(refund("600.00"), "p-1") is None
    assert orders.take(refund("400.00"), "p-1") is None

    with pytest.raises(RefundRefused, match=r"more than the 0\.00 left of its 1000\.00"):
        orders.take(refund("0.01"), "p-1")
    assert orders.changed["o-1"].refunded == Decimal("1000.00"), "the refused one left nothing"


def test_a_refund_for_an_order_never_seen_is_refused_above_the_cap() -> None:
    with pytest.raises(RefundRefused, match="never saw"):
        book().take(refund("100000.00", order_id="o-unknown"), "p-1")
    assert book().changed == {}


def test_an_order_never_seen_may_have_refunds_up_to_the_cap_in_all_with_a_note() -> None:
    orders = book(cap="500")
    note = orders.take(refund("300.00", order_id="o-old"), "p-1")
    assert note is not None
    assert "never saw" in note
    assert orders.take(refund("200.00", order_id="o-old"), "p-1") is not None
    with pytest.raises(RefundRefused, match=r"500\.00 refunded before"):
        orders.take(refund("0.01", order_id="o-old"), "p-1")


def test_a_refund_of_another_buyers_order_is_refused_and_of_a_merged_buyers_taken() -> None:
    placed = OrderBalance("o-1", "p-absorbed", Decimal("800.00"), purchases=1)
    with pytest.raises(RefundRefused, match="another buyer's"):
        book(placed).take(refund("100.00"), "p-stranger")

    merged = book(
        OrderBalance("o-1", "p-absorbed", Decimal("800.00"), purchases=1),
        merged={"p-absorbed": "p-survivor"},
    )
    assert merged.take(refund("100.00"), "p-survivor") is None
    assert merged.changed["o-1"].left == Decimal("700.00")


def test_a_purchase_arriving_after_a_refund_of_its_order_opens_the_rest() -> None:
    orders = book(cap="50")
    orders.take(refund("50.00", order_id="o-late"), "p-1")
    orders.take(purchase("300.00", order_id="o-late"), "p-1")
    assert orders.take(refund("250.00", order_id="o-late"), "p-1") is None
    with pytest.raises(RefundRefused):
        orders.take(refund("0.01", order_id="o-late"), "p-1")
