"""The v1 event contract: what a shop may post, what is refused, and how events are keyed."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.events import (
    EVENT_TYPES,
    IDENTIFIER_STRENGTH,
    Customer,
    EventBatch,
    IdentifyEvent,
    MessageBouncedEvent,
    MessageClickedEvent,
    MessageComplainedEvent,
    MessageDeliveredEvent,
    MessageOpenedEvent,
    Plausible,
    PurchaseEvent,
    RefundEvent,
    TrackEvent,
    UnsubscribedEvent,
    event_adapter,
    parse_event,
    read_published_event,
    validate_event,
)
from tests.unit.builders import T0, identify_payload, purchase_payload

FULL_CUSTOMER = {
    "profile_id": "0b3e2c1a-7f4d-4e5b-9a8c-1d2e3f4a5b6c",
    "id": "c-42",
    "loyalty_card": "LC-0042",
    "phone": "+79161234567",
    "email": "anna@shop.ru",
    "app_install_id": "app-7",
    "bank_card_token": "tok-9",
}


def refusal(raw: dict[str, Any] | str) -> list[tuple[tuple[str | int, ...], str]]:
    """Parse ``raw``, which must be refused; return each error as (location, type)."""
    with pytest.raises(ValidationError) as caught:
        parse_event(raw)
    return [(tuple(error["loc"]), error["type"]) for error in caught.value.errors()]


def with_total(total: Any) -> dict[str, Any]:
    payload = purchase_payload()
    payload["data"]["total"] = total
    return payload


# --- what parses ---------------------------------------------------------------------


def test_purchase_parses_from_a_dict_and_from_json() -> None:
    payload = purchase_payload("1499.90")

    from_dict = parse_event(payload)
    from_json = parse_event(json.dumps(payload))
    from_bytes = parse_event(json.dumps(payload).encode())

    assert isinstance(from_dict, PurchaseEvent)
    assert from_dict == from_json == from_bytes
    assert from_dict.data.total == Decimal("1499.90")
    assert from_dict.data.currency == "RUB"
    assert from_dict.occurred_at == T0


def test_the_type_field_chooses_the_kind_of_event() -> None:
    payload = identify_payload(email="anna@shop.ru")
    payload["data"] = {"traits": {"has_kids": True}, "consents": {"email": True}}

    event = parse_event(payload)

    assert isinstance(event, IdentifyEvent)
    assert event.data.traits == {"has_kids": True}
    assert event.data.consents == {"email": True}


def test_identify_without_data_parses_with_empty_traits() -> None:
    event = parse_event(identify_payload(phone="+79161234567"))
    assert isinstance(event, IdentifyEvent)
    assert event.data.traits == {}
    assert event.data.consents == {}


def test_occurred_at_keeps_its_offset() -> None:
    payload = purchase_payload()
    payload["occurred_at"] = "2024-05-01T15:00:00+03:00"

    event = parse_event(payload)

    assert event.occurred_at == T0
    assert event.occurred_at.utcoffset() == timedelta(hours=3)


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        ("10.12", Decimal("10.12")),
        (10.1, Decimal("10.1")),
        (0, Decimal(0)),
        ("10.120", Decimal("10.12")),
    ],
)
def test_totals_with_at_most_two_decimals_parse_exactly(total: Any, expected: Decimal) -> None:
    event = parse_event(json.dumps(with_total(total)))
    assert isinstance(event, PurchaseEvent)
    assert event.data.total == expected


def test_events_are_immutable_once_parsed() -> None:
    event = parse_event(purchase_payload())
    with pytest.raises(ValidationError):
        event.event_id = "other"  # type: ignore[misc]


# --- what is refused -----------------------------------------------------------------


@pytest.mark.parametrize(
    "customer",
    [{}, dict.fromkeys(IDENTIFIER_STRENGTH)],
    ids=["empty", "all-null"],
)
def test_customer_without_any_identifier_is_refused(customer: dict[str, Any]) -> None:
    errors = refusal(purchase_payload(customer=customer))
    assert errors == [(("purchase", "customer"), "value_error")]


def test_the_refusal_names_every_identifier_a_customer_may_carry() -> None:
    with pytest.raises(
        ValidationError, match="at least one identifier: profile_id, id, loyalty_card, phone"
    ):
        Customer()


def test_blank_identifier_is_refused() -> None:
    errors = refusal(purchase_payload(customer={"email": "   "}))
    assert errors == [(("purchase", "customer", "email"), "string_too_short")]


@pytest.mark.parametrize(
    ("where", "expected_loc"),
    [
        ((), ("purchase", "coupon")),
        (("customer",), ("purchase", "customer", "coupon")),
        (("data",), ("purchase", "data", "coupon")),
    ],
)
def test_unknown_fields_are_refused(where: tuple[str, ...], expected_loc: tuple[str, ...]) -> None:
    payload = purchase_payload()
    node = payload
    for key in where:
        node = node[key]
    node["coupon"] = "SPRING"

    assert refusal(payload) == [(expected_loc, "extra_forbidden")]


def test_unknown_field_in_an_item_is_refused() -> None:
    payload = purchase_payload()
    payload["data"]["items"] = [{"sku": "A-1", "price": "10.00", "colour": "red"}]

    assert refusal(payload) == [(("purchase", "data", "items", 0, "colour"), "extra_forbidden")]


@pytest.mark.parametrize("occurred_at", ["2024-05-01T12:00:00", "2024-05-01 12:00"])
def test_occurred_at_without_an_offset_is_refused(occurred_at: str) -> None:
    payload = purchase_payload()
    payload["occurred_at"] = occurred_at

    assert refusal(payload) == [(("purchase", "occurred_at"), "timezone_aware")]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(json.dumps(with_total(10.123)), id="json-float"),
        pytest.param(with_total(10.123), id="python-float"),
        pytest.param(with_total("10.123"), id="string"),
        pytest.param(json.dumps(with_total("0.001")), id="string-in-json"),
    ],
)
def test_total_with_more_than_two_decimals_is_refused(raw: Any) -> None:
    assert refusal(raw) == [(("purchase", "data", "total"), "decimal_max_places")]


@pytest.mark.parametrize("total", ["-0.01", -5, "-100"])
def test_negative_total_is_refused(total: Any) -> None:
    assert refusal(with_total(total)) == [(("purchase", "data", "total"), "greater_than_equal")]


def test_negative_item_price_is_refused() -> None:
    payload = purchase_payload()
    payload["data"]["items"] = [{"sku": "A-1", "price": "-1.00"}]

    assert refusal(payload) == [(("purchase", "data", "items", 0, "price"), "greater_than_equal")]


@pytest.mark.parametrize("total", ["NaN", "Infinity", "ten"])
def test_total_that_is_not_a_finite_number_is_refused(total: str) -> None:
    ((loc, _),) = refusal(with_total(total))
    assert loc == ("purchase", "data", "total")


@pytest.mark.parametrize("event_type", ["return", "PURCHASE", "message_sent", ""])
def test_unknown_event_type_is_refused_by_the_discriminator(event_type: str) -> None:
    payload = purchase_payload()
    payload["type"] = event_type

    assert refusal(payload) == [((), "union_tag_invalid")]


def test_event_without_a_type_is_refused() -> None:
    payload = purchase_payload()
    del payload["type"]

    assert refusal(payload) == [((), "union_tag_not_found")]


def test_identify_carrying_purchase_data_is_refused() -> None:
    payload = purchase_payload()
    payload["type"] = "identify"

    locations = {loc for loc, kind in refusal(payload) if kind == "extra_forbidden"}
    assert locations == {
        ("identify", "data", "order_id"),
        ("identify", "data", "total"),
        ("identify", "data", "currency"),
    }


def test_purchase_without_order_id_is_refused() -> None:
    payload = purchase_payload()
    del payload["data"]["order_id"]

    assert refusal(payload) == [(("purchase", "data", "order_id"), "missing")]


# --- batches -------------------------------------------------------------------------


def batch_of(size: int) -> dict[str, Any]:
    return {"events": [purchase_payload(order_id=f"o-{n}") for n in range(size)]}


def test_batch_of_1000_events_is_accepted() -> None:
    assert len(EventBatch.model_validate(batch_of(1000)).events) == 1000


@pytest.mark.parametrize(("size", "kind"), [(1001, "too_long"), (0, "too_short")])
def test_batch_larger_than_1000_or_empty_is_refused(size: int, kind: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EventBatch.model_validate(batch_of(size))
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("events",), kind)]


def test_batch_refusal_points_at_the_bad_event_by_index() -> None:
    payload = batch_of(3)
    payload["events"][2]["data"]["total"] = "-1"

    with pytest.raises(ValidationError) as caught:
        EventBatch.model_validate(payload)
    assert [e["loc"] for e in caught.value.errors()] == [("events", 2, "purchase", "data", "total")]


def test_batch_holds_both_kinds_of_event() -> None:
    batch = EventBatch.model_validate({"events": [purchase_payload(), identify_payload()]})
    assert [type(e) for e in batch.events] == [PurchaseEvent, IdentifyEvent]


# --- keys ----------------------------------------------------------------------------


def test_identifier_strength_is_profile_id_card_phone_email_app_then_bank_token() -> None:
    assert IDENTIFIER_STRENGTH == (
        "profile_id",
        "id",
        "loyalty_card",
        "phone",
        "email",
        "app_install_id",
        "bank_card_token",
    )


@pytest.mark.parametrize("strongest", IDENTIFIER_STRENGTH)
def test_event_key_uses_the_strongest_identifier_present(strongest: str) -> None:
    weaker = IDENTIFIER_STRENGTH[IDENTIFIER_STRENGTH.index(strongest) :]
    # Present them weakest first: the key must not depend on the order they came in.
    customer = {kind: FULL_CUSTOMER[kind] for kind in reversed(weaker)}

    event = parse_event(purchase_payload(customer=customer))

    assert event.key == f"{strongest}:{FULL_CUSTOMER[strongest]}"
    assert event.customer.strongest() == (strongest, FULL_CUSTOMER[strongest])


def test_identifiers_are_listed_strongest_first() -> None:
    customer = Customer(email="anna@shop.ru", bank_card_token="tok-9", loyalty_card="LC-1")
    assert list(customer.identifiers()) == ["loyalty_card", "email", "bank_card_token"]


def test_same_buyer_events_share_a_key_whatever_the_event() -> None:
    purchase_event = parse_event(purchase_payload(customer={"id": "c-1", "email": "a@b.ru"}))
    identify_event = parse_event(identify_payload(id="c-1", phone="+79161234567"))
    assert purchase_event.key == identify_event.key == "id:c-1"


def test_payload_passed_in_is_not_changed_by_parsing() -> None:
    payload = purchase_payload(customer={"email": "  anna@shop.ru "})
    before = copy.deepcopy(payload)

    event = parse_event(payload)

    assert payload == before
    assert event.customer.email == "anna@shop.ru"


# --- the other event types -----------------------------------------------------------

MESSAGE = {"message_key": "win-back-30d-abc", "channel": "email"}


def typed(type_: str, data: dict[str, Any] | None) -> dict[str, Any]:
    payload = purchase_payload()
    payload["type"] = type_
    if data is None:
        del payload["data"]
    else:
        payload["data"] = data
    return payload


def test_the_contract_has_every_v1_event_type() -> None:
    assert EVENT_TYPES == (
        "purchase",
        "refund",
        "identify",
        "track",
        "message_delivered",
        "message_opened",
        "message_clicked",
        "message_bounced",
        "message_complained",
        "unsubscribed",
    )


@pytest.mark.parametrize(
    ("type_", "data", "model"),
    [
        ("refund", {"order_id": "o-1", "amount": "99.90"}, RefundEvent),
        ("track", {"name": "cart_updated", "properties": {"items": 2, "gift": False}}, TrackEvent),
        ("message_delivered", MESSAGE, MessageDeliveredEvent),
        ("message_opened", MESSAGE, MessageOpenedEvent),
        ("message_clicked", {**MESSAGE, "url": "https://shop.ru/x"}, MessageClickedEvent),
        ("message_clicked", MESSAGE, MessageClickedEvent),
        ("message_bounced", {**MESSAGE, "bounce": "soft"}, MessageBouncedEvent),
        ("message_complained", MESSAGE, MessageComplainedEvent),
        ("unsubscribed", {"channel": "sms", "campaign": "win-back-30d"}, UnsubscribedEvent),
        ("unsubscribed", {"channel": "push"}, UnsubscribedEvent),
    ],
)
def test_each_event_type_parses_into_its_model(
    type_: str, data: dict[str, Any], model: type
) -> None:
    event = parse_event(typed(type_, data))
    assert isinstance(event, model)
    assert parse_event(event.model_dump_json(exclude_none=True)) == event


def test_a_refund_amount_keeps_two_decimals_exactly() -> None:
    event = parse_event(typed("refund", {"order_id": "o-1", "amount": "0.10"}))
    assert isinstance(event, RefundEvent)
    assert event.data.amount == Decimal("0.10")


@pytest.mark.parametrize(
    ("type_", "data", "expected"),
    [
        ("refund", {"order_id": "o-1", "amount": "0"}, ("refund", "data", "amount")),
        ("refund", {"order_id": "o-1", "amount": "1.001"}, ("refund", "data", "amount")),
        ("refund", {"amount": "1.00"}, ("refund", "data", "order_id")),
        ("track", {"properties": {}}, ("track", "data", "name")),
        ("track", {"name": "x", "properties": {"p": [1]}}, ("track", "data", "properties", "p")),
        ("message_opened", {"message_key": "m"}, ("message_opened", "data", "channel")),
        ("message_opened", {**MESSAGE, "url": "u"}, ("message_opened", "data", "url")),
        ("message_bounced", MESSAGE, ("message_bounced", "data", "bounce")),
        ("message_bounced", {**MESSAGE, "bounce": "x"}, ("message_bounced", "data", "bounce")),
        ("unsubscribed", {"channel": "fax"}, ("unsubscribed", "data", "channel")),
        ("unsubscribed", None, ("unsubscribed", "data")),
    ],
)
def test_a_bad_field_of_a_new_type_is_refused_once_at_its_place(
    type_: str, data: dict[str, Any] | None, expected: tuple[str, ...]
) -> None:
    assert [loc for loc, _kind in refusal(typed(type_, data))] == [expected]


def test_a_trait_value_must_be_a_scalar() -> None:
    payload = identify_payload()
    payload["data"] = {"traits": {"kids": {"count": 2}}}
    assert refusal(payload) == [(("identify", "data", "traits", "kids"), "value_error")]


def test_a_profile_id_is_a_uuid_written_canonically() -> None:
    upper = "0B3E2C1A-7F4D-4E5B-9A8C-1D2E3F4A5B6C"
    event = parse_event(purchase_payload(customer={"profile_id": upper, "id": "c-1"}))

    assert event.customer.profile_id == upper.lower()
    assert event.key == f"profile_id:{upper.lower()}"
    assert refusal(purchase_payload(customer={"profile_id": "p-1"})) == [
        (("purchase", "customer", "profile_id"), "value_error")
    ]


# --- plausible input only ------------------------------------------------------------

BOUNDS = Plausible(datetime(1990, 1, 1, tzinfo=UTC), T0, timedelta(days=1))
"""Ingest's default bounds, its clock at T0."""


