"""One buyer, one spelling: phones in E.164, emails lower-cased, tokens as keyed hashes."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.domain.events import parse_event
from shared.domain.identifiers import (
    is_known_region,
    keyed_token_hash,
    normalise_email,
    normalise_identifier,
    normalise_phone,
)
from tests.unit.builders import identify_payload

REGIONS = ["RU", "KZ", "BY", "GB", "US", "DE", "FR", "IN", "BR", "AE"]
FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
    phonenumbers.PhoneNumberFormat.RFC3966,
]
KINDS = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]


@st.composite
def valid_phones(draw: st.DrawFn) -> tuple[str, phonenumbers.PhoneNumber]:
    """A region and a valid number of it: its example number with the last digits redrawn."""
    region = draw(st.sampled_from(REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(KINDS)))
    assume(example is not None)
    national = str(example.national_number)
    tail = draw(st.text("0123456789", min_size=3, max_size=3))
    number = phonenumbers.PhoneNumber(
        country_code=example.country_code,
        national_number=int(national[:-3] + tail),
        italian_leading_zero=example.italian_leading_zero,
    )
    assume(phonenumbers.is_valid_number(number))
    return region, number


# --- phones -------------------------------------------------------------------------------


@given(valid_phones(), st.sampled_from(FORMATS))
def test_a_valid_phone_in_any_format_of_its_region_becomes_its_e164(
    phone: tuple[str, phonenumbers.PhoneNumber], fmt: int
) -> None:
    region, number = phone
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    written = phonenumbers.format_number(number, fmt)

    assert normalise_phone(written, default_region=region) == e164


@given(valid_phones(), st.sampled_from(REGIONS))
def test_e164_round_trips_whatever_the_default_region(
    phone: tuple[str, phonenumbers.PhoneNumber], default_region: str
) -> None:
    e164 = phonenumbers.format_number(phone[1], phonenumbers.PhoneNumberFormat.E164)

    assert normalise_phone(e164, default_region=default_region) == e164
    assert normalise_phone(e164) == e164


@pytest.mark.parametrize(
    "written",
    ["+7 (916) 123-45-67", "8 (916) 123-45-67", "8-916-123-45-67", "9161234567", "+79161234567"],
)
def test_russian_mobile_numbers_as_tills_write_them_become_one_spelling(written: str) -> None:
    assert normalise_phone(written, default_region="RU") == "+79161234567"


def test_the_default_region_reads_numbers_without_a_country_code() -> None:
    assert normalise_phone("020 7946 0018", default_region="GB") == "+442079460018"


def test_without_a_default_region_a_phone_needs_its_country_code() -> None:
    with pytest.raises(ValueError, match="country code"):
        normalise_phone("8 (916) 123-45-67")


@pytest.mark.parametrize("written", ["12345", "+7 000", "call me", "+999 123 456 789"])
def test_what_is_not_a_valid_phone_is_refused_without_repeating_it(written: str) -> None:
    with pytest.raises(ValueError, match="phone number") as caught:
        normalise_phone(written, default_region="RU")
    digits = re.sub(r"\D", "", written)
    assert not digits or digits not in str(caught.value)


def test_regions_are_known_by_their_iso_code() -> None:
    assert is_known_region("RU")
    assert not is_known_region("XX")
    assert not is_known_region("ru")


# --- emails -------------------------------------------------------------------------------

emails = st.from_regex(
    r"[A-Za-z0-9_+-]{1,16}(\.[A-Za-z0-9_+-]{1,8})?@([A-Za-z0-9]{1,12}\.){1,2}(ru|com|org|shop)",
    fullmatch=True,
)


@given(emails)
def test_an_email_is_lower_cased(email: str) -> None:
    assert normalise_email(email) == email.lower()


@given(emails)
def test_normalising_an_email_twice_changes_nothing(email: str) -> None:
    once = normalise_email(email)
    assert normalise_email(once) == once


@pytest.mark.parametrize(
    "email", ["anna", "anna@", "@shop.ru", "anna@shop", "an na@shop.ru", "anna@@shop.ru"]
)
def test_an_email_that_is_not_one_is_refused(email: str) -> None:
    with pytest.raises(ValueError, match="not a valid email address"):
        normalise_email(email)


def _library(raw: str) -> str | None:
    """email-validator's own answer, lower-cased; ``None`` when it refuses."""
    try:
        return validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


near_plain = st.from_regex(
    r"[A-Za-z0-9_+.-]{0,70}@[A-Za-z0-9.-]{0,40}\.?"
    r"(ru|com|c0m|local|localhost|test|xn--p1ai|arpa|x|[a-z]{2,5})",
    fullmatch=True,
)


@given(st.one_of(emails, near_plain, st.emails().map(str), st.text(max_size=40)))
def test_the_quick_check_of_plain_addresses_answers_as_email_validator_does(raw: str) -> None:
    """Plain addresses skip email-validator (it costs more than the rest of an event):
    whatever the quick check takes must be what the library takes, spelled the same."""
    expected = _library(raw)
    if expected is None:
        with pytest.raises(ValueError, match="not a valid email address"):
            normalise_email(raw)
    else:
        assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["anna@shop.local", "anna@localhost", "a..b@shop.ru", "a@-shop.ru", "a@shop-.ru",
     "a@xn--bad.ru", "anna.@shop.ru"],
)  # fmt: skip
def test_addresses_the_quick_check_must_not_take_are_refused_as_the_library_does(
    raw: str,
) -> None:
    assert _library(raw) is None
    with pytest.raises(ValueError, match="not a valid email address"):
        normalise_email(raw)


# --- other identifiers and tokens ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["id", "loyalty_card", "app_install_id", "bank_card_token"])
def test_other_identifiers_are_trimmed_and_kept_as_sent(kind: str) -> None:
    assert normalise_identifier(kind, "  LC-0042 ") == "LC-0042"


@given(st.text(min_size=1), st.binary(min_size=32, max_size=64))
def test_a_token_always_hashes_to_the_same_keyed_hash(token: str, key: bytes) -> None:
    hashed = keyed_token_hash(token, key)

    assert hashed == keyed_token_hash(token, key)
    assert re.fullmatch(r"hmac:[0-9a-f]{64}", hashed)


def test_the_hash_depends_on_the_token_and_on_the_key() -> None:
    key = b"k" * 32
    assert keyed_token_hash("tok-1", key) != keyed_token_hash("tok-2", key)
    assert keyed_token_hash("tok-1", key) != keyed_token_hash("tok-1", b"l" * 32)


# --- in the event contract ----------------------------------------------------------------


def test_an_event_carries_its_identifiers_normalised() -> None:
    event = parse_event(
        identify_payload(
            phone="8 (916) 123-45-67", email="Anna.Petrova@Shop.RU", loyalty_card=" LC-0042 "
        ),
        default_region="RU",
    )
    assert event.customer.phone == "+79161234567"
    assert event.customer.email == "anna.petrova@shop.ru"
    assert event.customer.loyalty_card == "LC-0042"


def test_a_published_event_parses_back_unchanged_without_a_region() -> None:
    event = parse_event(identify_payload(phone="8 916 123 45 67"), default_region="RU")
    assert parse_event(event.model_dump_json()) == event


@pytest.mark.parametrize(
    ("customer", "field"),
    [({"phone": "12345"}, "phone"), ({"id": "c-1", "email": "anna@"}, "email")],
)
def test_a_bad_phone_or_email_is_refused_at_its_field(customer: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_event(identify_payload(**customer), default_region="RU")
    assert [e["loc"] for e in caught.value.errors()] == [("identify", "customer", field)]
