"""Unsubscribe links: a signed token that names a buyer, a channel and a campaign.

Every marketing email carries a link (and RFC 8058 ``List-Unsubscribe`` headers)
whose last path segment is such a token. Whoever holds the link may unsubscribe
that buyer from that channel, and nobody can make a token for another buyer or
channel without the key: the token is the payload and its HMAC-SHA256, both
base64url without padding, joined by a dot::

    payload = "<buyer>\\n<channel>\\n<campaign>"          (UTF-8; the campaign may be empty)
    mac     = HMAC-SHA256(key, "nudge-unsubscribe/v1\\n" + payload)
    token   = base64url(payload) "." base64url(mac)

Only the canonical base64url spelling is accepted, so no two tokens say the
same thing. The MAC covers a fixed prefix too, so a MAC made with the same key
for another purpose is never a valid token. A token that is malformed, altered or signed
with another key raises :class:`BadToken`; it carries no expiry, as an
unsubscribe link must keep working for as long as the email is kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import NamedTuple

from shared.domain.events import CHANNELS

__all__ = ["MAX_TOKEN_LENGTH", "BadToken", "Unsubscription", "sign", "verify"]

MAX_TOKEN_LENGTH = 1024
"""Anything longer is no token of ours."""

_PURPOSE = b"nudge-unsubscribe/v1\n"
_SEPARATOR = "\n"
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


class BadToken(ValueError):
    """A token that is not one nudge signed: malformed, altered, or signed with another key."""


class Unsubscription(NamedTuple):
    """What a token says: this buyer no longer wants this channel (from this campaign)."""

    buyer: str
    channel: str
    campaign: str | None


def sign(buyer_id: str, channel: str, campaign: str | None, key: bytes) -> str:
    """The token that lets the holder unsubscribe ``buyer_id`` from ``channel``."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
    parts = (buyer_id, channel, campaign or "")
    if not buyer_id or any(_SEPARATOR in part for part in parts):
        raise ValueError("a buyer id is required, and no part may hold a line break")
    payload = _SEPARATOR.join(parts).encode()
    return f"{_encode(payload)}.{_encode(_mac(payload, key))}"


def verify(token: str, key: bytes) -> Unsubscription:
    """What ``token`` says, or :class:`BadToken` if nudge did not sign it with ``key``."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise BadToken("not an unsubscribe token")
    encoded_payload, encoded_mac = token.split(".")
    payload, mac = _decode(encoded_payload), _decode(encoded_mac)
    if not hmac.compare_digest(mac, _mac(payload, key)):
        raise BadToken("the token's signature does not match: altered, or not ours")
    try:
        buyer, channel, campaign = payload.decode().split(_SEPARATOR)
    except ValueError:  # not UTF-8, or not three parts: signed, yet not by this code
        raise BadToken("not an unsubscribe token") from None
    if not buyer or channel not in CHANNELS:
        raise BadToken("not an unsubscribe token")
    return Unsubscription(buyer, channel, campaign or None)


def _mac(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, _PURPOSE + payload, hashlib.sha256).digest()


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    if not _BASE64URL.match(text):
        raise BadToken("not an unsubscribe token")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadToken("not an unsubscribe token") from None
    if _encode(data) != text:  # unused low bits set: the same bytes, spelled otherwise
        raise BadToken("not an unsubscribe token")
    return data
