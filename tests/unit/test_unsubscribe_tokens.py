"""Unsubscribe tokens: what nudge signs comes back intact; anything else is refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.unsubscribe import BadToken, Unsubscription, sign, verify

KEY = b"k" * 32
BUYER = "0b3e2c1a-7f4d-4e5b-9a8c-1d2e3f4a5b6c"


def test_a_signed_token_says_who_left_which_channel_from_which_campaign() -> None:
    token = sign(BUYER, "email", "win-back-30d", KEY)

    assert verify(token, KEY) == Unsubscription(BUYER, "email", "win-back-30d")
    buyer, channel, campaign = verify(token, KEY)
    assert (buyer, channel, campaign) == (BUYER, "email", "win-back-30d")


def test_a_token_without_a_campaign_round_trips() -> None:
    assert verify(sign(BUYER, "sms", None, KEY), KEY) == Unsubscription(BUYER, "sms", None)


def test_a_token_fits_in_a_url_path_segment() -> None:
    token = sign(BUYER, "push", "a campaign/with slashes?", KEY)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_token_signed_with_another_key_is_refused() -> None:
    with pytest.raises(BadToken):
        verify(sign(BUYER, "email", None, b"x" * 32), KEY)


def test_a_token_for_another_buyer_cannot_be_made_from_a_real_one() -> None:
    _payload, mac = sign(BUYER, "email", "win-back-30d", KEY).split(".")
    forged = base64.urlsafe_b64encode(b"someone-else\nemail\nwin-back-30d").rstrip(b"=").decode()

    with pytest.raises(BadToken):
        verify(f"{forged}.{mac}", KEY)


@given(position=st.integers(min_value=0, max_value=200), replacement=st.sampled_from("AQgw-_9z"))
def test_changing_any_character_of_a_token_is_refused(position: int, replacement: str) -> None:
    token = sign(BUYER, "email", "win-back-30d", KEY)
    position %= len(token)
    if token[position] == replacement or token[position] == ".":
        return
    altered = token[:position] + replacement + token[position + 1 :]

    with pytest.raises(BadToken):
        verify(altered, KEY)


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "a.b.c", "Zm9v.", ".Zm9v", "Zm9v.Zm9v", "not base64!.Zm9v", "é.é", "x" * 5000],
)
def test_anything_that_is_not_a_token_is_refused(token: str) -> None:
    with pytest.raises(BadToken):
        verify(token, KEY)


def test_a_truncated_token_is_refused() -> None:
    token = sign(BUYER, "email", None, KEY)
    with pytest.raises(BadToken):
        verify(token[:-1], KEY)


@pytest.mark.parametrize(
    ("buyer", "channel"), [("", "email"), (BUYER, "fax"), ("line\nbreak", "email")]
)
def test_nothing_unreadable_is_signed(buyer: str, channel: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is for the programmer
        sign(buyer, channel, None, KEY)
