"""Card numbers are found wherever and however they are written; ordinary numbers are not."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shared.domain.card_numbers import (
    CardNumberField,
    card_number_fields,
    contains_card_number,
    luhn_valid,
    may_hold_card_number,
)

DIGITS = "0123456789"
SEPARATORS = ["", "", "", " ", "-", "  ", " - ", "\u00a0", "\u2013", "\t"]


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body`` + digit pass the Luhn check (written from the definition)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:  # doubled once the check digit is appended after it
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str(-total % 10)


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    """A Luhn-valid number of 13 to 19 digits, as bare digits."""
    length = draw(st.integers(min_value=13, max_value=19))
    body = draw(st.text(DIGITS, min_size=length - 1, max_size=length - 1))
    return body + luhn_check_digit(body)


@st.composite
def written(draw: st.DrawFn, digits: str) -> str:
    """``digits`` as a person might type them: any separator, or none, between any two digits."""
    parts = [digits[0]]
    for digit in digits[1:]:
        parts.append(draw(st.sampled_from(SEPARATORS)))
        parts.append(digit)
    return "".join(parts)


def not_ending_in_a_digit(text: str) -> str:
    return text + " " if text and text[-1].isdecimal() else text


def not_starting_with_a_digit(text: str) -> str:
    return " " + text if text and text[0].isdecimal() else text


surrounding_before = st.text(max_size=30).map(not_ending_in_a_digit)
surrounding_after = st.text(max_size=30).map(not_starting_with_a_digit)
no_digits = st.text(st.characters(exclude_categories=["Nd"]), max_size=30)


@st.composite
def card_in_text(draw: st.DrawFn) -> str:
    card = draw(written(draw(card_numbers())))
    return draw(surrounding_before) + card + draw(surrounding_after)


# --- the check digit -------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "4222222222222",
        "6759649826438453",
        "4000056655665556",
    ],
)
def test_well_known_test_card_numbers_pass_the_luhn_check(card: str) -> None:
    assert luhn_valid(card)
    assert contains_card_number(card)


@given(card_numbers())
def test_the_generated_numbers_pass_the_luhn_check(card: str) -> None:
    assert luhn_valid(card)


@given(card_numbers(), st.integers(min_value=1, max_value=9))
def test_changing_the_check_digit_fails_the_luhn_check(card: str, delta: int) -> None:
    wrong = card[:-1] + str((int(card[-1]) + delta) % 10)
    assert not luhn_valid(wrong)


# --- what is found -----------------------------------------------------------------------


@given(card_in_text())
def test_a_card_number_is_found_however_it_is_spaced_and_whatever_surrounds_it(
    text: str,
) -> None:
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "paid by card 4111111111111111, thanks",
        "4111 1111 1111 1111 123",
        "cvv 123 4111111111111111 exp",
        "3782 822463 10005",
        "".join(chr(0x0660 + int(d)) for d in "4111111111111111"),  # Arabic-Indic digits
    ],
    ids=["spaced", "dashed", "in-a-sentence", "then-the-cvv", "after-the-cvv", "amex", "arabic"],
)
def test_card_numbers_as_people_write_them_are_found(text: str) -> None:
    assert contains_card_number(text)


@st.composite
def documents_with_a_card(draw: st.DrawFn) -> tuple[Any, str, bool]:
    """A JSON document holding a card number in one value or key, its pointer, and which."""
    json_leaves = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10)
    card_text = draw(card_in_text())
    in_key = draw(st.booleans())
    leaf: Any = draw(json_leaves) if in_key else card_text
    if not in_key and draw(st.booleans()):
        leaf = int(draw(card_numbers().filter(lambda card: card[0] != "0")))
    node, pointer = leaf, ""
    depth = draw(st.integers(min_value=1 if in_key else 0, max_value=5))
    path: list[str] = []
    for level in range(depth):
        if level == 0 and in_key:
            siblings = draw(st.dictionaries(st.text(max_size=8), json_leaves, max_size=3))
            node = {**siblings, card_text: node}
            continue
        if draw(st.booleans()):
            key = draw(st.text(max_size=8))  # too short to hold a card number
            siblings = draw(st.dictionaries(st.text(max_size=8), json_leaves, max_size=3))
            siblings.pop(key, None)
            node = {**siblings, key: node}
            path.append(key.replace("~", "~0").replace("/", "~1"))
        else:
            before = draw(st.lists(json_leaves, max_size=3))
            node = [*before, node, *draw(st.lists(json_leaves, max_size=3))]
            path.append(str(len(before)))
    pointer = "".join(f"/{token}" for token in reversed(path))
    return node, pointer, in_key


@given(documents_with_a_card(), st.booleans(), st.booleans())
def test_a_body_holding_a_card_number_anywhere_is_never_let_past_unwalked(
    case: tuple[Any, str, bool], ensure_ascii: bool, exponent: bool
) -> None:
    """The quick look at a whole body never clears one that holds a card number, however
    the JSON was written: escaped or raw Unicode, integers, floats with an exponent."""
    document, _pointer, _in_key = case
    written = json.dumps(document, ensure_ascii=ensure_ascii)
    assert may_hold_card_number(written.encode())
    assert may_hold_card_number(orjson.dumps(document))
    if exponent and isinstance(document, int):
        assert may_hold_card_number(f"{float(document):e}".encode())


@given(documents_with_a_card())
def test_no_card_number_survives_in_any_field_of_a_document(
    case: tuple[Any, str, bool],
) -> None:
    document, pointer, in_key = case
    assert CardNumberField(pointer, in_key=in_key) in card_number_fields(document)


def test_every_field_holding_a_card_number_is_named_by_its_pointer() -> None:
    document = {
        "customer": {"id": "4111-1111-1111-1111"},
        "data": {
            "items": [{"sku": "A-1", "name": "gift for 5555 5555 5555 4444"}],
            "traits": {"a/b": 4111111111111111, "6011111111111117": "x", "ok": "fine"},
        },
    }
    assert card_number_fields(document) == [
        CardNumberField("/customer/id"),
        CardNumberField("/data/items/0/name"),
        CardNumberField("/data/traits/a~1b"),
        CardNumberField("/data/traits", in_key=True),
    ]


def test_a_document_nested_deeper_than_the_recursion_limit_is_walked() -> None:
    document: Any = "4111111111111111"
    for _ in range(5000):
        document = [document]
    assert card_number_fields(document) == [CardNumberField("/0" * 5000)]


# --- what passes -------------------------------------------------------------------------


@st.composite
def non_luhn_numbers(draw: st.DrawFn) -> str:
    length = draw(st.integers(min_value=13, max_value=19))
    digits = draw(st.text(DIGITS, min_size=length, max_size=length))
    assume(not luhn_valid(digits))
    return digits


@given(no_digits, non_luhn_numbers(), no_digits)
def test_a_run_of_13_to_19_digits_that_fails_the_luhn_check_passes(
    before: str, digits: str, after: str
) -> None:
    assert not contains_card_number(before + digits + after)


@given(st.text(DIGITS, min_size=13, max_size=13).filter(lambda d: not luhn_valid(d)), st.data())
def test_a_13_digit_number_that_fails_the_luhn_check_passes_however_spaced(
    digits: str, data: st.DataObject
) -> None:
    assert not contains_card_number(data.draw(written(digits)))


@given(st.text().filter(lambda text: sum(c.isdecimal() for c in text) < 13))
def test_text_with_fewer_than_13_digits_holds_no_card_number(text: str) -> None:
    assert not contains_card_number(text)


@given(st.text(DIGITS, min_size=20, max_size=40))
def test_a_run_of_more_than_19_digits_is_one_long_number_not_a_card(digits: str) -> None:
    assert not contains_card_number(digits)


@pytest.mark.parametrize(
    "text",
    [
        "+7 (916) 123-45-67",
        "8 916 123 45 67",
        "+44 20 7946 0018",
        "4006381333931",  # an EAN-13 barcode
        "4601234567893",  # another, with its EAN check digit
        "order A-1001, 3 items",
        "2026-03-02T12:30:00+03:00",
        "1709370000000",
    ],
    ids=["phone", "phone-spaced", "uk-phone", "ean-13", "ean-13-ru", "order", "date", "millis"],
)
def test_ordinary_numbers_pass(text: str) -> None:
    assert not contains_card_number(text)


def test_a_document_of_ordinary_values_has_no_card_number_field() -> None:
    document = {
        "event_id": "pos-0001-000123",
        "customer": {"phone": "+7 (916) 123-45-67", "loyalty_card": "LC-0042"},
        "data": {"order_id": 20240501000123, "total": 2499.0, "items": [{"quantity": 1}]},
        "flags": [True, False, None, 1.5],
    }
    assert card_number_fields(document) == []


def test_a_body_of_ordinary_events_is_cleared_without_walking_its_fields() -> None:
    body = orjson.dumps(
        {
            "event_id": "pos-0001-000123",
            "occurred_at": "2026-05-01T10:00:00+03:00",
            "customer": {"phone": "+79161234567", "email": "anna@shop.ru"},
            "data": {"order_id": "SO-2024-0123", "total": "2499.00", "items": []},
            "note": "Корзина: 2 шт., 1 499 ₽",
        }
    )
    assert not may_hold_card_number(body)