def refused_within(raw: dict[str, Any], bounds: Plausible = BOUNDS) -> list[tuple[Any, str]]:
    """Validate ``raw`` as ingest does, within ``bounds``; return each error as (loc, msg)."""
    with pytest.raises(ValidationError) as caught:
        validate_event(raw, plausible=bounds)
    return [(error["loc"], error["msg"]) for error in caught.value.errors()]


def at(occurred_at: str) -> dict[str, Any]:
    payload = purchase_payload()
    payload["occurred_at"] = occurred_at
    return payload


@pytest.mark.parametrize(
    "occurred_at",
    ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"],
    ids=["year-9999", "year-1-east-of-utc", "year-9999-west-of-utc"],
)
def test_a_moment_nudge_cannot_count_from_is_refused_even_without_bounds(
    occurred_at: str,
) -> None:
    assert [loc for loc, _ in refusal(at(occurred_at))] == [("purchase", "occurred_at")]


@pytest.mark.parametrize(
    ("occurred_at", "says"),
    [
        ("1989-12-31T23:59:59+00:00", "earlier than 1990-01-01T00:00:00+00:00"),
        ("1990-01-01T02:59:59+03:00", "earlier than 1990-01-01T00:00:00+00:00"),
        ((T0 + timedelta(days=1, seconds=1)).isoformat(), "at most 1 day ahead"),
        ((T0 + timedelta(days=3 * 365)).isoformat(), "at most 1 day ahead"),
    ],
    ids=["before-1990", "before-1990-in-moscow", "a-day-and-a-second-ahead", "years-ahead"],
)
def test_an_event_outside_the_bounds_is_refused_at_occurred_at(occurred_at: str, says: str) -> None:
    ((loc, message),) = refused_within(at(occurred_at))
    assert loc == ("purchase", "occurred_at")
    assert says in message


