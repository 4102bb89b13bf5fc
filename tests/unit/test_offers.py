"""Offers: what a marketer writes, how it is refused, and the codes a message carries."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.campaigns import CampaignError, parse_campaign
from shared.domain.events import Item
from shared.domain.offers import (
    BadCode,
    DaysAfterSend,
    GeneratedCodes,
    Issued,
    IssuedCode,
    OfferError,
    PoolCodes,
    PoolError,
    Until,
    candidates,
    generate_code,
    last_valid_day,
    nonce_for,
    offer_context,
    parse_offer,
    parse_pool,
    redemptions,
    verify_code,
)
from shared.domain.programmes import ProgrammeError, Send, parse_programme, step_campaign

KEY = b"offer-code-key-of-the-shop-32-by"
SENT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def win_back() -> dict[str, Any]:
    return {
        "key": "win-back-10",
        "name": "10% to come back",
        "kind": "percent",
        "value": 10,
        "valid": {"days_after_send": 14},
        "min_order": 1500,
        "scope": {"categories": ["pet-food"], "skus": ["SKU-1"]},
        "codes": {"source": "generated", "prefix": "WB10"},
    }


def test_an_offer_reads_every_field_a_marketer_writes() -> None:
    offer = parse_offer(win_back())

    assert offer.key == "win-back-10"
    assert offer.kind == "percent"
    assert offer.value == Decimal(10)
    assert offer.validity == DaysAfterSend(14)
    assert offer.min_order == Decimal("1500.00")
    assert offer.scope.categories == ("pet-food",)
    assert offer.scope.skus == ("SKU-1",)
    assert offer.codes == GeneratedCodes("WB10")
    assert offer.expires_at(SENT) == SENT + timedelta(days=14)


def test_an_offer_written_back_reads_the_same() -> None:
    offer = parse_offer(win_back())
    assert parse_offer(offer.to_dict()) == offer


def test_a_pool_offer_valid_until_a_date_lasts_through_that_day() -> None:
    offer = parse_offer(
        {
            "key": "spring-500",
            "name": "500 off in spring",
            "kind": "fixed",
            "value": "500",
            "valid": {"until": "2026-04-30"},
        }
    )

    assert offer.codes == PoolCodes(low_at=100)
    assert isinstance(offer.validity, Until)
    assert offer.expires_at(SENT) == datetime(2026, 5, 1, tzinfo=UTC)
    assert offer.value == Decimal("500.00")
    assert parse_offer(offer.to_dict()) == offer


def test_free_delivery_takes_no_value_and_bonus_points_are_whole() -> None:
    delivery = parse_offer(
        {
            "key": "ship",
            "name": "Free delivery",
            "kind": "free_delivery",
            "valid": {"days_after_send": 7},
        }
    )
    points = parse_offer(
        {
            "key": "pts",
            "name": "Points",
            "kind": "bonus_points",
            "value": 300,
            "valid": {"days_after_send": 30},
        }
    )

    assert delivery.value is None
    assert points.value == Decimal(300)


@pytest.mark.parametrize(
    ("change", "pointer", "message"),
    [
        (
            {"kind": "gift"},
            "/kind",
            "expected one of ['percent', 'fixed', 'free_delivery', 'bonus_points']",
        ),
        ({"value": 0}, "/value", "expected a percentage above 0, at most 100"),
        ({"value": 120}, "/value", "expected a percentage above 0, at most 100"),
        ({"value": "ten"}, "/value", "expected a number"),
        ({"value": None}, "/value", "required"),
        (
            {"kind": "fixed", "value": "10.005"},
            "/value",
            "expected an amount with at most two decimals",
        ),
        (
            {"kind": "bonus_points", "value": 2.5},
            "/value",
            "expected a whole number of points from 1 to 10000000",
        ),
        ({"kind": "free_delivery"}, "/value", "free delivery takes no value"),
        ({"valid": None}, "/valid", "required: {days_after_send} or {until}"),
        (
            {"valid": {"days_after_send": 0}},
            "/valid/days_after_send",
            "expected a whole number of days, 1 to 366",
        ),
        (
            {"valid": {"until": "2026-04-30T00:00:00"}},
            "/valid/until",
            "expected a date (2026-12-31) or an ISO 8601 moment with its offset",
        ),
        (
            {"valid": {"weeks": 2}},
            "/valid/weeks",
            "unexpected key; allowed here: ['days_after_send', 'until']",
        ),
        ({"min_order": -5}, "/min_order", "expected an amount above 0, at most 999999999999.99"),
        ({"scope": {"skus": ["A", "A"]}}, "/scope/skus/1", "'A' is listed twice"),
        (
            {"scope": {"categories": [""]}},
            "/scope/categories/0",
            "expected a non-empty name of up to 200 characters",
        ),
        (
            {"codes": {"source": "printed"}},
            "/codes/source",
            "expected one of ['pool', 'generated']",
        ),
        (
            {"codes": {"source": "generated", "prefix": "wb-10"}},
            "/codes/prefix",
            "expected 1 to 12 capital letters and digits",
        ),
        (
            {"codes": {"source": "pool", "low_at": -1}},
            "/codes/low_at",
            "expected a whole number of codes, 0 or more",
        ),
        (
            {"key": "Win Back"},
            "/key",
            "expected lower-case letters, digits and dashes (up to 63), e.g. 'win-back-10'",
        ),
        ({"name": " "}, "/name", "expected a non-empty text"),
        (
            {"colour": "red"},
            "/colour",
            "unexpected field; allowed here: ["
            "'codes', 'key', 'kind', 'min_order', 'name', 'scope', 'valid', 'value']",
        ),
    ],
)
def test_a_bad_offer_is_refused_at_its_field(
    change: dict[str, Any], pointer: str, message: str
) -> None:
    document = {**win_back(), **change}

    with pytest.raises(OfferError) as refused:
        parse_offer(document)

    assert (refused.value.pointer, refused.value.message) == (pointer, message)


def test_the_key_in_the_address_and_the_document_must_agree() -> None:
    with pytest.raises(OfferError) as refused:
        parse_offer(win_back(), key="other")
    assert refused.value.pointer == "/key"
    assert parse_offer({**win_back(), "key": None}, key="win-back-10").key == "win-back-10"


def test_the_discount_respects_the_minimum_order_and_never_exceeds_the_order() -> None:
    percent = parse_offer(win_back())
    fixed = parse_offer({**win_back(), "kind": "fixed", "value": "500", "min_order": None})

    assert percent.discount_on(Decimal("1499.99")) == Decimal("0.00")
    assert percent.discount_on(Decimal("2345.67")) == Decimal("234.57")
    assert fixed.discount_on(Decimal("300.00")) == Decimal("300.00")
    assert fixed.discount_on(Decimal("3000.00")) == Decimal("500.00")


def test_a_template_sees_the_code_its_value_and_when_it_expires() -> None:
    offer = parse_offer(win_back())
    issued = IssuedCode("win-back-10", "WB10-ABC", offer.expires_at(SENT))

    seen = offer_context(offer, issued)

    assert seen["code"] == "WB10-ABC"
    assert seen["value"] == "10%"
    assert seen["expires_at"] == SENT + timedelta(days=14)


# --- generated codes -------------------------------------------------------------------


def _code(message: str = "win-back-30d-abc", day: date = date(2026, 3, 24)) -> str:
    nonce = nonce_for(KEY, "win-back-10", message)
    return generate_code(KEY, offer="win-back-10", prefix="WB10", nonce=nonce, last_day=day)


def test_a_generated_code_verifies_offline_and_says_its_last_day() -> None:
    code = _code()

    checked = verify_code(KEY, code, offer="win-back-10", prefix="WB10", today=date(2026, 3, 24))

    assert checked.last_valid_day == date(2026, 3, 24)
    assert code.startswith("WB10-")
    assert len(code) == len("WB10-") + 4 * 6 + 3


def test_a_message_always_gets_the_same_code_and_two_messages_different_ones() -> None:
    assert _code("m-1") == _code("m-1")
    assert _code("m-1") != _code("m-2")


def test_a_code_is_refused_after_its_day_for_another_offer_or_with_another_key() -> None:
    code = _code()
    with pytest.raises(BadCode, match="expired"):
        verify_code(KEY, code, offer="win-back-10", prefix="WB10", today=date(2026, 3, 25))
    with pytest.raises(BadCode, match="check characters"):
        verify_code(KEY, code, offer="win-back-15", prefix="WB10", today=date(2026, 3, 1))
    with pytest.raises(BadCode, match="check characters"):
        verify_code(b"x" * 32, code, offer="win-back-10", prefix="WB10", today=date(2026, 3, 1))
    with pytest.raises(BadCode, match="start WB15-"):
        verify_code(KEY, code, offer="win-back-10", prefix="WB15", today=date(2026, 3, 1))


def test_a_code_typed_in_lower_case_with_misread_letters_still_verifies() -> None:
    code = _code()
    prefix, rest = code.split("-", 1)
    typed = prefix.lower() + "-" + rest.lower().replace("0", "o").replace("1", "l")
    checked = verify_code(KEY, typed, offer="win-back-10", prefix="WB10", today=date(2026, 3, 1))
    assert checked.last_valid_day == date(2026, 3, 24)


def test_the_last_day_is_the_day_before_a_midnight_expiry() -> None:
    assert last_valid_day(datetime(2026, 5, 1, tzinfo=UTC)) == date(2026, 4, 30)
    assert last_valid_day(datetime(2026, 5, 1, 0, 0, 1, tzinfo=UTC)) == date(2026, 5, 1)


@given(
    position=st.integers(min_value=5, max_value=30),
    replacement=st.sampled_from("0123456789ABCDEFGHJKMNPQRSTVWXYZ"),
)
def test_changing_any_character_of_a_code_is_refused(position: int, replacement: str) -> None:
    code = _code()
    position %= len(code)
    if code[position] in ("-", replacement):
        return
    altered = code[:position] + replacement + code[position + 1 :]

    with pytest.raises(BadCode):
        verify_code(KEY, altered, offer="win-back-10", prefix="WB10", today=date(2026, 1, 1))


@given(message=st.text(min_size=1, max_size=80), days=st.integers(min_value=0, max_value=32000))
def test_every_generated_code_verifies(message: str, days: int) -> None:
    day = date(2020, 1, 1) + timedelta(days=days)
    code = _code(message, day)
    assert (
        verify_code(KEY, code, offer="win-back-10", prefix="WB10", today=day).last_valid_day == day
    )


# --- pools -----------------------------------------------------------------------------


def test_a_pool_is_read_one_code_a_line_with_an_optional_header() -> None:
    assert parse_pool("code\nA-1\r\nB_2,batch 7\n\nC3\n") == ("A-1", "B_2", "C3")
    assert parse_pool("A-1\n") == ("A-1",)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("code\nA-1\nA-1\n", 3, "the same code as line 2"),
        (
            "A-1\nnot a code!\n",
            2,
            "expected a code of 1 to 64 letters, digits, '-' or '_' in the first column",
        ),
        ("code\n\n", 0, "no codes: expected one code a line (a 'code' header is optional)"),
        (
            "A\x00B\n",
            1,
            "expected a code of 1 to 64 letters, digits, '-' or '_' in the first column",
        ),
    ],
)
def test_a_bad_pool_is_refused_at_its_line(text: str, line: int, message: str) -> None:
    with pytest.raises(PoolError) as refused:
        parse_pool(text)
    assert (refused.value.line, refused.value.message) == (line, message)


@given(
    st.lists(
        st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True), min_size=1, max_size=30, unique=True
    )
)
def test_any_list_of_codes_written_as_csv_reads_back(codes: list[str]) -> None:
    if codes[0].lower() == "code":
        codes = codes[1:] or ["X"]
    assert parse_pool("\n".join(codes)) == tuple(codes)


def test_the_worked_example_of_docs_offers_md_holds() -> None:
    key = b"example-key"
    nonce = nonce_for(key, "win-back-10", "win-back-30d-0123456789abcdef0123456789abcdef")
    code = generate_code(
        key, offer="win-back-10", prefix="WB10", nonce=nonce, last_day=date(2026, 3, 24)
    )

    assert nonce == "2ETH8861M4KZ"
    assert code == "WB10-2ETH88-61M4KZ-2725J7-BKGM2S"


def test_a_campaign_names_the_offer_its_messages_carry() -> None:
    document = {
        "key": "second-order",
        "name": "Second order",
        "trigger": {"segment": "lifecycle-new"},
        "channels": ["email"],
        "templates": {"email": "second-order-email"},
        "offer": "second-order-10",
    }
    campaign = parse_campaign(document)

    assert campaign.offer == "second-order-10"
    assert parse_campaign(campaign.to_dict()) == campaign
    with pytest.raises(CampaignError) as unknown:
        parse_campaign(document, offers={"win-back-10"})
    assert (unknown.value.pointer, unknown.value.message) == (
        "/offer",
        "no offer 'second-order-10'",
    )
    with pytest.raises(CampaignError) as bad:
        parse_campaign({**document, "offer": "10 %"})
    assert bad.value.pointer == "/offer"


def test_a_programmes_variants_can_differ_by_the_offer_they_carry() -> None:
    document = {
        "key": "win-back-test",
        "name": "Win back, 10% or 15%",
        "status": "active",
        "trigger": {"segment": "no-order-30d"},
        "steps": [
            {
                "id": "email",
                "send": {
                    "channels": ["email"],
                    "variants": [
                        {
                            "name": "ten",
                            "share": 0.5,
                            "templates": {"email": "e"},
                            "offer": "wb-10",
                        },
                        {
                            "name": "fifteen",
                            "share": 0.5,
                            "templates": {"email": "e"},
                            "offer": "wb-15",
                        },
                    ],
                },
            }
        ],
    }
    found = parse_programme(document)
    step = found.steps["email"]
    assert isinstance(step, Send)

    offers = [step_campaign(found, step, variant).offer for variant in step.variants]

    assert offers == ["wb-10", "wb-15"]
    bad = copy.deepcopy(document)
    bad["steps"][0]["send"]["variants"][1]["offer"] = "15 %"
    with pytest.raises(ProgrammeError) as refused:
        parse_programme(bad)
    assert refused.value.pointer == "/steps/0/send/variants/1/offer"


# --- redemptions -----------------------------------------------------------------------


def _issued(code: str, offer: str = "win-back-10") -> Issued:
    return Issued(offer, code, f"message-of-{code}")


def test_a_purchase_naming_an_issued_code_redeems_it_with_the_discount_on_its_scope() -> None:
    offer = parse_offer({**win_back(), "min_order": None})  # pet-food and SKU-1 only
    items = [
        Item(sku="SKU-1", category="toys", quantity=2, price=Decimal("100.00")),
        Item(sku="SKU-9", category="pet-food", quantity=1, price=Decimal("1000.00")),
        Item(sku="SKU-7", category="garden", quantity=1, price=Decimal("5000.00")),
    ]

    found = redemptions(
        order_id="o-1",
        total=Decimal("6200.00"),
        items=items,
        codes=["WB-1", "NOT-OURS"],
        at=SENT,
        issued=[_issued("WB-1")],
        offers={"win-back-10": offer},
    )

    assert [(r.code, r.message_key, r.discount) for r in found] == [
        ("WB-1", "message-of-WB-1", Decimal("120.00"))
    ]


def test_a_generated_code_typed_loosely_is_redeemed_once() -> None:
    code = _code()
    typed = code.lower()

    found = redemptions(
        order_id="o-1",
        total=Decimal("2000.00"),
        items=[],
        codes=[typed, code],
        at=SENT,
        issued=[_issued(code)],
        offers={"win-back-10": parse_offer(win_back())},
    )

    assert [(r.code, r.discount) for r in found] == [(code, Decimal("200.00"))]
    assert code in candidates([typed])
