"""Masking identifiers so that no full phone, email or card number reaches a log line."""

from __future__ import annotations

import pytest

from shared.domain.masking import mask_email, mask_identifier, mask_phone, mask_text

PHONE = "+79161234567"


def test_phone_is_masked_as_documented() -> None:
    assert mask_phone(PHONE) == "+7*******67"


def test_masked_phone_keeps_country_digit_and_last_two_only() -> None:
    masked = mask_phone(PHONE)
    assert masked.startswith("+7*")
    assert masked.endswith("*67")
    assert set(masked[2:-2]) == {"*"}


def test_phone_without_plus_is_masked_too() -> None:
    masked = mask_phone("89161234567")
    assert masked.startswith("8*")
    assert masked.endswith("*67")
    assert "9161234" not in masked


@pytest.mark.parametrize("short", ["+123", "12", ""])
def test_very_short_phone_is_masked_entirely(short: str) -> None:
    assert mask_phone(short) == "*" * len(short)


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("anna@shop.ru", "a***@shop.ru"),
        ("a@shop.ru", "a***@shop.ru"),
        ("ivan.petrov+promo@mail.example.com", "i***@mail.example.com"),
    ],
)
def test_email_keeps_first_letter_and_domain(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_string_without_at_sign_is_masked_as_an_identifier() -> None:
    assert mask_email("annashop.ru") == "a*********u"


@pytest.mark.parametrize(
    ("value", "masked"),
    [("LC-000123", "L*******3"), ("abcde", "a***e"), ("abcd", "****"), ("", "")],
)
def test_identifier_keeps_only_first_and_last_character(value: str, masked: str) -> None:
    assert mask_identifier(value) == masked


def test_text_masks_an_email_inside_a_sentence() -> None:
    text = "Bounce for anna@shop.ru, retry later"
    assert mask_text(text) == "Bounce for a***@shop.ru, retry later"


def test_text_masks_a_phone_inside_a_sentence() -> None:
    text = f"SMS to {PHONE} failed"
    assert mask_text(text) == f"SMS to {mask_phone(PHONE)} failed"
    assert "9161234" not in mask_text(text)


@pytest.mark.parametrize(
    "card",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111 1111-1111 1111",
        "5555555555554",  # 13 digits
        "6011 0000 0000 0000 004",  # 19 digits
    ],
)
def test_text_masks_card_like_digit_runs_with_spaces_or_dashes(card: str) -> None:
    masked = mask_text(f"paid with {card} at till 3")
    assert masked == f"paid with {'#' * len(card)} at till 3"


@pytest.mark.parametrize("short_run", ["123456789012", "order 2024-05-01", "1234 5678"])
def test_text_keeps_digit_runs_shorter_than_13_digits(short_run: str) -> None:
    assert mask_text(short_run) == short_run


def test_text_masks_everything_in_one_line() -> None:
    text = f"anna@shop.ru, {PHONE}, card 4111 1111 1111 1111"
    masked = mask_text(text)
    assert masked == f"a***@shop.ru, {mask_phone(PHONE)}, card {'#' * 19}"


def test_text_without_identifiers_is_unchanged() -> None:
    text = "Campaign win-back-30d sent 120 messages in 3.5 s"
    assert mask_text(text) == text


@pytest.mark.parametrize("written", ["+7 916 123-45-67", "+7 (916) 123-45-67", "8 916 123 45 67"])
def test_text_masks_a_phone_written_with_spaces_or_dashes(written: str) -> None:
    assert "123" not in mask_text(f"call {written} back")