@pytest.mark.parametrize(
    "occurred_at",
    [
        "1990-01-01T00:00:00+00:00",
        "1990-01-01T03:00:00+03:00",
        (T0 + timedelta(days=1)).isoformat(),
    ],
    ids=["the-earliest", "the-earliest-in-moscow", "a-day-ahead"],
)
def test_the_bounds_themselves_are_accepted(occurred_at: str) -> None:
    assert validate_event(at(occurred_at), plausible=BOUNDS).occurred_at.year in (1990, T0.year)


def test_an_event_read_back_from_the_bus_is_not_bounded_again() -> None:
    published = parse_event(at((T0 + timedelta(days=1)).isoformat())).model_dump_json()

    assert read_published_event(published.encode()).occurred_at == T0 + timedelta(days=1)


NUL, TAB, NEWLINE, DEL, C1_NEXT_LINE = "\x00", "\t", "\n", "\x7f", "\x85"


def with_trait(key: str, value: Any) -> dict[str, Any]:
    payload = identify_payload()
    payload["data"] = {"traits": {key: value}}
    return payload


def with_item(**fields: Any) -> dict[str, Any]:
    payload = purchase_payload()
    payload["data"]["items"] = [{"sku": "A-1", "price": "10.00", **fields}]
    return payload


def with_field(path: tuple[str, ...], value: str) -> dict[str, Any]:
    payload = purchase_payload()
    node = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return payload


