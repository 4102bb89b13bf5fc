"""Card numbers are found however they are written; what only looks like one is not.

A card number: 13-19 digits under a known issuer prefix, Luhn-valid, contiguous or
in the groupings people use, as a token of its own (shared/domain/card_numbers.py).
UUIDs, epoch timestamps, barcodes and longer tokens pass.
"""

from __future__ import annotations

import random
import sys
import unicodedata
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shared.domain import card_numbers as detector
from shared.domain.card_issuers import ISSUERS
from shared.domain.card_numbers import (
    CardNumberField,
    card_number_fields,
    contains_card_number,
    luhn_valid,
    may_hold_card_number,
    scan_for_card_numbers,
)

DIGITS = "0123456789"
MS_1990, MS_2100 = 631_152_000_000, 4_102_444_800_000
# One of each kind, and the Unicode ones the issue saw let through.
SEPARATORS = [
    " ", "-", ".", "/", "_", " - ", "  ", "\t", "\u00a0", "\u2009", "\u3000",
    "\u2013", "\u2014", "\u2212", "\u200b", "\u00ad", "\u2060",
]  # fmt: skip
FORMAT_CHARACTERS = ["\u200b", "\u00ad", "\u2060", "\ufeff", "\u200d"]


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


def ean13_valid(digits: str) -> bool:
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits[:12]))
    return (10 - weighted % 10) % 10 == int(digits[12])


def exempt(digits: str) -> bool:
    """The documented exceptions: a 13-digit EAN-13 barcode or epoch milliseconds, 18
    or 19 digits of epoch nanoseconds (1990..2100)."""
    if len(digits) == 13:
        return ean13_valid(digits) or MS_1990 <= int(digits) <= MS_2100
    return len(digits) >= 18 and MS_1990 * 10**6 <= int(digits) <= MS_2100 * 10**6


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    """A card number of a known network: a prefix in one of its ranges, one of its
    lengths, any digits, then the Luhn check digit."""
    _network, first, last, lengths = draw(st.sampled_from(ISSUERS))
    prefix = str(draw(st.integers(int(first), int(last)))).zfill(len(first))
    length = draw(st.sampled_from(lengths))
    body = prefix + draw(st.text(DIGITS, min_size=length - 1 - len(prefix), max_size=19))
    body = body[: length - 1]
    card = body + luhn_check_digit(body)
    assume(not exempt(card))
    return card


def groupings(digits: str) -> list[list[str]]:
    """``digits`` in each grouping a card number is written in."""
    fours = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    shapes = [[digits], fours]
    if len(digits) in (14, 15):
        shapes.append([digits[:4], digits[4:10], digits[10:]])
    return shapes


@st.composite
def written(draw: st.DrawFn, digits: str) -> str:
    """``digits`` as a person or a system writes them: a grouping, one separator."""
    groups = draw(st.sampled_from(groupings(digits)))
    text = draw(st.sampled_from(SEPARATORS)).join(groups)
    if draw(st.booleans()):  # a format character (invisible) anywhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(FORMAT_CHARACTERS)) + text[at:]
    return text


def not_glued(text: str, *, at_end: bool) -> str:
    """``text`` with a space where it would otherwise touch the card with a letter or digit."""
    edge = text[-1:] if at_end else text[:1]
    if edge.isalnum() or unicodedata.category(edge or " ") == "Cf":
        return text + " " if at_end else " " + text
    return text


surrounding_before = st.text(max_size=20).map(lambda t: not_glued(t, at_end=True))
surrounding_after = st.text(max_size=20).map(lambda t: not_glued(t, at_end=False))


@st.composite
def card_in_text(draw: st.DrawFn) -> str:
    card = draw(written(draw(card_numbers())))
    return draw(surrounding_before) + card + draw(surrounding_after)


# --- the tables ----------------------------------------------------------------------------


def _characters(category: str) -> set[str]:
    return {
        char
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(char := chr(code)) == category
    }


def _in_class(ranges: str) -> set[str]:
    import re  # noqa: PLC0415

    pattern = re.compile(f"[{ranges}]")
    return {chr(code) for code in range(sys.maxunicode + 1) if pattern.match(chr(code))}


