"""Reading a shop's transactions CSV into purchase events (``nudge replay``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from shared.domain.transactions import TransactionsError, read_transactions


def test_rows_of_one_order_become_one_purchase_with_its_items() -> None:
    found = read_transactions(
        """customer_id,date,amount,order_id,sku,category,quantity,store_id
c1,2026-03-01T10:15:00+03:00,300.00,A-1,milk,dairy,2,msk-01
c2,2026-03-02,99.90,B-7,bread,bakery,1,msk-02
c1,2026-03-01T10:15:00+03:00,1200.50,A-1,cheese,dairy,1,msk-01
""".splitlines()
    )
    assert found.rows == 3
    assert [o.order_id for o in found.orders] == ["A-1", "B-7"]
    first, second = found.events
    assert first.data.total == Decimal("1500.50")
    assert [(i.sku, i.quantity, i.price) for i in first.data.items] == [
        ("milk", 2, Decimal("150.00")),
        ("cheese", 1, Decimal("1200.50")),
    ]
    assert first.customer.id == "c1"
    assert first.store_id == "msk-01"
    assert first.occurred_at == datetime(2026, 3, 1, 7, 15, tzinfo=UTC)
    assert second.data.total == Decimal("99.90")
    assert found.buyers == 2
    assert found.bad_rows == []


def test_without_order_ids_one_customer_at_one_moment_is_one_order() -> None:
    found = read_transactions(
        """Customer_ID,Date,Amount
c1,2026-03-01,100
c1,2026-03-01,50.5
c1,2026-03-02,10
c2,2026-03-01,7
""".splitlines()
    )
    assert sorted((e.customer.id, str(e.data.total)) for e in found.events) == [
        ("c1", "10.00"),
        ("c1", "150.50"),
        ("c2", "7.00"),
    ]
    assert all(e.data.items == [] for e in found.events), "no sku, no items"


def test_event_ids_come_from_the_content_so_a_second_reading_gives_the_same() -> None:
    text = "customer_id,date,amount,order_id\nc1,2026-03-01,10,A\nc2,2026-03-01,5,\n"
    once = [e.event_id for e in read_transactions(text.splitlines()).events]
    again = [e.event_id for e in read_transactions(text.splitlines()).events]
    assert once == again
    assert len(set(once)) == 2
    other = read_transactions(["customer_id,date,amount,order_id", "c1,2026-03-01,10,B"])
    assert other.events[0].event_id not in once


def test_a_date_without_offset_is_read_in_the_given_time_zone() -> None:
    text = (
        "customer_id,date,amount\nc1,2026-03-01 18:30,10\nc2,2026-03-01,10\nc3,2026-03-01T10:00Z,1"
    )
    found = read_transactions(text.splitlines(), timezone=ZoneInfo("Europe/Moscow"))
    at = {e.customer.id: e.occurred_at for e in found.events}
    assert at["c1"] == datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    assert at["c2"] == datetime(2026, 2, 28, 21, 0, tzinfo=UTC)
    assert at["c3"] == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_purchases_come_in_time_order() -> None:
    text = "customer_id,date,amount\nc1,2026-03-05,1\nc2,2026-03-01,1\nc3,2026-03-03,1"
    found = read_transactions(text.splitlines())
    assert [e.customer.id for e in found.events] == ["c2", "c3", "c1"]
    assert found.first_at == datetime(2026, 3, 1, tzinfo=UTC)
    assert found.last_at == datetime(2026, 3, 5, tzinfo=UTC)


def test_bad_rows_are_named_by_line_and_column_and_spoil_their_order() -> None:
    text = """customer_id,date,amount,order_id,quantity
c1,2026-03-01,10,A,1
c1,2026-13-01,10,A,1
,2026-03-01,5,B,1
c3,2026-03-01,12.345,C,1
c4,2026-03-01,-5,D,1
c5,2026-03-01,5,E,0
c6,2026-03-01,5,F,1
c7,2026-03-01,5,F,1
c8,2026-03-01,7,G,1
"""
    found = read_transactions(text.splitlines())
    assert [str(b) for b in found.bad_rows] == [
        "line 3, column date: not an ISO 8601 date or date and time (2026-03-01, 2026-03-01T18:30)",
        "line 4, column customer_id: is empty",
        "line 5, column amount: not an amount with at most two decimals (1234.50)",
        "line 6, column amount: negative: a return is a refund, not a purchase row",
        "line 7, column quantity: not a number more than 0 and at most 100000",
        "line 9, column customer_id: order on line 8 belongs to another customer",
    ]
    assert [e.data.order_id for e in found.events] == ["G"], "A and F are spoiled by a bad row"
    assert found.skipped_orders == 6, "A to F: each order a bad row spoils, once"


def test_a_card_number_makes_the_row_bad_and_is_never_repeated() -> None:
    found = read_transactions(
        "customer_id,date,amount,sku\nc1,2026-03-01,10,paid 4111 1111 1111 1111\n".splitlines()
    )
    (bad,) = found.bad_rows
    assert bad.line == 2
    assert bad.column == "sku"
    assert "4111" not in str(bad)
    assert found.events == []


def test_a_header_without_a_required_column_is_refused() -> None:
    with pytest.raises(TransactionsError, match="lacks amount"):
        read_transactions(["customer_id,date,total", "c1,2026-03-01,10"])
    with pytest.raises(TransactionsError, match="empty"):
        read_transactions([])


def test_weights_comma_decimals_repeats_and_unknown_columns() -> None:
    text = """customer_id,date,amount,order_id,sku,quantity,note
c1,2026-03-01,"45,60",A,apples,0.35,hello
c1,2026-03-01,10.00,A,gum,1,
c1,2026-03-01,10.00,A,gum,1,
"""
    found = read_transactions(text.splitlines())
    (event,) = found.events
    assert event.data.total == Decimal("65.60")
    assert [(i.sku, i.quantity, i.price) for i in event.data.items] == [
        ("apples", 1, Decimal("45.60")),
        ("gum", 1, Decimal("10.00")),
        ("gum", 1, Decimal("10.00")),
    ]
    assert found.repeated_rows == 1
    assert found.ignored_columns == ("note",)


def test_a_category_without_a_sku_is_still_an_item() -> None:
    found = read_transactions(
        "customer_id,date,amount,category\nc1,2026-03-01,10,pet-food\n".splitlines()
    )
    (item,) = found.events[0].data.items
    assert (item.sku, item.category) == ("pet-food", "pet-food")


def test_an_order_whose_only_row_is_bad_is_counted_as_skipped_once() -> None:
    text = """customer_id,date,amount,order_id
c1,2026-03-01,10,A
c2,2026-03-01,ten,B
c3,2026-03-01,5,C
c3,2026-03-01,oops,C
"""
    found = read_transactions(text.splitlines())
    assert [e.data.order_id for e in found.events] == ["A"]
    assert found.skipped_orders == 2, "B (its one row is bad) and C (one of its two rows is)"