LONE_SURROGATE = "\ud800"


@pytest.mark.parametrize("char", [NUL, TAB, NEWLINE, "\x1b", DEL, C1_NEXT_LINE, LONE_SURROGATE])
@pytest.mark.parametrize(
    ("path", "loc"),
    [
        (("event_id",), ("purchase", "event_id")),
        (("customer", "id"), ("purchase", "customer", "id")),
        (("store_id",), ("purchase", "store_id")),
        (("channel",), ("purchase", "channel")),
        (("data", "order_id"), ("purchase", "data", "order_id")),
    ],
    ids=["event-id", "customer-id", "store", "channel", "order-id"],
)
def test_a_control_character_in_an_id_is_refused_at_its_field(
    path: tuple[str, ...], loc: tuple[str, ...], char: str
) -> None:
    ((where, message),) = refused_within(with_field(path, f"a{char}b"))
    assert where == loc
    assert f"U+{ord(char):04X}" in message or char == LONE_SURROGATE  # pydantic's own words


@pytest.mark.parametrize("char", [NUL, "\x01", DEL, C1_NEXT_LINE, "\udfff"])
def test_a_control_character_in_free_text_is_refused(char: str) -> None:
    assert [loc for loc, _ in refused_within(with_item(name=f"red{char}shoe"))] == [
        ("purchase", "data", "items", 0, "name")
    ]
    assert [loc for loc, _ in refused_within(with_trait("note", f"call{char}back"))] == [
        ("identify", "data", "traits", "note")
    ]