def test_the_separator_and_format_tables_are_unicodes_categories() -> None:
    assert _in_class(detector.FORMAT_CHARACTERS) == _characters("Cf")
    assert _in_class(detector.DASHES) == _characters("Pd") | {"\u2212"}
    spaces = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    assert _in_class(detector.SPACES) == spaces | _characters("Zs")


def test_every_issuer_range_is_well_formed() -> None:
    for network, first, last, lengths in ISSUERS:
        assert len(first) == len(last), network
        assert first <= last, network
        assert lengths, network
        assert all(13 <= n <= 19 for n in lengths), network


# --- the check digit -------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        "4111111111111111",
        "5555555555554444",
        "2223000048400011",  # Mastercard 2-series
        "378282246310005",
        "6011111111111117",
        "3530111333300000",  # JCB
        "6200000000000005",  # UnionPay
        "36227206271667",  # Diners, 14 digits
        "4222222222222",
        "6759649826438453",
        "4000056655665556",
        "2200000000000004",  # Mir
    ],
)
def test_well_known_test_card_numbers_are_found(card: str) -> None:
    assert luhn_valid(card)
    assert contains_card_number(card)
    assert card_number_fields({"a": int(card)}) == [CardNumberField("/a")]


@given(card_numbers())
def test_the_generated_numbers_pass_the_luhn_check(card: str) -> None:
    assert luhn_valid(card)


@given(card_numbers(), st.integers(min_value=1, max_value=9))
def test_changing_the_check_digit_fails_the_luhn_check(card: str, delta: int) -> None:
    wrong = card[:-1] + str((int(card[-1]) + delta) % 10)
    assert not luhn_valid(wrong)
    assert not contains_card_number(wrong)


# --- what is found -----------------------------------------------------------------------


@given(card_in_text())
def test_a_card_number_is_found_in_every_separator_and_grouping(text: str) -> None:
    assert contains_card_number(text)
    assert scan_for_card_numbers({"note": text}).fields == (CardNumberField("/note"),)


@given(card_numbers())
def test_a_card_number_is_found_as_a_json_integer(card: str) -> None:
    document = orjson.loads(f'{{"events": [{{"data": {{"n": {card}}}}}]}}')
    assert scan_for_card_numbers(document).fields == (CardNumberField("/events/0/data/n"),)


@given(card_numbers(), st.text(DIGITS, min_size=1, max_size=3))
def test_a_card_number_is_found_as_the_integer_part_of_a_float(card: str, fraction: str) -> None:
    written = f"{card}.{fraction}"
    assume(float(written) < 1e16 and int(float(written)) == int(card))  # a double holds it
    document = orjson.loads(f'{{"total": {written}}}')
    assert scan_for_card_numbers(document).fields == (CardNumberField("/total"),)


@given(card_numbers(), st.integers(min_value=1, max_value=12))
def test_a_card_number_is_found_as_the_digits_of_a_float(card: str, point: int) -> None:
    written = f"{card[:point]}.{card[point:]}"
    assume(repr(float(written)) == written)  # a double that holds every digit
    assume(len(card[:point]) not in (10, 13))  # not seconds or milliseconds since 1970
    document = orjson.loads(f'{{"total": {written}}}')
    assert scan_for_card_numbers(document).fields == (CardNumberField("/total"),)


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111.1111.1111.1111",
        "4111/1111/1111/1111",
        "4111_1111_1111_1111",
        "4111\u200b1111\u200b1111\u200b1111",
        "4111\u00ad1111\u00ad1111\u00ad1111",
        "4111\u20601111\u20601111\u20601111",
        "paid by card 4111111111111111, thanks",
        "4111 1111 1111 1111 123",
        "card 4111 1111-1111 1111 exp 12/29",
        "cvv 123 4111111111111111 exp",
        "pos-4111111111111111",
        "3782 822463 10005",
        "4424154152064361.5",
        "".join(chr(0x0660 + int(d)) for d in "4111111111111111"),  # Arabic-Indic digits
    ],
    ids=[
        "spaced", "dashed", "dotted", "slashed", "underscored", "zero-width-space",
        "soft-hyphen", "word-joiner", "in-a-sentence", "then-the-cvv", "spaces-and-dashes",
        "after-the-cvv", "after-a-dash", "amex", "with-a-fraction", "arabic",
    ],
)  # fmt: skip
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
        leaf = int(draw(card_numbers()))
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


