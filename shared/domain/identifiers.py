"""One buyer, one spelling: normalising the identifiers shops send.

The same buyer reaches nudge from a web shop (``+7 (916) 123-45-67``), a till
(``8 916 123 45 67``) and a newsletter form (``Anna@Shop.ru``); identity
resolution only works when each identifier has one canonical spelling:

- phones become E.164 (``+79161234567``), read with the shop's default region
  when written without a country code;
- emails are checked for syntax (no DNS lookup) and lower-cased;
- a profile id (nudge's own id of a buyer) must be a UUID, written in its
  canonical lower-case form;
- every other identifier (id, loyalty card, app install id, bank card token) is
  trimmed.

Bank card tokens are also replaced by a keyed hash (:func:`keyed_token_hash`)
before they leave ingest; the key is the caller's, never read here.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import uuid
from datetime import datetime

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

__all__ = [
    "KEYED_HASH_PREFIX",
    "is_known_region",
    "keyed_token_hash",
    "new_profile_id",
    "normalise_email",
    "normalise_identifier",
    "normalise_phone",
    "normalise_profile_id",
]

KEYED_HASH_PREFIX = "hmac:"
"""What a keyed hash of a bank card token starts with: ``hmac:<64 hex digits>``."""


def is_known_region(region: str) -> bool:
    """Whether ``region`` (ISO 3166-1 alpha-2, upper case) has a phone numbering plan."""
    return region in phonenumbers.SUPPORTED_REGIONS


_REMEMBERED = 65_536
"""How many spellings each normaliser remembers: a buyer's events come again and again,
and checking an address is the dearest part of validating an event."""


@functools.lru_cache(maxsize=_REMEMBERED)
def normalise_phone(raw: str, *, default_region: str | None = None) -> str:
    """``raw`` in E.164, or :class:`ValueError` when it is not a valid phone number.

    A number written without ``+`` and a country code is read as a number of
    ``default_region``; with no default region it must carry its country code.
    The error never repeats the number.
    """
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise ValueError("not a phone number: missing or unknown country code") from None
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_PLAIN_EMAIL = re.compile(
    r"(?P<local>[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*)"
    r"@(?P<domain>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})"
)
"""Most addresses a shop sends: ASCII letters, digits, ``_+-`` and single dots before the
``@``; plain labels after it, ending in a top-level domain of letters. Every one of them
is valid as it is, lower-cased: checking them through email-validator (IDNA, Unicode)
costs more than the rest of an event's validation, so :func:`normalise_email` does
not; anything else goes through email-validator. A property test holds the two to the
same answers."""


def _plain_email(address: str) -> bool:
    """Whether lower-cased ``address`` is a plain address (see :data:`_PLAIN_EMAIL`) that
    email-validator would take as it is."""
    match = _PLAIN_EMAIL.fullmatch(address)
    if match is None or len(address) > 254 or len(match["local"]) > 64:
        return False
    domain = match["domain"]
    if len(domain) > 253 or "--" in domain:  # "xn--" labels are IDNA: the library's call
        return False
    return not any(
        domain == special or domain.endswith("." + special) for special in SPECIAL_USE_DOMAIN_NAMES
    )


@functools.lru_cache(maxsize=_REMEMBERED)
def normalise_email(raw: str) -> str:
    """``raw`` checked for syntax (not deliverability) and lower-cased, or :class:`ValueError`."""
    lowered = raw.lower()
    if raw.isascii() and _plain_email(lowered):
        return lowered
    try:
        checked = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return checked.normalized.lower()


def normalise_identifier(kind: str, raw: str, *, default_region: str | None = None) -> str:
    """The canonical spelling of an identifier of ``kind`` (a :class:`Customer` field)."""
    if kind == "phone":
        return normalise_phone(raw, default_region=default_region)
    if kind == "email":
        return normalise_email(raw)
    if kind == "profile_id":
        return normalise_profile_id(raw)
    return raw.strip()


def normalise_profile_id(raw: str) -> str:
    """A profile id in its canonical form, or :class:`ValueError` when it is not a UUID."""
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        raise ValueError("not a profile id: expected a UUID") from None


_PROFILE_NAMESPACE = uuid.UUID("3d8f1b52-9c4e-5a7d-8e21-6e7564676502")


def new_profile_id(first: tuple[str, str], at: datetime) -> str:
    """The id of a buyer first seen by the identifier ``first`` at ``at``.

    Derived, not drawn: replaying the same events gives every buyer the same id (so
    the holdout draws keyed on it repeat), and a buyer first seen again after the
    identifier was freed, at another moment, gets another id.
    """
    kind, value = first
    return str(uuid.uuid5(_PROFILE_NAMESPACE, f"{kind}|{value}|{at.isoformat()}"))


def keyed_token_hash(token: str, key: bytes) -> str:
    """HMAC-SHA256 of a bank card token under ``key``: ``hmac:<hex>``, the same for the same token.

    The raw token never needs to be kept: the hash identifies the buyer just as well,
    and cannot be reversed or recomputed without the key.
    """
    digest = hmac.new(key, token.encode(), hashlib.sha256).hexdigest()
    return f"{KEYED_HASH_PREFIX}{digest}"