@pytest.mark.parametrize("char", [TAB, NEWLINE, "\r"])
def test_tabs_and_line_breaks_in_free_text_are_kept(char: str) -> None:
    item = validate_event(with_item(name=f"red{char}shoe", category=f"a{char}b"), plausible=BOUNDS)
    trait = validate_event(with_trait("note", f"call{char}back"), plausible=BOUNDS)

    assert isinstance(item, PurchaseEvent)
    assert item.data.items[0].name == f"red{char}shoe"
    assert isinstance(trait, IdentifyEvent)
    assert trait.data.traits == {"note": f"call{char}back"}


@pytest.mark.parametrize("char", [NUL, TAB, "\ud83d"])
def test_a_control_character_in_a_key_is_refused_at_its_member(char: str) -> None:
    ((loc, _message),) = refused_within(with_trait(f"no{char}te", "x"))
    # pydantic writes a lone surrogate of the key as replacement characters in loc
    assert (*loc[:3], loc[-1]) == ("identify", "data", "traits", "[key]")


def test_a_control_character_in_a_track_name_or_property_is_refused() -> None:
    payload = typed("track", {"name": f"cart{NUL}", "properties": {"p": f"v{NUL}", f"k{NUL}": 1}})

    assert {loc for loc, _ in refused_within(payload)} == {
        ("track", "data", "name"),
        ("track", "data", "properties", "p"),
        ("track", "data", "properties", f"k{NUL}", "[key]"),
    }