@given(documents_with_a_card())
def test_no_card_number_survives_in_any_field_of_a_document(
    case: tuple[Any, str, bool],
) -> None:
    document, pointer, in_key = case
    assert CardNumberField(pointer, in_key=in_key) in card_number_fields(document)
    assert may_hold_card_number(document)
    assert CardNumberField(pointer, in_key=in_key) in scan_for_card_numbers(document).fields


# Text that often comes close: digits, separators, letters, format characters, escapes.
near_text = st.text(
    st.sampled_from([*"0123456789", *"4111", " ", "-", ".", "/", "_", "a", "é", "\u200b",
                     "\u00a0", "\t", "\n", '"', "\\", "\x00", "٤", "б", "字", "e", "+"]),
    max_size=60,
)  # fmt: skip
json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | near_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(near_text, children, max_size=4)
    ),
    max_leaves=12,
)


@given(json_documents)
def test_the_one_pass_never_clears_a_document_whose_walk_finds_a_card_number(
    document: Any,
) -> None:
    """The pass over the whole text is exact for strings, keys and integers and may only
    say too much for numbers: whatever the walk finds, it found first."""
    if card_number_fields(document):
        assert may_hold_card_number(document)


def test_every_field_holding_a_card_number_is_named_by_its_pointer() -> None:
    document = {
        "customer": {"id": "4111-1111-1111-1111"},
        "data": {
            "items": [{"sku": "A-1", "name": "gift for 5555 5555 5555 4444"}],
            "traits": {"a/b": 4111111111111111, "6011111111111117": "x", "ok": "fine"},
            "total": 4424154152064361.5,
        },
    }
    assert card_number_fields(document) == [
        CardNumberField("/customer/id"),
        CardNumberField("/data/items/0/name"),
        CardNumberField("/data/traits/a~1b"),
        CardNumberField("/data/traits", in_key=True),
        CardNumberField("/data/total"),
    ]
    assert scan_for_card_numbers(document).fields == tuple(card_number_fields(document))


def test_a_document_nested_deeper_than_the_recursion_limit_is_walked() -> None:
    document: Any = "4111111111111111"
    for _ in range(5000):
        document = [document]
    assert card_number_fields(document) == [CardNumberField("/0" * 5000)]


def test_past_the_bound_on_checks_a_document_is_never_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(detector, "MAX_CHECKS", 50)
    document = {"skus": [f"4111 1111 1111 {n:04d}" for n in range(1000, 1100)]}
    document["skus"] = [s for s in document["skus"] if not luhn_valid(s.replace(" ", ""))]

    scan = scan_for_card_numbers(document)

    assert scan.unread
    assert not scan.clear
    assert contains_card_number(" ".join(document["skus"]))


# --- what passes -------------------------------------------------------------------------


def uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))``, written out (ten times faster)."""
    bits = bits & ~(0xF000 << 64) | 0x4000 << 64  # version 4
    bits = bits & ~(0xC000 << 48) | 0x8000 << 48  # RFC 4122 variant
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def test_uuid4_text_is_what_the_uuid_module_writes() -> None:
    rng = random.Random(7)
    for bits in (rng.getrandbits(128) for _ in range(1000)):
        assert uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))


def test_a_million_uuids_and_epoch_timestamps_are_never_taken_for_card_numbers() -> None:
    """Seeded, so a failure repeats: uuid4 text in both cases, epoch milliseconds and
    nanoseconds (1990..2100) as JSON integers and as strings, read in batches of 1000
    events as ingest reads them."""
    rng = random.Random(20261203)
    for batch in range(1000):
        ids = [uuid4_text(rng.getrandbits(128)) for _ in range(1000)]
        if batch % 2:
            ids = [i.upper() for i in ids]
        millis = [rng.randint(MS_1990, MS_2100) for _ in range(100)]
        nanos = [rng.randint(MS_1990 * 10**6, MS_2100 * 10**6) for _ in range(100)]
        events = [{"event_id": i} for i in ids] + [
            {"data": {"at_ms": ms, "at": str(ms), "at_ns": ns, "ns": str(ns)}}
            for ms, ns in zip(millis, nanos, strict=True)
        ]
        scan = scan_for_card_numbers(events)
        assert scan.clear, [events[int(f.pointer.split("/")[1])] for f in scan.fields]


@given(st.uuids(), st.booleans())
def test_a_uuid_is_not_a_card_number(value: uuid.UUID, upper: bool) -> None:
    text = str(value).upper() if upper else str(value)
    assert not contains_card_number(text)
    assert not contains_card_number(value.hex)


@given(card_numbers(), st.sampled_from(["x", "ab", "é", "б", "字", "Ⅻ"]), st.booleans())
def test_a_card_number_glued_to_letters_is_part_of_a_longer_token(
    card: str, glue: str, after: bool
) -> None:
    assert not contains_card_number(card + glue if after else glue + card)


@given(st.text("0123456789abcdef", min_size=20, max_size=64))
def test_a_long_hex_run_is_not_a_card_number(run: str) -> None:
    assume(any(c.isalpha() for c in run) or len(run) > 19)
    assert not contains_card_number(run)


@given(st.text(DIGITS, min_size=20, max_size=40))
def test_a_run_of_more_than_19_digits_is_one_long_number_not_a_card(digits: str) -> None:
    assert not contains_card_number(digits)
    assert not scan_for_card_numbers({"n": digits}).fields


@given(st.text(DIGITS, min_size=12, max_size=12))
def test_an_ean13_barcode_is_not_a_card_number(body: str) -> None:
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    barcode = body + str((10 - weighted % 10) % 10)
    assert not contains_card_number(barcode)
    assert not scan_for_card_numbers([{"sku": int(barcode)}]).fields


@given(st.integers(13, 19), st.data())
def test_a_luhn_valid_number_under_no_issuer_prefix_passes(
    length: int, data: st.DataObject
) -> None:
    first = data.draw(st.sampled_from("079"))
    body = first + data.draw(st.text(DIGITS, min_size=length - 2, max_size=length - 2))
    assume(not body.startswith(("9792", "9860")))
    number = body + luhn_check_digit(body)
    assert not contains_card_number(number)


@pytest.mark.parametrize(
    "text",
    [
        "f31aeb00-4982-4407-8941-965096ee86ef",  # the issue's UUID
        "41 11 1111 1111 1111",  # not a grouping cards are written in
        "4111.1111 1111/1111",  # separators of three kinds
        "4111111111111111x",
        "1700000000000",  # epoch milliseconds
        "4000000000002",  # milliseconds in 2096, a Visa-13 shape
        "1700000000000000000",  # epoch nanoseconds
        "+7 (916) 123-45-67",
        "8 916 123 45 67",
        "4006381333931",  # an EAN-13 barcode
        "4601234567893",  # another, with its EAN check digit
        "order A-1001, 3 items",
        "2026-03-02T12:30:00+03:00",
        "2026-03-02 12:30:00",
        "1 " * 1000,
    ],
)
def test_ordinary_values_pass(text: str) -> None:
    assert not contains_card_number(text)
    assert scan_for_card_numbers({"value": text}).clear


def test_a_document_of_ordinary_values_has_no_card_number_field() -> None:
    document = {
        "event_id": "pos-0001-000123",
        "customer": {"phone": "+7 (916) 123-45-67", "loyalty_card": "LC-0042"},
        "data": {"order_id": 20240501000123, "total": 2499.0, "items": [{"quantity": 1}]},
        "flags": [True, False, None, 1.5, 1e300, -0.0],
        "at": 1764720000.123456,  # epoch seconds with microseconds
    }
    assert card_number_fields(document) == []
    assert scan_for_card_numbers(document).clear


def test_a_decimal_whose_digits_with_the_fraction_are_a_card_number_is_never_cleared() -> None:
    """Its whole part alone matches as digits (15, no card): the fraction is read too."""
    assert card_number_fields(355000178945873.0)
    assert may_hold_card_number(355000178945873.0)
    assert may_hold_card_number({"total": 355000178945873.0})