@pytest.mark.parametrize(
    "text", ["Ünïcödé 日本語 😀", "right\u200fto\u200eleft", "zero\u200bwidth", "\ufffe\U0010ffff"]
)
def test_printable_unicode_and_format_characters_pass(text: str) -> None:
    event = validate_event(with_trait("note", text), plausible=BOUNDS)
    assert isinstance(event, IdentifyEvent)
    assert event.data.traits == {"note": text}


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_an_integer_beyond_64_bits_is_refused(value: int) -> None:
    ((loc, message),) = refused_within(with_trait("n", value))
    assert loc == ("identify", "data", "traits", "n")
    assert "64 bits" in message


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 1.7976931348623157e308, 5e-324])
def test_the_largest_numbers_a_store_holds_pass(value: float) -> None:
    event = validate_event(with_trait("n", value), plausible=BOUNDS)
    assert isinstance(event, IdentifyEvent)
    assert event.data.traits == {"n": value}


def test_a_message_key_longer_than_nudge_makes_is_refused() -> None:
    assert [
        loc
        for loc, _ in refused_within(typed("message_opened", {**MESSAGE, "message_key": "m" * 101}))
    ] == [("message_opened", "data", "message_key")]
    event = validate_event(typed("message_opened", {**MESSAGE, "message_key": "m" * 100}))
    assert isinstance(event, MessageOpenedEvent)


def test_a_sender_may_not_say_whose_ids_an_event_is_among() -> None:
    sent = {
        "type": "identify",
        "event_id": "e-1",
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "customer": {"id": "anna"},
        "tenant": "A",
    }
    with pytest.raises(ValidationError, match="nudge sets this field"):
        validate_event(sent)
    assert "tenant" not in json.dumps(event_adapter.json_schema())
